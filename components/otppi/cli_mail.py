"""``otppi`` commands for email: the SMTP accounts of the mailer's pool, and a manual email.

Errors the user can act on are :class:`otppi.cli_errors.CliError` (or the store's ``SettingError``),
printed by ``otppi.cli.main`` as one line with exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from . import keys
from .cli_errors import CliError
from .contract import ContractError
from .contract import validate as validate_request
from .outcome import wait_for
from .paths import Paths
from .store import email_accounts
from .store.models import EmailAccount, EmailOutbox
from .store.outbox import enqueue
from .store.sealed import cleared_note

#: Exit status of ``otppi email send`` when the message is queued but its outcome is not known yet.
EXIT_QUEUED = 2


# ---------------------------------------------------------------- accounts


def _security(row: EmailAccount) -> str:
    return "ssl" if row.ssl else ("starttls" if row.starttls else "plain")


def _plain_login_refused(row: EmailAccount) -> bool:
    """The mailer will not send this account's password: no TLS, and plain login not allowed."""
    return row.authentication and not row.ssl and not row.starttls and not row.allow_plain_login


def _account_dict(row: EmailAccount) -> dict[str, Any]:
    return {"id": row.id, "sender": row.sender_account, "host": row.smtp_host, "port": row.smtp_port,
            "ssl": row.ssl, "starttls": row.starttls and not row.ssl, "authentication": row.authentication,
            "password_set": bool(row.sender_password), "allow_plain_login": row.allow_plain_login,
            "plain_login_refused": _plain_login_refused(row), "ca_file": row.ca_file, "active": row.active,
            "daily_quota": row.daily_quota, "sent_today": row.sent_today, "quota_day": row.quota_day}


def _read_password() -> str:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CliError("the password on standard input is empty")
    return email_accounts.password(password)


def cmd_account_add(args: argparse.Namespace, paths: Paths) -> str:
    authentication = not args.no_auth
    if authentication and not args.password_stdin:
        raise CliError("give the password on standard input with --password-stdin (or use --no-auth)")
    password = _read_password() if authentication else ""
    starttls = (not args.ssl) if args.starttls is None else args.starttls
    port = args.port if args.port is not None else (465 if args.ssl else 587)
    row = email_accounts.add(args.sender, args.host, smtp_port=port, ssl=args.ssl, starttls=starttls,
                             authentication=authentication, sender_password=password, daily_quota=args.quota,
                             active=not args.inactive, ca_file=args.ca_file or "",
                             allow_plain_login=args.allow_plain_login)
    line = f"email account {row.id} {row.sender_account!r} added ({row.smtp_host}:{port}, {_security(row)})"
    if _plain_login_refused(row):
        line += ("; the mailer will not send its password without TLS: use --ssl or --starttls, or set "
                 f"'otppi email-account set {row.id} allow_plain_login true' if the server offers nothing else")
    return line


def cmd_account_list(args: argparse.Namespace, paths: Paths) -> str:
    accounts = [_account_dict(row) for row in EmailAccount.select().order_by(EmailAccount.id)]
    if args.json:
        return json.dumps(accounts)
    if not accounts:
        return "no email accounts"
    lines = []
    for a in accounts:
        security = "ssl" if a["ssl"] else ("starttls" if a["starttls"] else "plain")
        quota = f"quota={a['daily_quota']}" if a["daily_quota"] else "quota=-"
        auth = "no-auth" if not a["authentication"] else ("auth-refused-without-tls" if a["plain_login_refused"]
                                                           else "auth")
        lines.append(f"{a['id']}\t{a['sender']}\t{a['host']}:{a['port']}\t{security}"
                     f"\t{auth}\t{quota}\tsent_today={a['sent_today']}"
                     f"\t{'active' if a['active'] else 'inactive'}")
    return "\n".join(lines)


def cmd_account_set(args: argparse.Namespace, paths: Paths) -> str:
    if args.field == "sender_password":
        raise CliError("change a password with 'otppi email-account password ID --password-stdin'")
    value = email_accounts.parse_field(args.field, args.value)
    if args.field == "sender_account":
        value = value.lower()
    cleared = email_accounts.update(args.account, {args.field: value})
    line = f"email account {args.account!r}: {args.field} = {json.dumps(value) if isinstance(value, bool) else value}"
    if cleared:
        line += (f"; {cleared_note(['the password'])} with "
                 f"'otppi email-account password {args.account} --password-stdin'")
    return line


def cmd_account_password(args: argparse.Namespace, paths: Paths) -> str:
    if not args.password_stdin:
        raise CliError("give the password on standard input with --password-stdin")
    row = email_accounts.set_password(args.account, _read_password())
    return f"email account {row.id} {row.sender_account!r}: password changed"


def cmd_account_remove(args: argparse.Namespace, paths: Paths) -> str:
    row = email_accounts.remove(args.account)
    return f"email account {row.id} {row.sender_account!r} removed"


# ---------------------------------------------------------------- manual email


def cmd_email_send(args: argparse.Namespace, paths: Paths) -> str:
    data = {"receiver": args.receiver, "message": args.text}
    if args.subject is not None:
        data["subject"] = args.subject
    try:
        request = validate_request({"command": "send-email", "data": data})
    except ContractError as exc:
        raise CliError(str(exc).replace("data.receiver", "the receiver").replace("data.message", "the text")
                       .replace("data.subject", "the subject")) from None
    if not 0 <= args.wait <= 3600:
        raise CliError("--wait must be 0 to 3600 seconds")
    receiver = request.data["receiver"]
    queued = enqueue(paths, keys.otp_key(paths), EmailOutbox, request.data["message"], kind="email", source="cli",
                     receiver=receiver, subject=request.data.get("subject", ""))
    if not queued.rung:
        print("queued: the mailer is not running, it sends the message when it starts")
        raise SystemExit(EXIT_QUEUED)
    state = wait_for(paths, EmailOutbox, queued.id, args.wait, name="cli")
    row = EmailOutbox.get_by_id(queued.id)
    if state == "sent":
        return f"sent via {row.account}"
    if state in ("failed", "expired"):
        raise CliError(f"not sent to {receiver}: {row.last_error or state}")
    print(f"queued (outcome not known after {args.wait:g} s)")
    raise SystemExit(EXIT_QUEUED)


# ---------------------------------------------------------------- parser


def _sub(parent: argparse._SubParsersAction, name: str, help: str, func: Callable | None = None,
         **kwargs: Any) -> argparse.ArgumentParser:
    parser = parent.add_parser(name, help=help, description=help, **kwargs)
    if func is not None:
        parser.set_defaults(func=func)
    return parser


def add_mail_commands(top: argparse._SubParsersAction) -> None:
    """Add ``email-account`` and ``email`` to the ``otppi`` parser's top-level subcommands."""
    accounts = _sub(top, "email-account", "SMTP accounts the mailer sends through (round robin, failover)"
                    ).add_subparsers(dest="action", required=True)
    p = _sub(accounts, "add", "add an SMTP account", cmd_account_add,
             epilog="Port 587 with STARTTLS, or --ssl for port 465 (TLS from the first byte). The password is "
                    "read from standard input.")
    p.add_argument("sender", help="the sender address, also the SMTP login")
    p.add_argument("--host", required=True, help="SMTP server, e.g. smtp.gmail.com")
    p.add_argument("--port", type=int, help="default 587, or 465 with --ssl")
    p.add_argument("--ssl", action="store_true", help="TLS from the first byte (SMTPS, port 465)")
    p.add_argument("--starttls", action=argparse.BooleanOptionalAction, default=None,
                   help="upgrade with STARTTLS before sending (default: on unless --ssl)")
    p.add_argument("--no-auth", action="store_true", help="the server takes mail without a login")
    p.add_argument("--quota", type=int, default=0, help="messages a day, then it rests until midnight (0: none)")
    p.add_argument("--ca-file", help="trust only this CA file for the server's certificate")
    p.add_argument("--allow-plain-login", action="store_true",
                   help="send the password even without SSL or STARTTLS (only for a server that offers no TLS)")
    p.add_argument("--inactive", action="store_true", help="registered but never used")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p = _sub(accounts, "list", "list SMTP accounts (passwords are never shown)", cmd_account_list)
    p.add_argument("--json", action="store_true")
    p = _sub(accounts, "set", "change one field of an account (smtp_host, smtp_port, ssl, starttls, "
             "authentication, allow_plain_login, sender_account, ca_file, daily_quota, active); another "
             "server clears the password", cmd_account_set)
    p.add_argument("account", metavar="ID|SENDER")
    p.add_argument("field")
    p.add_argument("value")
    p = _sub(accounts, "password", "change an account's password (read from standard input)", cmd_account_password)
    p.add_argument("account", metavar="ID|SENDER")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    _sub(accounts, "remove", "remove an SMTP account", cmd_account_remove).add_argument("account",
                                                                                        metavar="ID|SENDER")

    email = _sub(top, "email", "manual email").add_subparsers(dest="action", required=True)
    p = _sub(email, "send", "send an email through the mailer's account pool", cmd_email_send,
             epilog="Exit status: 0 sent, 1 failed or refused, 2 queued but the outcome is not known within "
                    "--wait seconds (it may still be sent).")
    p.add_argument("receiver")
    p.add_argument("text")
    p.add_argument("--subject", help="default: the mail settings' subject, else the device name")
    p.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the outcome (default 60)")
