"""``otppi-wsbroker``: a small WebSocket broker for the app-server side (not part of the device image).

It speaks the spec's WSMessageBroker handshake (``GET <path>?topic=<topic>``
with HTTP Basic auth), so the app server and OTP-Pi devices behind NAT both
connect to it as clients; every message is passed to every other client on
its topic. ``serve`` runs it; ``passwd`` adds, replaces or removes a user in
the users file (argon2id hashes, one ``username:hash`` line each).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from .. import __version__, journal
from ..auth import MAX_PASSWORD
from .server import Options, run
from .users import Users, UsersFileError, remove, set_password

log = logging.getLogger("otppi.wsbroker")


def _serve(args: argparse.Namespace) -> int:
    if not args.path.startswith("/"):
        print("otppi-wsbroker: --path must start with '/'", file=sys.stderr)
        return 2
    if bool(args.tls_cert) != bool(args.tls_key):
        print("otppi-wsbroker: give both --tls-cert and --tls-key, or neither", file=sys.stderr)
        return 2
    try:
        users = Users(args.users)
    except UsersFileError as exc:
        print(f"otppi-wsbroker: {exc}", file=sys.stderr)
        return 2
    if not len(users):
        log.warning("%s lists no users: every client will be refused until one is added", args.users)
    options = Options(host=args.host, port=args.port, path=args.path, max_size=args.max_size,
                      max_clients=args.max_clients, tls_cert=args.tls_cert, tls_key=args.tls_key)
    try:
        asyncio.run(run(users, options))
    except OSError as exc:  # the port is taken, a certificate cannot be read …
        log.error("cannot serve: %s", exc)
        return 1
    return 0


def _passwd(args: argparse.Namespace) -> int:
    try:
        if args.delete:
            remove(args.file, args.user)
            print(f"removed user {args.user}")
            return 0
        if not args.password_stdin:
            print("otppi-wsbroker: give the password on standard input with --password-stdin", file=sys.stderr)
            return 2
        password = sys.stdin.readline().rstrip("\r\n")
        if not password or len(password) > MAX_PASSWORD:
            print(f"otppi-wsbroker: the password must be 1 to {MAX_PASSWORD} characters", file=sys.stderr)
            return 2
        new = set_password(args.file, args.user, password)
    except (UsersFileError, OSError) as exc:
        print(f"otppi-wsbroker: {exc}", file=sys.stderr)
        return 1
    print(f"{'added user' if new else 'changed the password of'} {args.user}")
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otppi-wsbroker", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every message's size (never its body)")
    verbs = parser.add_subparsers(dest="verb", required=True)

    serve = verbs.add_parser("serve", help="run the broker until SIGTERM or SIGINT")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument("--path", default="/ws", help="the WebSocket path (default /ws)")
    serve.add_argument("--users", type=Path, required=True, help="users file made by 'otppi-wsbroker passwd'")
    serve.add_argument("--tls-cert", type=Path, help="serve wss:// with this certificate (PEM, chain first)")
    serve.add_argument("--tls-key", type=Path, help="the certificate's private key (PEM)")
    serve.add_argument("--max-size", type=_positive, default=64 * 1024,
                       help="largest message in bytes; bigger ones close the sender with 1009 (default 65536)")
    serve.add_argument("--max-clients", type=_positive, default=1000,
                       help="most clients at once; more are answered 503 (default 1000)")
    serve.set_defaults(func=_serve)

    passwd = verbs.add_parser("passwd", help="add a user, change a password, or remove a user")
    passwd.add_argument("file", type=Path, help="the users file (created when missing, mode 0600)")
    passwd.add_argument("user")
    how = passwd.add_mutually_exclusive_group()
    how.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    how.add_argument("--delete", action="store_true", help="remove the user")
    passwd.set_defaults(func=_passwd)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    journal.setup("otppi-wsbroker: %(levelname)s %(message)s", logging.DEBUG if args.verbose else logging.INFO)
    # The library's own lines (one per connection open and close) say less than ours.
    logging.getLogger("websockets").setLevel(logging.WARNING)
    return args.func(args)
