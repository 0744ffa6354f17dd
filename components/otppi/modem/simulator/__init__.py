"""Simulated GSM modems on pseudo-terminals, for the tests and the dev run.

Each modem is a pty whose slave end the driver opens with pyserial; behind it a small V.250/27.005
state machine answers like the real modem of its profile (SIMCom SIM800, Quectel EC25, Huawei E173,
Wavecom), records what is sent, and takes injected SMS, status reports, USSD replies and faults.

    with Simulator(count=2, profiles=["sim800", "ec25"]) as simulator:
        port = serial.Serial(simulator[0].path)
        ...
        simulator[0].receive_sms("+628123456789", "hello")
        simulator[0].wait_for_sent(1)

`python -m otppi.modem.simulator --count 2 --dir DIR` runs the same standalone, with stable links
DIR/modem0, DIR/modem1 and a control socket DIR/control.sock (see `control`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .control import ControlServer
from .device import SimulatedModem
from .profiles import (
    PROFILES,
    Profile,
    SimCard,
    UssdMenu,
    UssdReply,
    default_sim,
    get_profile,
)
from .sms import SentMessage, SentPart

__all__ = [
    "PROFILES",
    "Profile",
    "SentMessage",
    "SentPart",
    "SimCard",
    "SimulatedModem",
    "Simulator",
    "UssdMenu",
]

CONTROL_SOCKET = "control.sock"


class Simulator:
    """N simulated modems, served on threads; a context manager.

    `profiles`: one profile (name or Profile) for all, or a sequence used in turn. `sims`: the SIM
    cards, default one per modem on a different operator. `pin`: lock every SIM with this PIN.
    `directory`: where the stable links modem<N> (and, with `control`, the control socket) live;
    without it clients open the pty slave paths.
    """

    def __init__(self, count: int = 1, profiles: str | Profile | Sequence[str | Profile] | None = None,
                 *, directory: str | None = None, sims: Sequence[SimCard] | None = None,
                 network_delay: float = 0.0, sim_busy_seconds: float = 0.0,
                 pin: str | None = None, ussd: Mapping[str, UssdReply] | None = None,
                 control: bool = False) -> None:
        if count < 1:
            raise ValueError("a simulator needs at least one modem")
        if control and directory is None:
            raise ValueError("the control socket needs a directory")
        chosen = _profile_list(profiles)
        self.directory = directory
        self.modems: list[SimulatedModem] = []
        for index in range(count):
            sim = sims[index] if sims is not None else default_sim(index)
            if pin is not None:
                sim.pin, sim.pin_enabled = pin, True
            link = os.path.join(directory, f"modem{index}") if directory is not None else None
            self.modems.append(SimulatedModem(
                index, chosen[index % len(chosen)], sim, link_path=link,
                network_delay=network_delay, sim_busy_seconds=sim_busy_seconds, ussd=ussd))
        self.control_path = os.path.join(directory, CONTROL_SOCKET) if control and directory else None
        self._control: ControlServer | None = None
        self._started: list[SimulatedModem] = []

    def start(self) -> Simulator:
        if self.directory is not None:
            os.makedirs(self.directory, exist_ok=True)
        try:
            for modem in self.modems:
                modem.start()
                self._started.append(modem)
            if self.control_path is not None:
                self._control = ControlServer(self, self.control_path)
                self._control.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._control is not None:
            self._control.stop()
            self._control = None
        while self._started:
            self._started.pop().stop()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __getitem__(self, index: int) -> SimulatedModem:
        return self.modems[index]

    def __len__(self) -> int:
        return len(self.modems)

    def __iter__(self) -> Iterator[SimulatedModem]:
        return iter(self.modems)

    @property
    def paths(self) -> list[str]:
        return [modem.path for modem in self.modems]

    def sent_messages(self) -> list[SentMessage]:
        return [message for modem in self.modems for message in modem.sent.messages()]

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "index": modem.index, "path": modem.path, "slave": modem.slave_path,
                "profile": modem.profile.name, "imei": modem.imei, "imsi": modem.sim.imsi,
                "iccid": modem.sim.iccid, "msisdn": modem.sim.msisdn,
                "operator": modem.sim.operator, "plugged": modem.plugged, "silent": modem.silent,
            }
            for modem in self.modems
        ]


def _profile_list(profiles: str | Profile | Sequence[str | Profile] | None) -> list[Profile]:
    if profiles is None:
        return [PROFILES["sim800"]]
    if isinstance(profiles, (str, Profile)):
        return [get_profile(profiles)]
    chosen = [get_profile(profile) for profile in profiles]
    if not chosen:
        raise ValueError("no modem profiles given")
    return chosen
