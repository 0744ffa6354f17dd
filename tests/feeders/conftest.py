"""Fixtures the feeder tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..helpers import otppi


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
