"""The feeder runner's reconnect loop as systemd runs it: jittered backoff, journal priorities."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ..helpers import free_port, otppi, wait_until

pytestmark = pytest.mark.slow

RETRY = re.compile(r"retrying in ([0-9.]+) s")


def dead_broker(root: Path, delay: float) -> None:
    """A Redis feeder enabled against a port nobody listens on."""
    for key, value in {"enabled": "true", "host": "127.0.0.1", "port": str(free_port()), "topic": "t",
                       "reconnect_delay": str(delay)}.items():
        otppi(root, "settings", "set", f"feeder_redis.{key}", value)


def test_reconnects_are_jittered_and_journal_lines_carry_priorities(device, feeder_processes) -> None:
    root = device()
    delay, attempts = 0.2, 4
    dead_broker(root, delay)
    log = root / "feeder-redis.log"  # the file FeederProcess sends stdout and stderr to
    log.touch()
    st = os.stat(log)
    feeder = feeder_processes(root, "redis", JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
    wait_until(lambda: len(RETRY.findall(feeder.log_text())) >= attempts, what=f"{attempts} retries")
    waits = [float(w) for w in RETRY.findall(feeder.log_text())[:attempts]]
    ceilings = [min(delay * 2 ** i, 60.0) for i in range(attempts)]
    assert all(c / 2 - 0.005 <= w <= c + 0.005 for w, c in zip(waits, ceilings)), (waits, ceilings)
    assert waits != ceilings, "jittered, not the bare doubling every device of a fleet would share"

    lines = [line for line in feeder.log_text().splitlines() if line]
    assert lines and all(re.match(r"<[0-7]>", line) for line in lines), lines[:5]
    assert any(line.startswith("<4>otppi.feeders.runner: redis: ") and "retrying in" in line for line in lines)


def test_without_the_journal_the_lines_stay_plain(device, feeder_processes) -> None:
    root = device()
    dead_broker(root, 0.2)
    feeder = feeder_processes(root, "redis")
    wait_until(lambda: RETRY.search(feeder.log_text()), what="a retry")
    line = next(line for line in feeder.log_text().splitlines() if "retrying in" in line)
    assert line.startswith("feeder-redis: WARNING otppi.feeders.runner: redis: "), line
