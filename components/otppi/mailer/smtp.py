"""Sending one message through one SMTP account, with errors an operator can act on.

Security modes, from the account: ``ssl`` is TLS from the first byte (port
465); else ``starttls`` upgrades a plain connection (port 587) and refuses to
go on in clear when the server does not offer it; else plain SMTP. The
spec's Gmail example sets both SSL and STARTTLS for port 465: STARTTLS is
meaningless inside TLS and is ignored then. Certificates are always
verified: against the account's CA file when it has one, else the system's.
A password goes only over TLS, unless the account says ``allow_plain_login``
(a server that offers nothing else): checked before connecting, so a plain
account never even opens a connection its password could be read on.

Every failure becomes a :class:`SendError` whose reason names what went
wrong ("authentication failed", "TLS failed: …", "cannot connect: …",
"recipient refused: …") and whether it may pass on its own (``transient``:
a server down, a 4xx reply), which decides whether the pool is tried again
later. Reasons carry the server's reply, never the message.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage

from .compose import header_text
from .pool import Account


class SendError(Exception):
    def __init__(self, reason: str, transient: bool):
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


def tls_context(ca_file: str) -> ssl.SSLContext:
    """Hostname and certificate checked; *ca_file*, when given, is the only trusted CA."""
    try:
        return ssl.create_default_context(cafile=ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise SendError(f"TLS failed: cannot load the CA file {ca_file}: {exc}", transient=False) from None


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return header_text(f"{code} {text}", 160)


def _is_4xx(code: int) -> bool:
    return 400 <= code < 500


def explain(exc: BaseException, stage: str, host: str) -> SendError:
    """The SendError for *exc* raised while at *stage* (connect, hello, starttls, login, send)."""
    if isinstance(exc, SendError):
        return exc
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return SendError(f"authentication failed: {_reply(exc.smtp_code, exc.smtp_error)}", transient=False)
    if isinstance(exc, smtplib.SMTPNotSupportedError) and stage == "login":
        return SendError("authentication failed: the server offers no AUTH here", transient=False)
    if isinstance(exc, UnicodeEncodeError) and stage == "login":
        return SendError("authentication failed: smtplib sends only ASCII logins and passwords", transient=False)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()), (550, b""))
        return SendError(f"recipient refused: {_reply(code, text)}", transient=_is_4xx(code))
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return SendError(f"sender refused: {_reply(exc.smtp_code, exc.smtp_error)}", transient=_is_4xx(exc.smtp_code))
    if isinstance(exc, smtplib.SMTPDataError):
        return SendError(f"message refused: {_reply(exc.smtp_code, exc.smtp_error)}", transient=_is_4xx(exc.smtp_code))
    if isinstance(exc, smtplib.SMTPConnectError):
        return SendError(f"cannot connect: the server answered {_reply(exc.smtp_code, exc.smtp_error)}",
                         transient=True)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return SendError(f"the server closed the connection during {stage}", transient=True)
    if isinstance(exc, smtplib.SMTPResponseException):
        return SendError(f"{stage} refused: {_reply(exc.smtp_code, exc.smtp_error)}",
                         transient=_is_4xx(exc.smtp_code))
    if isinstance(exc, ssl.SSLCertVerificationError):
        return SendError(f"TLS failed: the server's certificate is not trusted ({exc.verify_message})",
                         transient=False)
    if isinstance(exc, ssl.SSLError):
        return SendError(f"TLS failed: {exc.reason or exc}", transient=False)
    if isinstance(exc, (TimeoutError, socket.timeout)):
        what = "cannot connect: timed out" if stage == "connect" else f"timed out during {stage}"
        return SendError(what, transient=True)
    if isinstance(exc, ConnectionRefusedError) and stage == "connect":
        return SendError("cannot connect: connection refused", transient=True)
    if isinstance(exc, socket.gaierror):
        return SendError(f"cannot connect: unknown host {header_text(host, 100)}", transient=True)
    if isinstance(exc, OSError):
        why = exc.strerror or str(exc) or type(exc).__name__
        what = f"cannot connect: {why}" if stage == "connect" else f"connection lost during {stage}: {why}"
        return SendError(what, transient=True)
    if isinstance(exc, smtplib.SMTPException):
        return SendError(f"SMTP error during {stage}: {header_text(str(exc), 160)}", transient=False)
    raise exc


def login_refused(account: Account) -> str:
    """Why *account* must not log in at all ("" when it may): no password, or no TLS to send it over."""
    if not account.authentication:
        return ""
    if not account.password:
        return ("authentication failed: the account has no password (a change of its server cleared it): "
                "enter it again")
    if not account.ssl and not account.starttls and not account.allow_plain_login:
        return ("login refused: the password would go without TLS; turn on SSL or STARTTLS, or allow plain "
                "login for this account if its server offers no TLS")
    return ""


class Conversation:
    """One connection to one account's server; :attr:`stage` says where a failure happened."""

    def __init__(self, account: Account, timeout: float):
        self.account = account
        self.timeout = timeout
        self.stage = "connect"

    def send(self, message: EmailMessage, receiver: str) -> None:
        account = self.account
        refused = login_refused(account)
        if refused:
            raise SendError(refused, transient=False)
        try:
            context = tls_context(account.ca_file) if account.ssl or account.starttls else None
            if account.ssl:
                client: smtplib.SMTP = smtplib.SMTP_SSL(account.host, account.port, timeout=self.timeout,
                                                        context=context)
            else:
                client = smtplib.SMTP(account.host, account.port, timeout=self.timeout)
        except Exception as exc:
            raise explain(exc, self.stage, account.host) from None
        try:
            self._converse(client, context, message, receiver)
        except Exception as exc:
            raise explain(exc, self.stage, account.host) from None
        finally:
            _close(client)

    def _converse(self, client: smtplib.SMTP, context: ssl.SSLContext | None, message: EmailMessage,
                  receiver: str) -> None:
        account = self.account
        self.stage = "hello"
        client.ehlo()
        if account.starttls and not account.ssl:
            self.stage = "starttls"
            if not client.has_extn("starttls"):
                raise SendError("TLS failed: the server does not offer STARTTLS", transient=False)
            client.starttls(context=context)
            client.ehlo()
        if account.authentication:
            self.stage = "login"
            client.login(account.sender, account.password)
        self.stage = "send"
        client.send_message(message, from_addr=account.sender, to_addrs=[receiver])


def _close(client: smtplib.SMTP) -> None:
    """QUIT politely; a message already accepted stays sent whatever QUIT answers."""
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


def send(account: Account, message: EmailMessage, receiver: str, *, timeout: float) -> None:
    """Deliver *message* to *receiver* through *account*, or raise SendError."""
    Conversation(account, timeout).send(message, receiver)
