"""Migration 3 brings a version-1 store up to what the mailer needs, keeping the accounts it had."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from otppi.store.db import db, open_database
from otppi.store.migrations import LATEST, migrate
from otppi.store.models import EmailAccount, EmailOutbox, MailSettings

SCHEMA_V1 = Path(__file__).resolve().parent.parent / "data/schema_v1.sql"


def test_upgrade_from_version_1(short_tmp: Path) -> None:
    path = short_tmp / "v1.db"
    con = sqlite3.connect(path)
    con.executescript(SCHEMA_V1.read_text())
    con.execute("insert into email_account (smtp_host, smtp_port, ssl, starttls, authentication, sender_account,"
                " sender_password, active, daily_quota, sent_today, quota_day, created_at)"
                " values ('smtp.gmail.com', 587, 0, 1, 1, 'otp@example.com', 'pw', 1, 500, 3, '2024-03-01', 0)")
    con.execute("insert into email_outbox (kind, source, receiver, subject, state, attempts, last_error, account,"
                " created_at, updated_at) values ('email', 't', 'a@b.example', 's', 'queued', 0, '', '', 0, 0)")
    con.commit()
    con.close()
    open_database(path, sealing_key=bytes(range(32)))
    try:
        assert migrate(db) == (1, LATEST)
        assert migrate(db) == (LATEST, LATEST)
        account = EmailAccount.get()
        assert (account.sender_account, account.daily_quota, account.sent_today, account.ca_file) == \
            ("otp@example.com", 500, 3, "")
        row = EmailOutbox.get()
        assert (row.tried, row.retryable, row.rounds, row.retry_at) == ("", False, 0, None)
        assert MailSettings.load().pool_retries == 2
    finally:
        db.close()
