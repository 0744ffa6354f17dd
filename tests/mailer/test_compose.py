"""The MIME message: pure, so checked on its own."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

import pytest

from otppi.mailer.compose import ComposeError, compose, header_text, html_of

JAKARTA = ZoneInfo("Asia/Jakarta")
NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC, 2023-11-15 05:13:20 in Jakarta


def parsed(**overrides):
    fields = dict(sender="otp@example.com", from_name="OTP-Pi", receiver="someone@domain.tld",
                  subject="Your code", text="Your OTP is 123456", now=NOW, zone=JAKARTA)
    fields.update(overrides)
    raw = compose(**fields).as_bytes()
    return raw, message_from_bytes(raw, policy=default_policy)


def test_headers() -> None:
    raw, msg = parsed(from_name="Kantor Pusat – OTP", subject="Kode verifikasi ✓ für Sie")
    assert msg["From"].addresses[0].display_name == "Kantor Pusat – OTP"
    assert msg["From"].addresses[0].addr_spec == "otp@example.com"
    assert str(msg["To"]) == "someone@domain.tld"
    assert str(msg["Subject"]) == "Kode verifikasi ✓ für Sie"
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n")[0]  # non-ASCII headers are encoded words
    date = parsedate_to_datetime(str(msg["Date"]))
    assert date.timestamp() == NOW and date.utcoffset().total_seconds() == 7 * 3600  # the device's zone
    assert str(msg["Message-ID"]).endswith("@example.com>")
    assert msg["Auto-Submitted"] == "auto-generated"
    assert all(line.endswith(b"\r") or line == b"" for line in raw.split(b"\n")[:-1])  # CRLF throughout


def test_utf8_text_with_an_escaped_html_alternative_and_nothing_remote() -> None:
    text = "Halo Budi — <b>kode</b> & \"sandi\":\n123456\n\n<img src=http://evil.example/x.png>"
    _, msg = parsed(text=text)
    assert msg.get_content_type() == "multipart/alternative"
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain.get_content_charset() == "utf-8" and plain.get_content().replace("\r\n", "\n").rstrip("\n") == text
    body = html.get_content().replace("\r\n", "\n")
    assert "&lt;b&gt;kode&lt;/b&gt; &amp; &quot;sandi&quot;:<br>\n123456</p>" in body
    assert "<img" not in body and "&lt;img src=http://evil.example/x.png&gt;" in body
    assert "<b>" not in body and "src=" not in body.replace("&lt;img src=", "")


@pytest.mark.parametrize("field", ["subject", "from_name"])
def test_cr_and_lf_cannot_add_a_header(field: str) -> None:
    raw, msg = parsed(**{field: "Hello\r\nBcc: victim@evil.example\r\n\r\nbody"})
    head = raw.split(b"\r\n\r\n")[0]
    assert b"\r\nBcc:" not in head and msg["Bcc"] is None
    assert "Bcc: victim@evil.example" in str(msg["Subject" if field == "subject" else "From"])


@pytest.mark.parametrize("receiver", ["a@b.c\r\nBcc: x@y.z", "x@y.z, other@evil.example", "Name <x@y.z>",
                                      "x@y.z>\r\nRCPT TO:<evil@e.x", "nobody", "a b@c.d", "ünï@example.com"])
def test_only_a_plain_receiver_address(receiver: str) -> None:
    with pytest.raises(ComposeError, match="receiver is not a plain email address"):
        parsed(receiver=receiver)


def test_header_text_is_one_line_and_bounded() -> None:
    assert header_text("a\r\n\tb\x00c\u2028d") == "a b c d"
    assert len(header_text("x" * 1000)) == 200


def test_html_paragraphs() -> None:
    assert "<p>one<br>\ntwo</p>\n<p>three</p>" in html_of("one\ntwo\n\n\nthree\n", "t")
    assert "<title>a &lt; b</title>" in html_of("x", "a < b")
