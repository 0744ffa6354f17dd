"""``otppi``: the command line for headless provisioning.

Every command reads ``OTPPI_ROOT``, prints one clear line (lists print one
line per item) and exits non-zero on error: :func:`main` prints the errors a
user can act on (:class:`otppi.cli_errors.CliError`, and the store's setting,
secret and modem-tool errors, which already say what to fix) as one line.
"""

from __future__ import annotations

import argparse
import json
import re
import ssl
import sys
from pathlib import Path
from typing import Any, Callable

from peewee import IntegrityError

from . import __version__, keys, setup_code
from .auth import hash_password
from .cli_errors import CliError, one_line
from .cli_mail import add_mail_commands
from .cli_modem import add_modem_commands
from .modem_tools import ToolError
from .msisdn import normalize
from .paths import Paths
from .store import blocklist, modems, settings
from .store.db import db, open_database
from .store.migrations import migrate, require_current
from .store.models import Administrator, ApiUser, BlockedNumber, KeystoreEntry, Modem, SmsSettings
from .store.sealed import SecretError, cleared_note


def _read_password(args: argparse.Namespace) -> str:
    if not args.password_stdin:
        raise CliError("give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    try:
        hash_password(password)  # validates length
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return password


def _open(paths: Paths) -> None:
    if not paths.database.exists():
        raise CliError(f"no database at {paths.database}: run 'otppi migrate' first")
    open_database(paths.database, sealing_key=keys.otp_key(paths))
    try:
        require_current(db)
    except RuntimeError as exc:
        raise CliError(str(exc)) from None


# ---------------------------------------------------------------- commands


def _share_database(paths: Paths) -> None:
    """The database and its -wal/-shm files read and written by group otppi too: the admin web runs as its
    own user in that group (SQLite makes -wal/-shm with the database file's mode)."""
    for path in (paths.database, paths.database.with_name(paths.database.name + "-wal"),
                 paths.database.with_name(paths.database.name + "-shm")):
        if path.exists() and path.stat().st_mode & 0o660 != 0o660:
            path.chmod(path.stat().st_mode | 0o660)


def cmd_migrate(args: argparse.Namespace, paths: Paths) -> str:
    keys.ensure_all(paths)
    open_database(paths.database, sealing_key=keys.otp_key(paths))
    before, after = migrate(db)
    _share_database(paths)
    setup_code.ensure(paths)  # while no administrator exists; gone once one does
    if before == after:
        return f"schema is up to date (version {after}) at {paths.database}"
    return f"schema migrated from version {before} to {after} at {paths.database}"


def _add_account(model: Any, what: str, args: argparse.Namespace, **extra: Any) -> str:
    password = _read_password(args)
    try:
        with db.atomic():
            model.create(username=args.name, password_hash=hash_password(password), **extra)
            settings.bump_generation()
    except IntegrityError:
        raise CliError(f"{what} {args.name!r} already exists") from None
    return f"{what} {args.name!r} added"


def cmd_admin_add(args: argparse.Namespace, paths: Paths) -> str:
    done = _add_account(Administrator, "administrator", args, email=args.email or "", phone=args.phone or "")
    setup_code.discard(paths)  # an administrator exists: the first-run page and its code are gone
    return done


def cmd_setup_code(args: argparse.Namespace, paths: Paths) -> str:
    code = setup_code.ensure(paths)
    if code is None:
        raise CliError("an administrator exists: there is no setup code any more")
    return code


def cmd_api_user_add(args: argparse.Namespace, paths: Paths) -> str:
    return _add_account(ApiUser, "API user", args, email=args.email or "", phone=args.phone or "",
                        allow_ussd=args.allow_ussd)


def cmd_api_user_set(args: argparse.Namespace, paths: Paths) -> str:
    if args.allow_ussd is None:
        raise CliError("say what to change: --allow-ussd or --no-allow-ussd")
    with db.atomic():
        if not ApiUser.update(allow_ussd=args.allow_ussd).where(ApiUser.username == args.name).execute():
            raise CliError(f"no API user named {args.name!r}")
        settings.bump_generation()
    return f"API user {args.name!r} {'may' if args.allow_ussd else 'may not'} use request-ussd"


def _remove(model: Any, column: Any, what: str, name: str) -> str:
    with db.atomic():
        if not model.delete().where(column == name).execute():
            raise CliError(f"no {what} named {name!r}")
        settings.bump_generation()
    return f"{what} {name!r} removed"


def cmd_api_user_remove(args: argparse.Namespace, paths: Paths) -> str:
    return _remove(ApiUser, ApiUser.username, "API user", args.name)


def cmd_api_user_list(args: argparse.Namespace, paths: Paths) -> str:
    users = ApiUser.select().order_by(ApiUser.username)
    lines = [f"{u.username}\t{'active' if u.active else 'inactive'}\t{'USSD allowed' if u.allow_ussd else 'no USSD'}"
             for u in users]
    return "\n".join(lines) or "no API users"


def cmd_settings_get(args: argparse.Namespace, paths: Paths) -> str:
    value = settings.get(args.key)
    secret = settings.is_secret(args.key)
    return ("(set)" if value else "") if secret else _show(value)


def cmd_settings_set(args: argparse.Namespace, paths: Paths) -> str:
    if args.value_stdin == (args.value is not None):
        raise CliError("give the value either as an argument or with --value-stdin (for passwords)")
    text = sys.stdin.readline().rstrip("\r\n") if args.value_stdin else args.value
    section, _, name = args.key.partition(".")
    value = settings.parse_value(args.key, text)
    cleared = settings.set_many(section, {name: value})
    line = f"{args.key} = {'(set)' if settings.is_secret(args.key) else _show(value)}"
    if cleared:
        keys_ = [f"{section}.{secret}" for secret in cleared]
        again = " and ".join(f"'otppi settings set {key} --value-stdin'" for key in keys_)
        line += f"; {cleared_note(keys_)} with {again}"
    return line


def cmd_settings_list(args: argparse.Namespace, paths: Paths) -> str:
    return "\n".join(f"{key} = {_show(value)}" for key, value in settings.items())


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _msisdn(number: str) -> str:
    try:
        return normalize(number, SmsSettings.load().country_code)
    except ValueError:
        raise CliError(f"{number!r} is not a phone number") from None


def cmd_block_add(args: argparse.Namespace, paths: Paths) -> str:
    msisdn = _msisdn(args.msisdn)
    return f"{msisdn} blocked" if blocklist.block(msisdn, "cli") else f"{msisdn} was already blocked"


def cmd_block_remove(args: argparse.Namespace, paths: Paths) -> str:
    msisdn = _msisdn(args.msisdn)
    if not blocklist.unblock(msisdn, "cli"):
        raise CliError(f"{msisdn} is not on the block list")
    return f"{msisdn} unblocked"


def cmd_block_list(args: argparse.Namespace, paths: Paths) -> str:
    rows = BlockedNumber.select().order_by(BlockedNumber.msisdn)
    return "\n".join(r.msisdn for r in rows) or "the block list is empty"


def cmd_modem_add(args: argparse.Namespace, paths: Paths) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", args.name):
        raise CliError("a modem name is 1 to 64 letters, digits, '.', '_' or '-'")
    port = modems.parse_field("port", args.port)
    baud = modems.parse_field("baud_rate", str(args.baud))
    prefixes = modems.parse_field("prefixes", ",".join(args.prefix or []))
    try:
        with db.atomic():
            Modem.create(name=args.name, port=port, prefixes=prefixes,
                         is_default=args.default, send_from_api=not args.no_api, active=not args.inactive,
                         baud_rate=baud)
            settings.bump_generation()
    except IntegrityError:
        raise CliError(f"modem {args.name!r} already exists") from None
    return f"modem {args.name!r} added on {args.port}"


def cmd_modem_set(args: argparse.Namespace, paths: Paths) -> str:
    value = modems.parse_field(args.field, args.value)
    cleared = modems.update(args.name, {args.field: value})
    shown = "(set)" if args.field in Modem.SECRETS and value else _show(value)
    line = f"modem {args.name!r}: {args.field} = {shown}"
    if cleared:
        again = " and ".join(f"'otppi modem set {args.name} {secret} …'" for secret in cleared)
        line += f"; {cleared_note(cleared)} with {again}"
    return line


def cmd_modem_show(args: argparse.Namespace, paths: Paths) -> str:
    row = Modem.get_or_none(Modem.name == args.name)
    if row is None:
        raise CliError(f"no modem named {args.name!r}")
    lines = []
    for name in Modem._meta.sorted_field_names:
        value = getattr(row, name)
        if name in Modem.SECRETS:
            value = "(set)" if value else ""
        lines.append(f"{name} = {_show(value)}")
    return "\n".join(lines)


def cmd_modem_remove(args: argparse.Namespace, paths: Paths) -> str:
    return _remove(Modem, Modem.name, "modem", args.name)


def _modem_dict(m: Modem) -> dict[str, Any]:
    return {"name": m.name, "port": m.port, "prefixes": m.prefix_list(), "default": m.is_default,
            "send_from_api": m.send_from_api, "active": m.active, "baud_rate": m.baud_rate}


def cmd_modem_list(args: argparse.Namespace, paths: Paths) -> str:
    modems = [_modem_dict(m) for m in Modem.select().order_by(Modem.name)]
    if args.json:
        return json.dumps(modems)
    if not modems:
        return "no modems"
    return "\n".join(
        f"{m['name']}\t{m['port']}\tprefixes={','.join(m['prefixes']) or '-'}"
        f"\t{'default' if m['default'] else '-'}\t{'api' if m['send_from_api'] else 'manual-only'}"
        f"\t{'active' if m['active'] else 'inactive'}"
        for m in modems
    )


def _pem(path: str, what: str) -> str:
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read the {what} {path}: {exc}") from None
    if "-----BEGIN " not in text or len(text) > 64 * 1024:
        raise CliError(f"{path} is not a PEM {what}")
    return text


def cmd_keystore_add(args: argparse.Namespace, paths: Paths) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", args.name):
        raise CliError("a keystore name is 1 to 64 letters, digits, '.', '_' or '-'")
    certificate, private_key = _pem(args.cert, "certificate"), _pem(args.key, "private key")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(args.cert, args.key)
    except (ssl.SSLError, OSError) as exc:
        raise CliError(f"the certificate and key do not make a usable pair: {exc}") from None
    try:
        with db.atomic():
            KeystoreEntry.create(name=args.name, certificate=certificate, private_key=private_key)
            settings.bump_generation()
    except IntegrityError:
        raise CliError(f"keystore entry {args.name!r} already exists") from None
    return f"keystore entry {args.name!r} added (its private key is sealed in the store)"


def cmd_keystore_list(args: argparse.Namespace, paths: Paths) -> str:
    rows = KeystoreEntry.select(KeystoreEntry.name, KeystoreEntry.active).order_by(KeystoreEntry.name)
    return "\n".join(f"{r.name}\t{'active' if r.active else 'inactive'}" for r in rows) or "the keystore is empty"


def cmd_keystore_remove(args: argparse.Namespace, paths: Paths) -> str:
    return _remove(KeystoreEntry, KeystoreEntry.name, "keystore entry", args.name)


# ---------------------------------------------------------------- parser


def _sub(parent: argparse._SubParsersAction, name: str, help: str, func: Callable | None = None) -> argparse.ArgumentParser:
    parser = parent.add_parser(name, help=help, description=help)
    if func is not None:
        parser.set_defaults(func=func)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otppi", description="Provision and inspect an OTP-Pi (reads OTPPI_ROOT).")
    parser.add_argument("--version", action="version", version=f"otppi {__version__}")
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _sub(top, "migrate", "create or upgrade the database schema and the device keys", cmd_migrate)

    _sub(top, "setup-code", "print the code the admin web's first-run page asks for (while no administrator "
         "exists)", cmd_setup_code)

    admin = _sub(top, "admin", "administrators of the admin web").add_subparsers(dest="action", required=True)
    p = _sub(admin, "add", "add an administrator", cmd_admin_add)
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.add_argument("--email")
    p.add_argument("--phone")

    api_user = _sub(top, "api-user", "users allowed to call the REST API").add_subparsers(dest="action", required=True)
    p = _sub(api_user, "add", "add an API user", cmd_api_user_add)
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.add_argument("--email")
    p.add_argument("--phone")
    ussd_help = "may run USSD codes with request-ussd (they can move credit; off unless given)"
    p.add_argument("--allow-ussd", action="store_true", help=ussd_help)
    p = _sub(api_user, "set", "change what an API user may do", cmd_api_user_set)
    p.add_argument("name")
    p.add_argument("--allow-ussd", action=argparse.BooleanOptionalAction, default=None, help=ussd_help)
    _sub(api_user, "remove", "remove an API user", cmd_api_user_remove).add_argument("name")
    _sub(api_user, "list", "list API users", cmd_api_user_list)

    sets = _sub(top, "settings", "read and change settings (section.field keys)").add_subparsers(dest="action", required=True)
    _sub(sets, "get", "print one setting", cmd_settings_get).add_argument("key")
    p = _sub(sets, "set", "change one setting; it applies live", cmd_settings_set)
    p.add_argument("key")
    p.add_argument("value", nargs="?")
    p.add_argument("--value-stdin", action="store_true",
                   help="read the value from standard input (keeps passwords out of the process list)")
    _sub(sets, "list", "print every setting (secrets hidden)", cmd_settings_list)

    block = _sub(top, "block", "the block list of numbers that never get SMS").add_subparsers(dest="action", required=True)
    _sub(block, "add", "block a number", cmd_block_add).add_argument("msisdn")
    _sub(block, "remove", "unblock a number", cmd_block_remove).add_argument("msisdn")
    _sub(block, "list", "list blocked numbers", cmd_block_list)

    modem = _sub(top, "modem", "modem records").add_subparsers(dest="action", required=True)
    p = _sub(modem, "add", "register a modem", cmd_modem_add)
    p.add_argument("name")
    p.add_argument("--port", required=True, help="serial device, e.g. /dev/serial/by-id/usb-HUAWEI_…")
    p.add_argument("--prefix", action="append", help="MSISDN prefix this modem sends to (repeatable)")
    p.add_argument("--default", action="store_true", help="send numbers no prefix matches")
    p.add_argument("--no-api", action="store_true", help="manual SMS only, never API traffic")
    p.add_argument("--inactive", action="store_true", help="registered but never used")
    p.add_argument("--baud", type=int, default=115200)
    _sub(modem, "remove", "remove a modem", cmd_modem_remove).add_argument("name")
    p = _sub(modem, "set", "change one field of a modem (port, sim_pin, parity, apn, init_dial_1, active …)",
             cmd_modem_set)
    p.add_argument("name")
    p.add_argument("field")
    p.add_argument("value")
    _sub(modem, "show", "every field of a modem (secrets hidden)", cmd_modem_show).add_argument("name")
    p = _sub(modem, "list", "list modems", cmd_modem_list)
    p.add_argument("--json", action="store_true")
    store = _sub(top, "keystore", "TLS certificates and keys for the HTTPS listener (api.https_keystore)"
                 ).add_subparsers(dest="action", required=True)
    p = _sub(store, "add", "add a certificate and its private key (PEM files)", cmd_keystore_add)
    p.add_argument("name")
    p.add_argument("--cert", required=True, help="the certificate (chain) in PEM")
    p.add_argument("--key", required=True, help="its private key in PEM, unencrypted")
    _sub(store, "list", "list keystore entries (keys are never shown)", cmd_keystore_list)
    _sub(store, "remove", "remove a keystore entry", cmd_keystore_remove).add_argument("name")
    add_modem_commands(top)
    add_mail_commands(top)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    paths = Paths.from_env()
    try:
        if args.func is not cmd_migrate:
            _open(paths)
        print(args.func(args, paths))
    except (CliError, ToolError, settings.SettingError, SecretError, OSError) as exc:
        print(f"otppi: {one_line(str(exc))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
