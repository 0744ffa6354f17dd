"""What the mailer sends: an OTP that validates, headers, the HTML alternative, the reset code, hostile input."""

from __future__ import annotations

import re
import time
from email.utils import parsedate_to_datetime


from otppi import keys
from otppi.admin.reset import reset_text
from otppi.paths import Paths
from otppi.store.db import close_database, open_database
from otppi.store.models import EmailOutbox
from otppi.store.outbox import enqueue

from ..helpers import wait_until


def test_an_otp_by_email_validates(mail_root, mailer, api_for, smtp) -> None:
    mail_root.add_account("otp1@example.com", "starttls")
    mailer()
    api = api_for()
    request = {"reference": "trx-991", "receiver": "Budi.Santoso@Client.Example", "param1": "acct-1",
               "param2": "250000"}
    created = api.post("/api/otp", {"command": "create-otp", "data": request}).json()
    assert created["response_code"] == "000", created
    got = smtp.received("budi.santoso@client.example")
    message = got.message
    assert str(message["Subject"]) == "OTP-Pi one-time password"
    text = message.get_body(("plain",)).get_content()
    code = re.fullmatch(r"Your OTP is (\d{6})\s*", text).group(1)
    assert f"Your OTP is {code}" in message.get_body(("html",)).get_content()
    (row,) = mail_root.outbox()
    assert (row[1], row[3], row[7]) == ("otp", "sent", None)  # the clear OTP is gone from the store
    assert code not in (mail_root.root / "mailer.log").read_text()
    wrong = "000000" if code != "000000" else "111111"
    answer = api.post("/api/otp", {"command": "validate-otp", "data": {**request, "otp": wrong}}).json()
    assert answer["response_code"] == "1202"
    answer = api.post("/api/otp", {"command": "validate-otp", "data": {**request, "otp": code}}).json()
    assert answer["response_code"] == "000", answer
    answer = api.post("/api/otp", {"command": "validate-otp", "data": {**request, "otp": code}}).json()
    assert answer["response_code"] == "1202"  # single use


def test_headers_and_the_html_alternative(mail_root, mailer, smtp) -> None:
    mail_root.add_account("otp3@example.org", "smtps")
    for key, value in (("general.device_name", "Kantor Pusat"), ("mail.from_name", "Kantor Pusat – Keamanan"),
                       ("time.time_zone", "Asia/Jakarta")):
        mail_root.cli("settings", "set", key, value)
    mailer()
    text = "Halo <b>Budi</b> & \"tim\",\nkode: 424242\n\nSalam"
    result = mail_root.cli("email", "send", "headers@client.example", text, "--subject", "Kode verifikasi ✓ für Sie",
                           "--wait", "20", check=False)
    assert result.returncode == 0, result.stderr
    got = smtp.received("headers@client.example")
    message = got.message
    sender = message["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == ("Kantor Pusat – Keamanan", "otp3@example.org")
    assert str(message["To"]) == "headers@client.example"
    assert str(message["Subject"]) == "Kode verifikasi ✓ für Sie"
    assert parsedate_to_datetime(str(message["Date"])).utcoffset().total_seconds() == 7 * 3600
    assert re.fullmatch(r"<[^<>@\s]+@example\.org>", str(message["Message-ID"]))
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    assert plain.get_content_charset() == "utf-8"
    assert plain.get_content().replace("\r\n", "\n").rstrip("\n") == text
    html = message.get_body(("html",)).get_content()
    assert "Halo &lt;b&gt;Budi&lt;/b&gt; &amp; &quot;tim&quot;,<br>" in html and "<b>" not in html
    assert not re.search(r"(src|href)\s*=", html, re.I)
    (row,) = mail_root.outbox()
    assert (row[3], row[7], row[8]) == ("sent", None, "Kode verifikasi ✓ für Sie")


def test_default_subject_from_the_mail_settings(mail_root, mailer, smtp) -> None:
    mail_root.add_account("otp1@example.com", "plain")
    mail_root.cli("settings", "set", "mail.default_subject", "Pesan dari OTP-Pi")
    mailer()
    assert mail_root.cli("email", "send", "subject@client.example", "x", "--wait", "20").returncode == 0
    assert str(smtp.received("subject@client.example").message["Subject"]) == "Pesan dari OTP-Pi"


def test_the_password_reset_code(mail_root, mailer, smtp) -> None:
    mail_root.add_account("otp2@example.com", "starttls")
    mailer()
    paths = Paths(mail_root.root)
    open_database(paths.database)
    try:
        row_id = enqueue(paths, keys.otp_key(paths), EmailOutbox, reset_text("OTP-Pi", "918273", 900), kind="reset",
                         source="admin", receiver="admin@client.example", expires_at=time.time() + 900).id
    finally:
        close_database()
    got = smtp.received("admin@client.example")
    assert str(got.message["Subject"]) == "OTP-Pi password reset"
    assert "password reset code is 918273" in got.message.get_body(("plain",)).get_content()
    wait_until(lambda: mail_root.outbox()[0][3] == "sent", what="the reset mail marked sent")
    (row,) = mail_root.outbox()
    assert (row[0], row[1], row[7]) == (row_id, "reset", None)


def test_hostile_input_is_refused(mail_root, mailer, api_for, smtp) -> None:
    mail_root.add_account("otp1@example.com", "plain")
    mailer()
    api = api_for()
    result = mail_root.cli("email", "send", "victim@client.example", "hi", "--subject",
                           "Hello\r\nBcc: everyone@evil.example", check=False)
    assert result.returncode == 1 and result.stderr.strip() == \
        "otppi: the subject must not contain control characters"
    assert mail_root.cli("settings", "set", "mail.from_name", "x\r\nBcc: a@b.c", check=False).returncode == 1
    assert mail_root.cli("email", "send", "a@b.c\r\nBcc: x@y.z", "hi", check=False).returncode == 1
    huge = {"command": "send-email", "data": {"receiver": "victim@client.example", "message": "A" * 1_000_000}}
    answer = api.post("/api/sms", huge).json()
    assert answer["response_code"] == "1300"
    long_text = {"command": "send-email", "data": {"receiver": "victim@client.example", "message": "A" * 1601}}
    assert api.post("/api/sms", long_text).json()["response_code"] == "1300"
    crlf = {"command": "send-email", "data": {"receiver": "victim@client.example", "message": "hi",
                                              "subject": "x\nBcc: everyone@evil.example"}}
    assert api.post("/api/sms", crlf).json()["response_code"] == "1300"
    assert mail_root.outbox() == [] and smtp.all_to("victim@client.example") == []
    # The contract takes some addresses no plain header may carry: they fail, and are never sent.
    odd = {"command": "send-email", "data": {"receiver": "a<b>@client.example", "message": "hi"}}
    answer = api.post("/api/sms", odd).json()
    assert answer["response_code"] == "1102" and "not a plain email address" in answer["message"]
