"""What every command handler shares: the SIM states, error results and deferred answers."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .parser import AtCommand

if TYPE_CHECKING:
    from .device import SimulatedModem


class SimState(enum.Enum):
    """The answer to AT+CPIN? (BUSY answers +CME ERROR: 14 instead)."""

    BUSY = "busy"
    PIN = "SIM PIN"
    PUK = "SIM PUK"
    READY = "READY"


class Failure(Exception):
    """An error result: plain ERROR (kind None), +CME/+CMS ERROR, or another code (NO CARRIER)."""

    def __init__(self, kind: str | None = None, code: int | None = None,
                 result: str | None = None) -> None:
        super().__init__(result or f"{kind} {code}")
        self.kind = kind
        self.code = code
        self.result = result


@dataclass(frozen=True)
class Deferred:
    """The final result is not written now; `start()` runs once the earlier answers are out."""

    start: Callable[[], None]


Handler = Callable[["SimulatedModem", AtCommand], "list[str] | Deferred"]

# (CME code, CMS code) while the SIM is not ready (TS 27.007 clause 9.2.1, TS 27.005 3.2.5).
_SIM_ERRORS = {SimState.BUSY: (14, 314), SimState.PIN: (11, 311), SimState.PUK: (12, 316)}


def require_sim(modem: SimulatedModem, *, sms: bool = False) -> None:
    """Raise the error a modem gives for SIM commands while the SIM is busy or locked."""
    if modem.sim_state is SimState.READY:
        return
    cme, cms = _SIM_ERRORS[modem.sim_state]
    raise Failure("CMS", cms) if sms else Failure("CME", cme)
