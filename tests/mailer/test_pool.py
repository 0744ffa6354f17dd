"""Choosing accounts: round robin, failover, quotas and the day they count in (an injected clock)."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from otppi.mailer.pool import Pool, day_of, next_day_starts

JAKARTA = ZoneInfo("Asia/Jakarta")  # UTC+7, no DST
BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str, zone: ZoneInfo) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def row(id: int, quota: int = 0, active: bool = True, day: str = "", sent: int = 0):
    return SimpleNamespace(id=id, sender_account=f"a{id}@example.com", smtp_host="h", smtp_port=587, ssl=False,
                           starttls=True, authentication=True, sender_password="secret", ca_file="", allow_plain_login=False,
                           daily_quota=quota, active=active, quota_day=day, sent_today=sent)


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_day_in_the_device_zone() -> None:
    late = at("2024-03-01 23:59:59", JAKARTA)
    assert day_of(late, JAKARTA) == "2024-03-01"
    assert day_of(late + 1, JAKARTA) == "2024-03-02"
    assert day_of(late + 1, ZoneInfo("UTC")) == "2024-03-01"  # 17:00 UTC: still the 1st there
    assert next_day_starts(late, JAKARTA) == late + 1
    assert next_day_starts(late + 1, JAKARTA) == late + 1 + 86_400


def test_next_day_across_a_dst_change() -> None:
    before = at("2024-03-30 12:00:00", BERLIN)  # the night of 31 March has 23 hours
    assert next_day_starts(before, BERLIN) == at("2024-03-31 00:00:00", BERLIN)
    assert next_day_starts(at("2024-03-31 12:00:00", BERLIN), BERLIN) - at("2024-03-31 00:00:00", BERLIN) == 23 * 3600


def test_round_robin_skips_inactive_and_tried() -> None:
    pool = Pool(clock=Clock(at("2024-03-01 10:00:00", JAKARTA)))
    pool.load([row(3), row(1), row(2, active=False)], JAKARTA)
    order = []
    for _ in range(4):
        account = pool.choose(set())
        order.append(account.id)
        pool.done(account.id, sent=True)
    assert order == [1, 3, 1, 3]
    assert pool.choose({1}).id == 3 and pool.choose({1, 3}) is None
    assert "secret" not in repr(pool.accounts)


def test_quota_rests_the_account_until_midnight_in_the_device_zone() -> None:
    clock = Clock(at("2024-03-01 23:58:00", JAKARTA))
    pool = Pool(clock=clock)
    pool.load([row(1, quota=2), row(2)], JAKARTA)
    chosen = []
    for _ in range(5):
        account = pool.choose(set())
        chosen.append(account.id)
        pool.done(account.id, sent=True)
    assert chosen == [1, 2, 1, 2, 2]  # the first rests after two
    first = pool.accounts[0]
    assert pool.rests(first) and pool.resting_until(first) == at("2024-03-02 00:00:00", JAKARTA)
    assert pool.sent_today(1) == 2
    clock.now = at("2024-03-02 00:00:00", JAKARTA)  # midnight in Jakarta (17:00 UTC)
    assert not pool.rests(first) and pool.sent_today(1) == 0 and pool.resting_until(first) is None
    assert pool.choose({2}).id == 1
    assert pool.done(1, sent=True) == ("2024-03-02", 1)


def test_counts_recorded_on_the_rows_survive_a_reload() -> None:
    clock = Clock(at("2024-03-01 12:00:00", JAKARTA))
    pool = Pool(clock=clock)
    pool.load([row(1, quota=500, day="2024-03-01", sent=500), row(2, quota=500, day="2024-02-29", sent=500)],
              JAKARTA)
    assert pool.rests(pool.accounts[0]) and not pool.rests(pool.accounts[1])  # yesterday's count is spent
    assert pool.choose(set()).id == 2
    assert pool.all_resting({2}) and not pool.all_resting(set())


def test_messages_on_their_way_count_against_the_quota() -> None:
    pool = Pool(clock=Clock(at("2024-03-01 12:00:00", JAKARTA)))
    pool.load([row(1, quota=1)], JAKARTA)
    assert pool.choose(set()).id == 1
    assert pool.choose(set()) is None  # one in flight uses the quota
    pool.done(1, sent=False)
    assert pool.choose(set()).id == 1


def test_twenty_accounts_of_500_make_10000_a_day() -> None:
    clock = Clock(at("2024-03-01 00:00:01", JAKARTA))
    pool = Pool(clock=clock)
    pool.load([row(i, quota=500) for i in range(1, 21)], JAKARTA)
    sent = 0
    while (account := pool.choose(set())) is not None:
        pool.done(account.id, sent=True)
        sent += 1
    assert sent == 10_000 and all(pool.sent_today(i) == 500 for i in range(1, 21))
    clock.now = at("2024-03-02 00:00:00", JAKARTA)
    assert pool.choose(set()) is not None
