"""The MIME message of one email: UTF-8 text with an HTML alternative, safe headers.

Pure: the same inputs give the same message (but for its random Message-ID).
Header injection is impossible here whatever the caller passes: addresses
must be plain ``local@domain`` (dot-atom, no display part, no spaces, no
commas), and every control character of a subject or a display name, CR and
LF included, becomes a space. The request contract refuses them before, but
a reset mail or a setting does not pass through it.
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
PLAIN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
HEADER_LIMIT = 200


class ComposeError(ValueError):
    """Something no account could send (an address that is not a plain address)."""


def header_text(value: str, limit: int = HEADER_LIMIT) -> str:
    """*value* on one line: control characters (CR, LF, tab …) become spaces, runs of spaces one."""
    return " ".join(_CONTROL.sub(" ", value).split())[:limit]


def plain_address(value: str, what: str = "address") -> str:
    value = value.strip()
    if len(value) > 254 or not PLAIN_ADDRESS.fullmatch(value):
        raise ComposeError(f"the {what} is not a plain email address (local@domain)")
    return value


def html_of(text: str, title: str) -> str:
    """The text as HTML: escaped, paragraphs at blank lines, line breaks kept; nothing remote."""
    paragraphs = [p for p in re.split(r"\n(?:[ \t]*\n)+", text.strip()) if p.strip()]
    body = "\n".join("<p>" + "<br>\n".join(html.escape(line) for line in p.split("\n")) + "</p>"
                     for p in paragraphs)
    return ('<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def compose(*, sender: str, from_name: str, receiver: str, subject: str, text: str, now: float,
            zone: ZoneInfo) -> EmailMessage:
    """The message from *sender* (shown as *from_name*) to *receiver*, dated *now* in *zone*."""
    sender = plain_address(sender, "sender account")
    receiver = plain_address(receiver, "receiver")
    subject = header_text(subject)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    message = EmailMessage(policy=SMTP)
    message["From"] = Address(display_name=header_text(from_name), addr_spec=sender)
    message["To"] = Address(addr_spec=receiver)
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.fromtimestamp(now, zone))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    # RFC 3834: machine-made, so vacation responders keep quiet.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text, charset="utf-8")
    message.add_alternative(html_of(text, subject), subtype="html", charset="utf-8")
    return message
