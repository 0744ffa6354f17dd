"""Choosing the SMTP account for the next message: round robin, failover, daily quotas.

The spec's Multiple Email Account section: several accounts share the load so
each stays under its provider's daily limit (20 accounts of 500 a day make
10,000). An account that reached its quota rests until midnight in the
device's time zone. Everything here is a function of the accounts, the
counts and an injected clock, so the rest-until-tomorrow decision is tested
without waiting for a day to pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterable
from zoneinfo import ZoneInfo

from ..store.models import EmailAccount


def day_of(now: float, zone: ZoneInfo) -> str:
    """The calendar day of *now* (Unix seconds) in *zone*, as YYYY-MM-DD: the quota's day."""
    return datetime.fromtimestamp(now, zone).date().isoformat()


def next_day_starts(now: float, zone: ZoneInfo) -> float:
    """Unix seconds of the next midnight in *zone* after *now* (when a resting account may send again)."""
    today = datetime.fromtimestamp(now, zone).date()
    midnight = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return midnight.timestamp()


@dataclass(frozen=True)
class Account:
    """One active EmailAccount row, as the mailer uses it."""

    id: int
    sender: str
    host: str
    port: int
    ssl: bool
    starttls: bool
    authentication: bool
    password: str
    ca_file: str
    daily_quota: int
    allow_plain_login: bool = False

    @classmethod
    def from_row(cls, row: EmailAccount) -> "Account":
        return cls(id=row.id, sender=row.sender_account, host=row.smtp_host, port=row.smtp_port, ssl=row.ssl,
                   starttls=row.starttls, authentication=row.authentication, password=row.sender_password,
                   ca_file=row.ca_file, daily_quota=row.daily_quota, allow_plain_login=row.allow_plain_login)

    def __repr__(self) -> str:  # never the password, even in a traceback
        return f"Account(id={self.id}, sender={self.sender!r}, host={self.host!r}, port={self.port})"


class Pool:
    """The active accounts in a fixed order, a round-robin position, and each one's count for its day."""

    def __init__(self, zone: ZoneInfo | None = None, clock: Callable[[], float] = time.time):
        self.zone = zone or ZoneInfo("UTC")
        self.clock = clock
        self.accounts: list[Account] = []
        self._next = 0
        self._counts: dict[int, tuple[str, int]] = {}  # account id → (day, sent that day)
        self._in_flight: dict[int, int] = {}

    def load(self, rows: Iterable[EmailAccount], zone: ZoneInfo) -> None:
        """Take the active accounts of *rows* and the counts they recorded (settings changed)."""
        self.zone = zone
        active = sorted((row for row in rows if row.active), key=lambda row: row.id)
        self.accounts = [Account.from_row(row) for row in active]
        self._counts = {row.id: (row.quota_day, row.sent_today) for row in active}
        self._in_flight = {a.id: self._in_flight[a.id] for a in self.accounts if self._in_flight.get(a.id)}

    def sent_today(self, account_id: int, now: float | None = None) -> int:
        day, count = self._counts.get(account_id, ("", 0))
        return count if day == day_of(self.clock() if now is None else now, self.zone) else 0

    def rests(self, account: Account, now: float | None = None) -> bool:
        """True while *account* has used its daily quota (messages on their way count)."""
        if not account.daily_quota:
            return False
        used = self.sent_today(account.id, now) + self._in_flight.get(account.id, 0)
        return used >= account.daily_quota

    def resting_until(self, account: Account, now: float | None = None) -> float | None:
        now = self.clock() if now is None else now
        return next_day_starts(now, self.zone) if self.rests(account, now) else None

    def choose(self, tried: set[int]) -> Account | None:
        """The next account in turn that has not failed this message and is not resting; None if none."""
        now = self.clock()
        count = len(self.accounts)
        for step in range(count):
            index = (self._next + step) % count
            account = self.accounts[index]
            if account.id in tried or self.rests(account, now):
                continue
            self._next = (index + 1) % count
            self._in_flight[account.id] = self._in_flight.get(account.id, 0) + 1
            return account
        return None

    def done(self, account_id: int, sent: bool) -> tuple[str, int] | None:
        """A message chosen for *account_id* came back; when *sent*, the (day, count) to record."""
        if self._in_flight.get(account_id, 0) > 0:
            self._in_flight[account_id] -= 1
        if not sent:
            return None
        day = day_of(self.clock(), self.zone)
        previous, count = self._counts.get(account_id, (day, 0))
        count = count + 1 if previous == day else 1
        self._counts[account_id] = (day, count)
        return day, count

    def all_resting(self, tried: set[int]) -> bool:
        """Every account this message has not tried is resting on its quota (and there is one)."""
        left = [a for a in self.accounts if a.id not in tried]
        return bool(left) and all(self.rests(a) for a in left)
