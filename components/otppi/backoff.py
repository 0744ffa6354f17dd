"""Reconnect backoff with jitter, so a fleet does not come back in lockstep.

Every device of a fleet loses its broker at the same moment when the broker
restarts; with a plain doubling backoff they would all retry at the same
instants and hit the broker together each time. Each wait is drawn at random
between half and all of the doubling delay ("equal jitter"): the retries
spread out, yet a device never waits much less than the setting says.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays of *first*, doubling up to *cap*, each drawn from [delay / 2, delay]."""

    def __init__(self, first: float, cap: float, rng: random.Random | None = None):
        self.first = first
        self.cap = cap
        self._rng = rng or random.Random()  # seeded from os.urandom: each process its own
        self._delay = 0.0

    def next(self) -> float:
        """The wait before the next attempt; the delay behind it doubles."""
        self._delay = min(self.cap, max(self.first, self._delay * 2))
        return self._rng.uniform(self._delay / 2, self._delay)

    def reset(self, first: float | None = None) -> None:
        """Start again from *first* (the setting may have changed): after a link that was up."""
        if first is not None:
            self.first = first
        self._delay = 0.0
