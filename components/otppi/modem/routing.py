"""Which modems may send to a number, in the order to try them.

The seed's rule: normalise the receiver to MSISDN, take the configured
prefix length, and send through the active modems whose prefix list has
that prefix (round robin among them); else through the default modem(s);
else round robin over every active modem allowed to take API traffic.
Each step is a tier: when every modem of a tier is down or has failed the
message, the next tier is the failover.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence


@dataclass(frozen=True)
class RouteModem:
    name: str
    prefixes: frozenset[str]
    default: bool
    api: bool
    active: bool


def tiers(msisdn: str, prefix_length: int, modems: Iterable[RouteModem], *, manual: bool = False) -> list[list[str]]:
    """The tiers of modem names for *msisdn*, best first, without repeats.

    API traffic only uses modems with "Send SMS from API" on; a manual SMS
    (from the admin or the CLI) may use any active modem.
    """
    usable = sorted((m for m in modems if m.active and (manual or m.api)), key=lambda m: m.name)
    prefix = msisdn[:prefix_length]
    result: list[list[str]] = []
    seen: set[str] = set()
    for tier in (
        [m.name for m in usable if prefix in m.prefixes],
        [m.name for m in usable if m.default],
        [m.name for m in usable],
    ):
        fresh = [name for name in tier if name not in seen]
        if fresh:
            result.append(fresh)
            seen.update(fresh)
    return result


class RoundRobin:
    """Remembers, per tier, which modem went last, so the next message starts after it."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, ...], str] = {}

    def order(self, tier: Sequence[str]) -> list[str]:
        key = tuple(tier)
        last = self._last.get(key)
        if last not in tier:
            return list(tier)
        i = tier.index(last) + 1
        return list(tier[i:]) + list(tier[:i])

    def used(self, tier: Sequence[str], name: str) -> None:
        self._last[tuple(tier)] = name
