from __future__ import annotations

import threading
from pathlib import Path

import pytest

from otppi.doorbell import Doorbell, ring, ring_all


def test_ring_wakes_the_listener(short_tmp: Path) -> None:
    with Doorbell(short_tmp / "modem.bell") as bell:
        woke = threading.Event()
        t = threading.Thread(target=lambda: bell.wait(10) and woke.set())
        t.start()
        assert ring(short_tmp / "modem.bell")
        t.join(10)
        assert woke.is_set()


def test_many_rings_are_swallowed_by_one_wait(short_tmp: Path) -> None:
    with Doorbell(short_tmp / "b.bell") as bell:
        for _ in range(50):
            ring(bell.path)
        assert bell.wait(1)
        assert not bell.wait(0.05)


def test_ringing_nobody_is_dropped(short_tmp: Path) -> None:
    assert ring(short_tmp / "absent.bell") is False
    Doorbell(short_tmp / "dead.bell")._sock.close()  # bound, then its owner died
    assert ring(short_tmp / "dead.bell") is False


def test_ring_all_reaches_every_waiter_and_removes_dead_ones(short_tmp: Path) -> None:
    live = [Doorbell(short_tmp / f"w{i}.bell") for i in range(3)]
    dead = Doorbell(short_tmp / "dead.bell")
    dead._sock.close()
    assert ring_all(short_tmp) == 3
    assert all(b.wait(1) for b in live)
    assert not (short_tmp / "dead.bell").exists()
    for b in live:
        b.close()


def test_too_long_a_path_is_a_clear_error(short_tmp: Path) -> None:
    with pytest.raises(OSError, match="AF_UNIX"):
        Doorbell(short_tmp / ("x" * 120))
