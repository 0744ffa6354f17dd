"""Fixtures the feeder tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..helpers import otppi
from .process import FeederProcess


@pytest.fixture
def device(short_tmp: Path):
    """A migrated root of its own (one device); call it again for another device of a fleet."""
    made = 0

    def make() -> Path:
        nonlocal made
        made += 1
        root = short_tmp / f"d{made}"
        otppi(root, "migrate")
        return root

    return make


@pytest.fixture
def feeder_processes():
    """``start(root, feeder, name=None, **env)``; each must stop cleanly on SIGTERM at the end."""
    started: list[FeederProcess] = []

    def start(root: Path, feeder: str, name: str | None = None, **env: str) -> FeederProcess:
        started.append(FeederProcess(root, feeder, name, **env))
        return started[-1].start()

    yield start
    results = [(feeder.log, feeder.stop()) for feeder in started]
    for feeder in started:
        feeder.close()
    assert all(code == 0 for _, code in results), f"feeders must stop cleanly on SIGTERM: {results}"
