"""Log lines for the journal (priorities), the units' identifiers, and the jittered reconnect backoff."""

from __future__ import annotations

import io
import logging
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from otppi.backoff import Backoff
from otppi.journal import JournalFormatter, is_journal, priority
from otppi.units import target_units

from .helpers import ROOT_OF_REPO

UNITS = ROOT_OF_REPO / "units"


def test_levels_map_to_the_sd_daemon_priorities() -> None:
    assert [priority(level) for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR,
                                          logging.CRITICAL)] == [7, 6, 4, 3, 2]


def test_every_line_of_a_record_carries_its_priority_a_traceback_too() -> None:
    formatter = JournalFormatter("%(name)s: %(message)s")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("otppi.x", logging.ERROR, __file__, 1, "first\nsecond", None, sys.exc_info())
    lines = formatter.format(record).split("\n")
    assert lines[0] == "<3>otppi.x: first" and lines[1] == "<3>second"
    assert len(lines) > 3 and all(line.startswith("<3>") for line in lines)
    assert lines[-1] == "<3>ValueError: boom"


def test_the_journal_is_only_the_stream_systemd_named(tmp_path: Path) -> None:
    with (tmp_path / "journal").open("w") as journal, (tmp_path / "other").open("w") as other:
        st = os.fstat(journal.fileno())
        named = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert is_journal(journal, named)
        assert not is_journal(other, named), "a child whose stderr was redirected (the dev launcher, a test)"
        assert not is_journal(journal, {})
        assert not is_journal(journal, {"JOURNAL_STREAM": "garbage"})
        assert not is_journal(io.StringIO(), named)


def run_logging(stderr: Path, **env: str) -> str:
    """A process that sets up logging as every component does and logs one warning and one info."""
    code = ("import logging; from otppi.component import setup_logging; setup_logging('modem'); "
            "logging.getLogger('otppi.modem.worker').warning('port gone'); "
            "logging.getLogger('otppi.modem.worker').info('port back')")
    with stderr.open("w") as err:
        st = os.fstat(err.fileno())
        environ = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
        environ.update({k: v.format(stream=f"{st.st_dev}:{st.st_ino}") for k, v in env.items()})
        subprocess.run([sys.executable, "-c", code], stderr=err, env=environ, check=True, timeout=60)
    return stderr.read_text()


def test_a_component_under_systemd_prefixes_priorities_and_elsewhere_stays_readable(tmp_path: Path) -> None:
    assert run_logging(tmp_path / "journal", JOURNAL_STREAM="{stream}") == (
        "<4>otppi.modem.worker: port gone\n<6>otppi.modem.worker: port back\n")
    plain = "modem: WARNING otppi.modem.worker: port gone\nmodem: INFO otppi.modem.worker: port back\n"
    assert run_logging(tmp_path / "dev") == plain
    # Started under systemd, but its stderr sent elsewhere (the launcher in a unit, a redirect).
    assert run_logging(tmp_path / "redirected", JOURNAL_STREAM="1:2") == plain


def test_every_unit_names_itself_in_the_journal() -> None:
    for unit in target_units(UNITS):
        assert unit.get("Service", "SyslogIdentifier") == unit.name.removesuffix(".service"), unit.name


# ---------------------------------------------------------------- backoff


def test_backoff_doubles_to_its_cap_each_wait_between_half_and_all_of_it() -> None:
    backoff = Backoff(0.5, 8.0, random.Random(1))
    for ceiling in (0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0):
        assert ceiling / 2 <= backoff.next() <= ceiling
    backoff.reset(2.0)
    assert 1.0 <= backoff.next() <= 2.0


def test_a_fleet_that_lost_its_broker_together_does_not_retry_together() -> None:
    fleet = [Backoff(5.0, 60.0, random.Random(device)) for device in range(20)]
    for _ in range(4):
        waits = [backoff.next() for backoff in fleet]
        assert len({round(w, 2) for w in waits}) >= 15, waits
        assert max(waits) - min(waits) > 0.2 * max(waits), "spread over the window, not bunched"


@pytest.mark.parametrize("first", [0.1, 5.0, 60.0, 120.0])
def test_the_first_wait_never_exceeds_the_reconnect_delay_or_the_cap(first: float) -> None:
    wait = Backoff(first, 60.0).next()
    assert min(first, 60.0) / 2 <= wait <= min(first, 60.0)
