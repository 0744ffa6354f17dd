"""The mailer end to end: its own process, accounts provisioned with the CLI, a real SMTP server."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo


def send(mail_root, receiver: str, text: str, *args: str, wait: str = "20"):
    return mail_root.cli("email", "send", receiver, text, "--wait", wait, *args, check=False)


def test_delivery_in_each_security_mode_round_robin(mail_root, mailer, smtp) -> None:
    mail_root.add_account("otp1@example.com", "plain")
    mail_root.add_account("otp2@example.com", "starttls")
    mail_root.add_account("otp3@example.org", "smtps")
    mailer()
    for i, (server, sender, tls) in enumerate((("plain", "otp1@example.com", False),
                                               ("starttls", "otp2@example.com", True),
                                               ("smtps", "otp3@example.org", True))):
        receiver = f"mode{i}@client.example"
        result = send(mail_root, receiver, f"message {i}")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"sent via {sender}"
        got = smtp.received(receiver)
        assert (got.server, got.mail_from, got.tls, got.login) == (server, sender, tls, sender)
        assert got.message.get_body(("plain",)).get_content().strip() == f"message {i}"
    sent = mail_root.outbox()
    assert [(r[3], r[4], r[7]) for r in sent] == [("sent", s, None) for s in
                                                  ("otp1@example.com", "otp2@example.com", "otp3@example.org")]


def test_authentication_fails_and_the_next_account_delivers(mail_root, mailer, smtp) -> None:
    mail_root.add_account("otp1@example.com", "starttls", password="not-the-password")
    mail_root.add_account("otp2@example.com", "smtps")
    mailer()
    result = send(mail_root, "auth@client.example", "hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "sent via otp2@example.com"
    got = smtp.received("auth@client.example")
    assert (got.server, got.login) == ("smtps", "otp2@example.com")
    events = mail_root.events()
    assert events[0][:3] == ("otp1@example.com", "a***@client.example", "retry")
    assert events[0][3].startswith("authentication failed: 535")
    assert events[-1][:3] == ("otp2@example.com", "a***@client.example", "sent")
    (row,) = mail_root.outbox()
    assert (row[3], row[4], row[5], row[7]) == ("sent", "otp2@example.com", 2, None)


def test_every_server_down_is_retried_then_1102(mail_root, mailer, api_for) -> None:
    mail_root.add_account("otp1@example.com", None)
    mail_root.add_account("otp2@example.com", None)
    mail_root.cli("settings", "set", "mail.pool_retries", "2")
    mailer()
    api = api_for()
    answer = api.post("/api/sms", {"command": "send-email", "data": {
        "id": "down-1", "receiver": "down@client.example", "message": "Your OTP is 1234"}}).json()
    assert answer["response_code"] == "1102", answer
    assert "cannot connect: connection refused" in answer["message"]
    (row,) = mail_root.outbox()
    assert (row[3], row[5], row[7]) == ("failed", 6, None)  # two accounts, three passes; body erased
    events = mail_root.events()
    assert [e[2] for e in events] == ["retry"] * 6 + ["failed"]
    assert {e[0] for e in events[:6]} == {"otp1@example.com", "otp2@example.com"}
    assert all(e[3] == "cannot connect: connection refused" for e in events[:6])
    # The same id again is answered with the first outcome, never sent twice.
    again = api.post("/api/sms", {"command": "send-email", "data": {
        "id": "down-1", "receiver": "down@client.example", "message": "Your OTP is 1234"}}).json()
    assert again["response_code"] == "1102" and len(mail_root.outbox()) == 1


def test_quota_reached_and_the_pool_moves_on(mail_root, mailer, smtp) -> None:
    mail_root.cli("settings", "set", "time.time_zone", "Pacific/Kiritimati")  # UTC+14: any day rule shows
    mail_root.add_account("otp1@example.com", "starttls", "--quota", "1")
    mailer()
    # An account added while the mailer runs is used at once.
    mail_root.add_account("bulk@example.net", "smtps", "--quota", "2")
    senders = []
    for i in range(3):
        result = send(mail_root, f"quota{i}@client.example", f"n{i}")
        assert result.returncode == 0, result.stderr
        senders.append(result.stdout.strip().removeprefix("sent via "))
    assert senders == ["otp1@example.com", "bulk@example.net", "bulk@example.net"]
    listed = {a["sender"]: a for a in json.loads(mail_root.cli("email-account", "list", "--json").stdout)}
    today = datetime.now(ZoneInfo("Pacific/Kiritimati")).date().isoformat()
    assert (listed["otp1@example.com"]["sent_today"], listed["otp1@example.com"]["quota_day"]) == (1, today)
    assert listed["bulk@example.net"]["sent_today"] == 2
    # Every account has used its quota: the message fails at once, saying why.
    result = send(mail_root, "quota3@client.example", "n3")
    assert result.returncode == 1
    assert "every email account has reached its daily quota" in result.stderr
    assert "Pacific/Kiritimati" in result.stderr
    assert smtp.all_to("quota3@client.example") == []
