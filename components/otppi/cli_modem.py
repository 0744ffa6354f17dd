"""``otppi`` commands for interactive modem work: information, status, USSD, manual SMS, the inbox,
the IMEI and SIM tools and mobile internet.

Only the modem component touches serial ports (docs/architecture.md, Processes): each command is one
call of the shared modem tools (:mod:`otppi.modem_tools`, which the admin web calls too) or, for a
manual SMS, of :mod:`otppi.manual_sms`; this module only reads arguments and prints results.

Errors the user can act on are :class:`otppi.cli_errors.CliError` (or the shared tools' ``ToolError``),
printed by ``otppi.cli.main`` as one line with exit status 1.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import keys, manual_sms, modem_tools
from .cli_errors import CliError, one_line
from .modem_tools import printable
from .paths import Paths
from .store.db import db
from .store.models import InboxMessage, Modem, TimeSettings

#: Exit status of ``otppi sms send`` when the message is queued but its outcome is not known yet.
EXIT_QUEUED = 2

_BARE = re.compile(r"[^\s\"'=\\]+")


def _value(value: Any) -> str:
    """One value of a key=value line: bare when it can be, JSON-quoted when it has spaces or quotes."""
    text = "" if value is None else str(value)
    if not text:
        return "-"
    return text if _BARE.fullmatch(text) else json.dumps(text, ensure_ascii=False)


def _zone() -> ZoneInfo:
    try:
        return ZoneInfo(TimeSettings.load().time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _time(seconds: float | None, zone: ZoneInfo) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, zone).isoformat(timespec="seconds")


# ---------------------------------------------------------------- modem info and status

INFO_FIELDS = (("manufacturer", "manufacturer"), ("model", "model"), ("revision", "revision"), ("imei", "imei"),
               ("imsi", "imsi"), ("iccid", "iccid"), ("operator", "operator"), ("msisdn", "msisdn"),
               ("smsc", "sms_center"), ("signal", "signal_dbm"), ("registration", "registration"))


def cmd_modem_info(args: argparse.Namespace, paths: Paths) -> str:
    info = modem_tools.info(paths, args.name)
    if args.json:
        return json.dumps({"modem": args.name, **info})
    signal = info.get("signal_dbm")
    shown = {**info, "signal_dbm": f"{signal}dBm" if isinstance(signal, int) else ""}
    pairs = [("modem", args.name)] + [(key, shown.get(field)) for key, field in INFO_FIELDS]
    return " ".join(f"{key}={_value(value)}" for key, value in pairs)


def _status_line(m: dict[str, Any], zone: ZoneInfo) -> str:
    state = m["state"]
    if m.get("quarantined_until"):
        state += f" until {_time(m['quarantined_until'], zone)}"
    fields = [m["name"], state, "connected" if m.get("connected") else "not connected",
              f"failures={m.get('failures', 0)}", f"error={one_line(m.get('error') or '') or '-'}"]
    if "as_of" in m:
        fields.append(f"as of {_time(m['as_of'], zone)}")
    return "\t".join(fields)


def cmd_modem_status(args: argparse.Namespace, paths: Paths) -> str:
    found = modem_tools.status(paths)
    if not found.live:  # the component is down: what it last recorded, and say so
        print(f"otppi: {one_line(found.error)}; showing the last recorded status", file=sys.stderr)
    if args.json:
        return json.dumps({"live": found.live, "modems": found.modems})
    if not found.modems:
        return "no modems"
    zone = _zone()
    return "\n".join(_status_line(m, zone) for m in found.modems)


# ---------------------------------------------------------------- USSD


def cmd_ussd(args: argparse.Namespace, paths: Paths) -> str:
    if args.cancel == (args.code is not None):
        raise CliError("give a USSD code (or a menu option) or --cancel, not both")
    if args.cancel:
        modem_tools.ussd_cancel(paths, args.name)
        return f"USSD session on {args.name} ended"
    if not 1 <= args.timeout <= 300:
        raise CliError("--timeout must be 1 to 300 seconds")
    answer = modem_tools.ussd(paths, args.name, args.code, args.timeout)
    if args.json:
        return json.dumps({"modem": args.name, "reply": answer.reply, "session": answer.session}, ensure_ascii=False)
    lines = [printable(answer.reply) if answer.reply else "(empty reply)"]
    if answer.session:
        lines.append(f"the network keeps the session open: answer with 'otppi ussd {args.name} <option>', "
                     f"or end it with 'otppi ussd {args.name} --cancel'")
    return "\n".join(lines)


# ---------------------------------------------------------------- manual SMS


def cmd_sms_send(args: argparse.Namespace, paths: Paths) -> str:
    if not 0 <= args.wait <= 3600:
        raise CliError("--wait must be 0 to 3600 seconds")
    try:
        outcome = manual_sms.queue(paths, keys.otp_key(paths), args.receiver, args.text, via=args.modem or "",
                                   source="cli", wait=args.wait)
    except manual_sms.ManualSmsError as exc:
        raise CliError(str(exc)) from None
    via = args.modem or ""
    if outcome.state == "sent":
        return f"sent via {outcome.modem}"
    if outcome.state in ("failed", "expired"):
        raise CliError(f"not sent to {outcome.receiver}{f' via {via}' if via else ''}: "
                       f"{outcome.error or outcome.state}")
    print(f"queued (outcome not known after {args.wait:g} s)")
    raise SystemExit(EXIT_QUEUED)


# ---------------------------------------------------------------- inbox


def _inbox_dict(m: InboxMessage) -> dict[str, Any]:
    return {"id": m.id, "time": m.sent_at if m.sent_at is not None else m.received_at, "received_at": m.received_at,
            "modem": m.modem, "sender": m.sender, "body": m.body, "parts": m.parts, "incomplete": m.incomplete,
            "read": m.is_read}


def cmd_inbox_list(args: argparse.Namespace, paths: Paths) -> str:
    query = InboxMessage.select().order_by(InboxMessage.id)
    if args.modem:
        query = query.where(InboxMessage.modem == args.modem)
        if not query.exists() and Modem.get_or_none(Modem.name == args.modem) is None:
            raise CliError(f"no modem named {args.modem[:40]!r}")
    messages = [_inbox_dict(m) for m in query]
    if args.json:
        return json.dumps(messages, ensure_ascii=False)
    if not messages:
        return "the inbox is empty"
    # Bodies are any text a stranger sent: newlines shown as ⏎, other control characters escaped.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")
    zone = _zone()
    return "\n".join(
        f"{m['id']}\t{_time(m['time'], zone)}\t{m['modem']}\t{printable(m['sender'])}\t"
        + ("(incomplete) " if m["incomplete"] else "")
        + printable(m["body"]).replace("\n", "⏎").replace("\t", " ")
        for m in messages
    )


def cmd_inbox_delete(args: argparse.Namespace, paths: Paths) -> str:
    with db.atomic():
        if not InboxMessage.delete().where(InboxMessage.id == args.id).execute():
            raise CliError(f"no inbox message {args.id}")
    return f"inbox message {args.id} deleted"


def cmd_inbox_refresh(args: argparse.Namespace, paths: Paths) -> str:
    stored = modem_tools.refresh_inbox(paths, args.name)
    return f"{stored} message(s) moved from the SIM of {args.name} to the inbox"


# ---------------------------------------------------------------- IMEI tool


def cmd_modem_imei(args: argparse.Namespace, paths: Paths) -> str:
    return modem_tools.set_imei(paths, args.name, args.imei)


# ---------------------------------------------------------------- SIM tool


def _read_pins(args: argparse.Namespace) -> tuple[str, str]:
    if not args.pin_stdin:
        raise CliError("give the PIN on standard input with --pin-stdin (never on the command line)")
    pin = sys.stdin.readline().rstrip("\r\n")
    new = sys.stdin.readline().rstrip("\r\n") if args.action == "change" else ""
    return pin, new


def cmd_sim_pin(args: argparse.Namespace, paths: Paths) -> str:
    pin, new = _read_pins(args)
    return modem_tools.change_sim_pin(paths, args.name, args.action, pin, new)


# ---------------------------------------------------------------- mobile internet


def cmd_internet(args: argparse.Namespace, paths: Paths) -> str:
    return one_line(modem_tools.internet(paths, args.name, args.action).describe())


# ---------------------------------------------------------------- parser


def _sub(parent: argparse._SubParsersAction, name: str, help: str, func: Callable | None = None,
         **kwargs: Any) -> argparse.ArgumentParser:
    parser = parent.add_parser(name, help=help, description=help, **kwargs)
    if func is not None:
        parser.set_defaults(func=func)
    return parser


def _children(top: argparse._SubParsersAction, name: str, help: str) -> argparse._SubParsersAction:
    """The subcommands of command *name*, which is made when it does not exist yet."""
    parser = top.choices.get(name)
    if parser is None:
        return _sub(top, name, help).add_subparsers(dest="action", required=True)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise ValueError(f"command {name!r} has no subcommands")


def add_modem_commands(top: argparse._SubParsersAction) -> None:
    """Add the interactive modem commands to the ``otppi`` parser's top-level subcommands."""
    modem = _children(top, "modem", "modem records")
    p = _sub(modem, "info", "ask a modem for its identity, operator and signal", cmd_modem_info)
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p = _sub(modem, "status", "each modem's state from the modem component (the last recorded one while it is "
             "not running)", cmd_modem_status)
    p.add_argument("--json", action="store_true")
    p = _sub(modem, "imei", "write a new IMEI into a modem (modems with AT+EGMR only)", cmd_modem_imei)
    p.add_argument("name")
    p.add_argument("imei", metavar="NEW_IMEI", help="15 digits, the last one the Luhn check digit")

    p = _sub(top, "ussd", "run a USSD code on a modem, answer its menu, or end the session", cmd_ussd,
             epilog="When the network keeps the session open, answer with 'otppi ussd NAME OPTION'.")
    p.add_argument("name")
    p.add_argument("code", nargs="?", help="a code such as *123#, or the option to answer an open menu with")
    p.add_argument("--cancel", action="store_true", help="end the open USSD session")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the network (default 30)")
    p.add_argument("--json", action="store_true")

    sms = _children(top, "sms", "manual SMS")
    p = _sub(sms, "send", "send an SMS by hand (any active modem may send it, API or not)", cmd_sms_send,
             epilog="Exit status: 0 sent, 1 failed or refused, 2 queued but the outcome is not known within "
                    "--wait seconds (it may still be sent).")
    p.add_argument("receiver")
    p.add_argument("text")
    p.add_argument("--modem", metavar="NAME", help="the modem that must send it (default: routed by prefix)")
    p.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the outcome (default 60)")

    inbox = _children(top, "inbox", "SMS received by the modems")
    p = _sub(inbox, "list", "list received SMS", cmd_inbox_list)
    p.add_argument("--json", action="store_true")
    p.add_argument("--modem", metavar="NAME", help="only messages received by this modem")
    _sub(inbox, "delete", "delete a received SMS", cmd_inbox_delete).add_argument("id", type=int)
    p = _sub(inbox, "refresh", "move every SMS stored on a modem's SIM into the inbox", cmd_inbox_refresh)
    p.add_argument("name")

    sim = _children(top, "sim", "the SIM tool")
    p = _sub(sim, "pin", "turn a SIM's PIN lock on or off, or change its PIN", cmd_sim_pin,
             epilog="PINs are read from standard input: the current PIN on the first line, the new one on the "
                    "second (change only).")
    p.add_argument("name")
    p.add_argument("action", choices=("enable", "disable", "change"))
    p.add_argument("--pin-stdin", action="store_true", help="read the PIN(s) from standard input")

    p = _sub(top, "internet", "mobile internet through a modem (Internet Access in its settings)", cmd_internet)
    p.add_argument("name")
    p.add_argument("action", choices=("up", "down", "state"))
