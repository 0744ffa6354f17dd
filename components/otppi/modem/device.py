"""A modem as the rest of the component sees it: open, initialise, send, read, ask.

Built on the AT session; every method is one short conversation with the
modem and raises the typed errors of :mod:`otppi.modem.errors`.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from . import pdu
from .at import AtSession, Urc, response_value
from .errors import CmeError, CommandError, ModemError, ModemTimeout, Unsupported
from .port import PortSettings, open_port
from .ussd import decode_ussd, encode_ussd_request

log = logging.getLogger(__name__)

SIM_BUSY = 14  # +CME ERROR: 14, SIM busy, for seconds after power-up on SIM800 and EC25
SIM_READY_TIMEOUT = 30.0

_QUOTED = re.compile(r'"([^"]*)"')


@dataclass
class ModemInfo:
    manufacturer: str = ""
    model: str = ""
    revision: str = ""
    imei: str = ""
    imsi: str = ""
    iccid: str = ""
    operator: str = ""
    msisdn: str = ""
    sms_center: str = ""
    signal_dbm: int | None = None
    registration: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


REGISTRATION = {"0": "not registered", "1": "home", "2": "searching", "3": "denied", "4": "unknown",
                "5": "roaming"}


def csq_to_dbm(value: str) -> int | None:
    """AT+CSQ's rssi (TS 27.007 clause 8.5): 0 is -113 dBm, 31 is -51 dBm or more, 99 unknown."""
    rssi = value.split(",")[0].strip()
    if not rssi.isdigit() or int(rssi) > 31:
        return None
    return -113 + 2 * int(rssi)


@dataclass
class StoredMessage:
    index: int
    pdu_hex: str


@dataclass
class DeviceConfig:
    name: str
    port: PortSettings
    sim_pin: str = ""
    command_timeout: float = 10.0
    send_timeout: float = 60.0
    urc_callback: Callable[[Urc], None] | None = None
    closed_callback: Callable[[BaseException], None] | None = None
    extra: dict = field(default_factory=dict)


class ModemDevice:
    def __init__(self, config: DeviceConfig, stop: threading.Event | None = None):
        self.config = config
        self.name = config.name
        self._stop = stop or threading.Event()
        self._ussd: queue.Queue[Urc] = queue.Queue()
        self.session: AtSession | None = None
        self.manufacturer = ""

    # ---------------------------------------------------------------- life

    def open(self) -> None:
        port = open_port(self.config.port)
        self.session = AtSession(port, urc_handler=self._on_urc, closed_handler=self.config.closed_callback,
                                 default_timeout=self.config.command_timeout, name=self.name).start()
        try:
            self._initialise()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None

    def at(self, command: str, timeout: float | None = None) -> list[str]:
        if self.session is None:
            raise ModemError(f"{self.name} is not open")
        return self.session.command(command, timeout)

    def _initialise(self) -> None:
        # A modem just plugged in may swallow the first AT while it autobauds.
        for attempt in range(3):
            try:
                self.at("AT", timeout=2.0)
                break
            except ModemTimeout:
                if attempt == 2:
                    raise
        self.at("ATE0")
        self.at("AT+CMEE=1")
        self._unlock_sim()
        self.at("AT+CMGF=0")  # PDU mode: every alphabet, concatenation and reports under our control
        # New SMS stored and announced (+CMTI); status reports routed as +CDS (TS 27.005 3.4.1).
        try:
            self.at("AT+CNMI=2,1,0,1,0")
        except CommandError:
            self.at("AT+CNMI=2,1,0,0,0")
        try:
            self.at('AT+CPMS="SM","SM","SM"')
        except CommandError as exc:
            log.info("%s: keeps its default message storage (%s)", self.name, exc)
        self.manufacturer = self._value("AT+CGMI")

    def _unlock_sim(self) -> None:
        """Wait out "SIM busy" after power-up and enter the PIN when the SIM asks for one."""
        deadline = time.monotonic() + SIM_READY_TIMEOUT
        while True:
            try:
                state = response_value(self.at("AT+CPIN?"), "+CPIN") or ""
            except CmeError as exc:
                if exc.code != SIM_BUSY or time.monotonic() > deadline:
                    raise
                if self._stop.wait(1.0):
                    raise ModemError(f"{self.name}: stopped while the SIM was busy") from None
                continue
            if state == "READY":
                return
            if state == "SIM PIN":
                if not self.config.sim_pin:
                    raise ModemError(f"{self.name}: the SIM asks for a PIN and none is set in Modem Settings")
                self.at(f'AT+CPIN="{self.config.sim_pin}"')
                continue
            raise ModemError(f"{self.name}: SIM state {state!r} (a PUK or another code is needed)")

    # ---------------------------------------------------------------- URCs

    def _on_urc(self, urc: Urc) -> None:
        if urc.prefix == "+CUSD:":
            self._ussd.put(urc)
            return
        if self.config.urc_callback is not None:
            self.config.urc_callback(urc)

    # ---------------------------------------------------------------- SMS

    def send_sms(self, number: str, text: str, *, status_report: bool, concat_reference: int) -> list[int]:
        """Send every part; return the modem's message reference of each."""
        parts = pdu.encode_submit(number, text, concat_reference=concat_reference, status_report=status_report)
        refs = []
        for part in parts:
            refs.append(self.session.send_pdu(part.tpdu_length, part.pdu, timeout=self.config.send_timeout))
        return refs

    def stored_messages(self) -> list[StoredMessage]:
        """Every message in the current storage (AT+CMGL=4: all, PDU mode)."""
        lines = self.at("AT+CMGL=4", timeout=30.0)
        found = []
        for i, line in enumerate(lines):
            if line.startswith("+CMGL:") and i + 1 < len(lines):
                index = line[6:].split(",")[0].strip()
                if index.isdigit():
                    found.append(StoredMessage(int(index), lines[i + 1].strip()))
        return found

    def read_message(self, index: int) -> str | None:
        lines = self.at(f"AT+CMGR={int(index)}")
        for i, line in enumerate(lines):
            if line.startswith("+CMGR:") and i + 1 < len(lines):
                return lines[i + 1].strip()
        return None

    def delete_message(self, index: int) -> None:
        self.at(f"AT+CMGD={int(index)}")

    # ---------------------------------------------------------------- information

    def _value(self, command: str, prefix: str | None = None) -> str:
        try:
            lines = self.at(command)
        except CommandError:
            return ""
        if prefix is not None:
            return response_value(lines, prefix) or ""
        return " ".join(line for line in lines if line).strip()

    def info(self) -> ModemInfo:
        info = ModemInfo(
            manufacturer=self._value("AT+CGMI"),
            model=self._value("AT+CGMM"),
            revision=self._value("AT+CGMR").removeprefix("Revision:").strip(),
            imei=self._value("AT+CGSN"),
            imsi=self._value("AT+CIMI"),
        )
        info.iccid = self._iccid()
        cops = _QUOTED.findall(self._value("AT+COPS?", "+COPS"))
        info.operator = cops[0] if cops else ""
        cnum = _QUOTED.findall(self._value("AT+CNUM", "+CNUM"))
        info.msisdn = cnum[1] if len(cnum) > 1 else ""
        csca = _QUOTED.findall(self._value("AT+CSCA?", "+CSCA"))
        info.sms_center = csca[0] if csca else ""
        info.signal_dbm = csq_to_dbm(self._value("AT+CSQ", "+CSQ"))
        creg = self._value("AT+CREG?", "+CREG").split(",")
        info.registration = REGISTRATION.get(creg[1].strip() if len(creg) > 1 else "", "")
        return info

    def _iccid(self) -> str:
        """AT+CCID (SIMCom, Wavecom), AT+QCCID (Quectel), AT^ICCID? (Huawei: nibble-swapped EF_ICCID)."""
        for command, prefix in (("AT+CCID", "+CCID"), ("AT+QCCID", "+QCCID"), ("AT^ICCID?", "^ICCID")):
            value = (self._value(command, prefix) or (self._value(command) if command == "AT+CCID" else ""))
            value = value.strip('"').strip()
            if not value:
                continue
            if command == "AT^ICCID?":
                value = "".join(value[i + 1:i + 2] + value[i] for i in range(0, len(value), 2)).rstrip("F")
            return value
        return ""

    def signal(self) -> int | None:
        return csq_to_dbm(self._value("AT+CSQ", "+CSQ"))

    # ---------------------------------------------------------------- USSD

    def ussd(self, code: str, timeout: float = 30.0) -> tuple[str, bool]:
        """Run a USSD code (or answer an open session); return (reply, the session waits for more).

        *timeout* is all the time the caller has: the command and the network's answer share it.
        When it runs out the request is ended (AT+CUSD=2), so a late answer opens no session.
        """
        deadline = time.monotonic() + timeout
        while not self._ussd.empty():
            self._ussd.get_nowait()
        request = encode_ussd_request(code, self.manufacturer)
        self.at(f'AT+CUSD=1,"{request}",15', timeout=min(timeout, self.config.command_timeout))
        try:
            urc = self._ussd.get(timeout=max(deadline - time.monotonic(), 0.0))
        except queue.Empty:
            self._end_ussd()
            raise ModemTimeout(f"{self.name}: no USSD answer in {timeout:g} s") from None
        return decode_ussd(urc.value, self.manufacturer)

    def _end_ussd(self) -> None:
        try:
            self.at("AT+CUSD=2", timeout=2.0)
        except ModemError as exc:  # the request timed out already; this is only tidying up
            log.info("%s: ending the USSD request failed: %s", self.name, exc)

    def ussd_cancel(self) -> None:
        self.at("AT+CUSD=2")

    # ---------------------------------------------------------------- tools

    def set_imei(self, imei: str) -> None:
        """Write a new IMEI (AT+EGMR, MediaTek-based modems); others answer ERROR."""
        if not re.fullmatch(r"[0-9]{15}", imei):
            raise ValueError("an IMEI is 15 digits")
        try:
            self.at(f'AT+EGMR=1,7,"{imei}"')
        except CommandError as exc:
            raise Unsupported(f"{self.name} cannot change its IMEI (AT+EGMR: {exc})") from exc

    def sim_pin_lock(self, enable: bool, pin: str) -> None:
        _check_pin(pin)
        self.at(f'AT+CLCK="SC",{1 if enable else 0},"{pin}"')

    def sim_pin_change(self, old: str, new: str) -> None:
        _check_pin(old)
        _check_pin(new)
        self.at(f'AT+CPWD="SC","{old}","{new}"')


def _check_pin(pin: str) -> None:
    if not re.fullmatch(r"[0-9]{4,8}", pin):
        raise ValueError("a SIM PIN is 4 to 8 digits")
