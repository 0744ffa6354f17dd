"""The simulated modems' SMS side (TS 27.005, PDU mode): send, SIM storage, new-message codes.

Every SMS-SUBMIT the driver sends is decoded and recorded (`SendLog`), parts of a concatenated
message joined once all have arrived, so tests and the dev run can see what went out. Messages
from the network are DELIVER PDUs stored in SIM storage and announced as AT+CNMI says.
"""

from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from .. import pdu
from .base import Deferred, Failure, Handler, require_sim
from .parser import AtCommand

if TYPE_CHECKING:
    from .device import SimulatedModem

log = logging.getLogger(__name__)

REC_UNREAD, REC_READ, STO_UNSENT, STO_SENT, ALL = 0, 1, 2, 3, 4
_STORAGES = ("SM", "ME", "MT")  # one memory here, whichever name the driver uses


def tpdu_length(pdu_hex: str) -> int:
    """Octets after the SMSC field: the <length> of AT+CMGS, +CMGL and +CMGR."""
    data = bytes.fromhex(pdu_hex)
    return len(data) - 1 - data[0]


@dataclass
class StoredMessage:
    status: int
    pdu: str


class SmsStorage:
    """SIM message storage: fixed slots from the profile's first index, lowest free slot first."""

    def __init__(self, first_index: int, slots: int) -> None:
        self.first_index = first_index
        self.slots = slots
        self.messages: dict[int, StoredMessage] = {}

    def in_range(self, index: int) -> bool:
        return self.first_index <= index < self.first_index + self.slots

    def store(self, pdu_hex: str, status: int = REC_UNREAD) -> int | None:
        for index in range(self.first_index, self.first_index + self.slots):
            if index not in self.messages:
                self.messages[index] = StoredMessage(status, pdu_hex)
                return index
        return None

    def listing(self, status: int) -> list[tuple[int, StoredMessage]]:
        return [(index, message) for index, message in sorted(self.messages.items())
                if status == ALL or message.status == status]

    def delete_all(self, flag: int) -> None:
        """AT+CMGD=<index>,<flag> with flag 1..4 (TS 27.005 clause 3.5.4)."""
        keep = {1: (REC_UNREAD, STO_SENT, STO_UNSENT), 2: (REC_UNREAD, STO_UNSENT),
                3: (REC_UNREAD,), 4: ()}[flag]
        self.messages = {i: m for i, m in self.messages.items() if m.status in keep}


@dataclass(frozen=True)
class SentPart:
    """One SMS-SUBMIT as the modem took it."""

    modem: int
    number: str
    text: str
    message_reference: int
    status_report: bool
    concat: pdu.Concat | None
    encoding: str
    time: datetime
    pdu: str


@dataclass(frozen=True)
class SentMessage:
    """A whole message: one part, or every part of a concatenated one, text joined."""

    modem: int
    number: str
    text: str
    parts: int
    message_references: tuple[int, ...]
    status_report: bool
    encoding: str
    time: datetime


class SendLog:
    """What went out through one modem, with a wait for tests (no sleeping)."""

    def __init__(self, modem: int) -> None:
        self.modem = modem
        self._changed = threading.Condition()
        self._parts: list[SentPart] = []
        self._messages: list[SentMessage] = []
        self._incomplete: dict[tuple[str, int, int], dict[int, SentPart]] = {}

    def add(self, part: SentPart) -> None:
        with self._changed:
            self._parts.append(part)
            if part.concat is None or part.concat.total <= 1:
                self._messages.append(_message([part]))
            else:
                key = (part.number, part.concat.reference, part.concat.total)
                parts = self._incomplete.setdefault(key, {})
                parts[part.concat.sequence] = part
                if len(parts) == part.concat.total:
                    del self._incomplete[key]
                    self._messages.append(_message([parts[i] for i in sorted(parts)]))
            self._changed.notify_all()

    def messages(self) -> list[SentMessage]:
        with self._changed:
            return list(self._messages)

    def parts(self) -> list[SentPart]:
        with self._changed:
            return list(self._parts)

    def find_part(self, message_reference: int) -> SentPart | None:
        with self._changed:
            for part in reversed(self._parts):
                if part.message_reference == message_reference:
                    return part
        return None

    def clear(self) -> None:
        with self._changed:
            self._parts.clear()
            self._messages.clear()
            self._incomplete.clear()

    def wait_for(self, count: int, timeout: float) -> list[SentMessage]:
        """The messages once at least `count` are complete; TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(f"{len(self._messages)} of {count} messages sent in {timeout} s")
            return list(self._messages)


def _message(parts: list[SentPart]) -> SentMessage:
    first = parts[0]
    return SentMessage(first.modem, first.number, "".join(p.text for p in parts), len(parts),
                       tuple(p.message_reference for p in parts), first.status_report,
                       first.encoding, parts[-1].time)


# -- commands ----------------------------------------------------------------------------------

def _require_pdu_mode(modem: SimulatedModem) -> None:
    if modem.settings.cmgf != 0:
        raise Failure("CMS", 302)  # text mode is not simulated; the driver uses PDU mode


def _cmgf(modem: SimulatedModem, command: AtCommand) -> list[str]:
    if command.op == "?":
        return [f"+CMGF: {modem.settings.cmgf}"]
    if command.op == "=?":
        return ["+CMGF: (0,1)"]
    value = command.int_arg(0, 0)
    if value not in (0, 1):
        raise Failure()
    modem.settings.cmgf = value
    return []


def _cnmi(modem: SimulatedModem, command: AtCommand) -> list[str]:
    if command.op == "?":
        return ["+CNMI: " + ",".join(map(str, modem.settings.cnmi))]
    if command.op == "=?":
        return ["+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)"]
    values = [command.int_arg(i, 0) for i in range(5)]
    limits = (2, 3, 3, 2, 1)
    if any(not 0 <= value <= limit for value, limit in zip(values, limits, strict=True)):
        raise Failure("CMS", 303)
    modem.settings.cnmi = tuple(values)
    return []


def _cpms(modem: SimulatedModem, command: AtCommand) -> list[str]:
    if command.op == "=?":
        return ['+CPMS: ("SM","ME","MT"),("SM","ME","MT"),("SM","ME","MT")']
    require_sim(modem, sms=True)
    used, total = len(modem.storage.messages), modem.storage.slots
    if command.op == "?":
        return ["+CPMS: " + ",".join([f'"SM",{used},{total}'] * 3)]
    if any(name.upper() not in _STORAGES for name in command.args):
        raise Failure("CMS", 302)
    return ["+CPMS: " + ",".join([f"{used},{total}"] * 3)]


def _csca(modem: SimulatedModem, command: AtCommand) -> list[str]:
    require_sim(modem, sms=True)
    if command.op == "?":
        smsc = modem.sim.smsc
        return [f'+CSCA: "{smsc}",{145 if smsc.startswith("+") else 129}']
    if command.op == "=":
        modem.sim.smsc = command.arg(0)
    return []


def _cmgs(modem: SimulatedModem, command: AtCommand) -> list[str] | Deferred:
    if command.op == "=?":
        return []
    _require_pdu_mode(modem)
    require_sim(modem, sms=True)
    length = command.int_arg(0)
    if not 7 <= length <= 164:
        raise Failure("CMS", 304)
    return Deferred(lambda: modem.enter_prompt(lambda text: _submit(modem, length, text)))


def _submit(modem: SimulatedModem, length: int, text: str) -> None:
    """The PDU after the prompt: validate, then answer after the network delay (modem busy)."""
    modem.hold()
    pdu_hex = text.strip()
    try:
        submit = pdu.decode_submit(pdu_hex)
        if tpdu_length(pdu_hex) != length:
            raise pdu.PduError(f"AT+CMGS={length} but the TPDU has {tpdu_length(pdu_hex)} octets")
    except (pdu.PduError, ValueError) as exc:
        log.info("modem %d: rejected PDU: %s", modem.index, exc)
        _finish(modem, [modem.failure_line(Failure("CMS", 304))])
        return
    if bytes.fromhex(pdu_hex)[0] == 0 and not modem.sim.smsc:
        _finish(modem, [modem.failure_line(Failure("CMS", 330))])
        return
    if modem.send_failures:
        line = modem.failure_line(Failure("CMS", modem.send_failures.popleft()))
        modem.schedule(modem.network_delay, lambda: _finish(modem, [line]))
        return
    reference = modem.message_reference
    modem.message_reference = (reference + 1) % 256
    part = SentPart(modem.index, submit.number, submit.text, reference, submit.status_report,
                    submit.concat, submit.encoding, datetime.now().astimezone(), pdu_hex)

    def delivered() -> None:
        modem.sent.add(part)
        _finish(modem, [f"+CMGS: {reference}", "OK"])
        if part.status_report and modem.settings.cnmi[3] in (1, 2):
            modem.schedule(modem.status_report_delay,
                           lambda: deliver_status_report(modem, reference, 0))

    modem.schedule(modem.network_delay, delivered)


def _finish(modem: SimulatedModem, lines: list[str]) -> None:
    modem.write_lines(lines)
    modem.release()


def _cmgl(modem: SimulatedModem, command: AtCommand) -> list[str]:
    if command.op == "=?":
        return ["+CMGL: (0-4)"]
    _require_pdu_mode(modem)
    require_sim(modem, sms=True)
    status = command.int_arg(0, REC_UNREAD)
    if not REC_UNREAD <= status <= ALL:
        raise Failure("CMS", 302)
    lines = []
    for index, message in modem.storage.listing(status):
        lines += [f"+CMGL: {index},{message.status},,{tpdu_length(message.pdu)}", message.pdu]
        if message.status == REC_UNREAD:
            message.status = REC_READ
    return lines


def _cmgr(modem: SimulatedModem, command: AtCommand) -> list[str]:
    if command.op == "=?":
        return []
    _require_pdu_mode(modem)
    require_sim(modem, sms=True)
    index = command.int_arg(0)
    if not modem.storage.in_range(index):
        raise Failure("CMS", 321)
    message = modem.storage.messages.get(index)
    if message is None:
        return []  # an empty slot: just OK, as SIMCom and Quectel answer
    lines = [f"+CMGR: {message.status},,{tpdu_length(message.pdu)}", message.pdu]
    if message.status == REC_UNREAD:
        message.status = REC_READ
    return lines


def _cmgd(modem: SimulatedModem, command: AtCommand) -> list[str]:
    storage = modem.storage
    if command.op == "=?":
        last = storage.first_index + storage.slots - 1
        return [f"+CMGD: ({storage.first_index}-{last}),(0-4)"]
    require_sim(modem, sms=True)
    index, flag = command.int_arg(0), command.int_arg(1, 0)
    if not 0 <= flag <= 4:
        raise Failure("CMS", 302)
    if flag:
        storage.delete_all(flag)
    elif not storage.in_range(index):
        raise Failure("CMS", 321)
    else:
        storage.messages.pop(index, None)
    return []


def _accept(modem: SimulatedModem, command: AtCommand) -> list[str]:
    return []


SMS_COMMANDS: dict[str, Handler] = {
    "+CMGF": _cmgf, "+CNMI": _cnmi, "+CPMS": _cpms, "+CSCA": _csca, "+CMGS": _cmgs,
    "+CMGL": _cmgl, "+CMGR": _cmgr, "+CMGD": _cmgd, "+CSMP": _accept, "+CNMA": _accept,
}


# -- the network side --------------------------------------------------------------------------

_concat_references = itertools.count(1)


def receive_sms(modem: SimulatedModem, sender: str, text: str,
                timestamp: datetime | str | None = None) -> list[int]:
    """Store the DELIVER parts of `text` and announce them (+CMTI) or route them (+CMT)."""
    if isinstance(timestamp, str):
        timestamp = datetime.fromisoformat(timestamp)
    if timestamp is None or timestamp.tzinfo is None:
        moment = (timestamp or datetime.now()).astimezone()
    else:
        moment = timestamp
    reference = next(_concat_references) % 256
    pdus = pdu.encode_deliver(sender, text, moment, smsc=modem.sim.smsc or None,
                              concat_reference=reference)
    mode, route = modem.settings.cnmi[0], modem.settings.cnmi[1]
    indexes = []
    for part in pdus:
        if route == 2 and mode != 0:
            modem.urc(f"+CMT: ,{tpdu_length(part)}", part)
            continue
        index = modem.storage.store(part)
        if index is None:
            raise OverflowError(f"modem {modem.index}: SIM message storage is full")
        indexes.append(index)
        if route in (1, 3) and mode != 0:
            modem.urc(f'+CMTI: "SM",{index}')
    return indexes


def deliver_status_report(modem: SimulatedModem, message_reference: int,
                          status: int = 0) -> int | None:
    """A STATUS-REPORT for a message this modem sent: +CDS (<ds>=1) or stored with +CDSI (2)."""
    part = modem.sent.find_part(message_reference)
    if part is None:
        raise ValueError(f"modem {modem.index} sent no message with reference {message_reference}")
    report = pdu.encode_status_report(message_reference, part.number, status, part.time,
                                      datetime.now().astimezone(),
                                      smsc=modem.sim.smsc or None)
    mode, route = modem.settings.cnmi[0], modem.settings.cnmi[3]
    if route == 1 and mode != 0:
        modem.urc(f"+CDS: {tpdu_length(report)}", report)
    elif route == 2:
        index = modem.storage.store(report)
        if index is None:
            raise OverflowError(f"modem {modem.index}: SIM message storage is full")
        if mode != 0:
            modem.urc(f'+CDSI: "SM",{index}')
        return index
    return None
