"""A store error in the modem component fails one job, never a modem's worker.

The error is a real one: the test holds the database's write lock (BEGIN IMMEDIATE on its own
connection) longer than the component's busy timeout, as a long transaction of another process or a
stuck SD card would, so the worker's own write fails with peewee's OperationalError "database is
locked" exactly as on the device. A read-only file would not do: the component keeps the connection
it opened before the change, and its writes would go on.
"""

from __future__ import annotations

import sqlite3

from otppi import codes

from ..helpers import wait_until


def test_a_locked_database_fails_the_job_and_the_worker_carries_on(gateway_factory) -> None:
    gw = gateway_factory(count=1)
    gw.add_modem("m", 0, "--default")
    gw.start_modem(wait_for=["m"])

    lock = sqlite3.connect(gw.paths.database, timeout=1, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        gw.sim[0].receive_sms("+628123456789", "arrives while the store is locked")
        # The worker's write waits out the busy timeout (15 s), then fails.
        wait_until(lambda: "store error" in gw.log_text(), timeout=60, what="the worker's store error logged")
    finally:
        lock.rollback()
        lock.close()
    assert gw.sim[0].storage.listing(4), "a message that could not be stored stays on the SIM"

    wait_until(lambda: gw.rows("select body from inbox_message") == [("arrives while the store is locked",)],
               timeout=30, what="the message stored once the store answers again")
    wait_until(lambda: gw.sim[0].storage.listing(4) == [], what="the SIM emptied after the commit")
    assert gw.states() == {"m": "ready"}
    gw.start_api()
    answer = gw.rest("send-sms", id="after-the-lock", receiver="0812", message="the worker is still there")
    assert answer["response_code"] == codes.SUCCESS, answer
    assert [m.text for m in gw.sent(0)] == ["the worker is still there"]
    assert "Traceback" not in gw.log_text()
