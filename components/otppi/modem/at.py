"""The AT session: one command at a time, explicit final result codes, unsolicited codes apart.

A command's answer is the lines between the command and its final result code (TS 27.007 clause
5.7). Lines that start with a prefix from the URC table are unsolicited result codes, whenever they
arrive, even in the middle of another command's answer; they go to a queue that a thread of the
session's own drains into the URC handler, so the handler may itself send commands (read the SMS
a +CMTI announced) without deadlocking the reader.

Some prefixes are both: "+CREG: 0,1" answers AT+CREG? and is a URC after AT+CREG=1. A table rule
names the commands whose answers use its prefix; during those commands the line is an answer.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import serial

from .errors import ModemClosed, ModemError, ModemTimeout, final_outcome
from .framing import PROMPT, FrameReader, LineFramer, Prompt
from .port import Port

log = logging.getLogger(__name__)

CTRL_Z = "\x1a"
ESC = "\x1b"
_CONTROL = re.compile(r"[\x00-\x1f]")
MAX_URC_LINES = 32  # a quoted URC string longer than this is a garbled one
ESCAPE_GRACE = 1.0  # seconds to wait for the answer to the ESC that abandons a prompt


@dataclass(frozen=True)
class UrcRule:
    """A line starting with `prefix` is unsolicited, except during a command starting with one of
    `solicited_by`; `data_lines` lines that follow belong to it (the PDU after +CMT: and +CDS:);
    with `quoted`, a string left open at the line end goes on over the next lines."""

    prefix: str
    solicited_by: tuple[str, ...] = ()
    data_lines: int = 0
    quoted: bool = False


def _rules(prefixes: Iterable[str], **kwargs: object) -> tuple[UrcRule, ...]:
    return tuple(UrcRule(prefix, **kwargs) for prefix in prefixes)  # type: ignore[arg-type]


URC_RULES: tuple[UrcRule, ...] = (
    # TS 27.005 clause 3.4.1: new message indications. +CMT/+CDS/+CBM carry the PDU on a 2nd line.
    *_rules(["+CMTI:", "+CDSI:", "+CBMI:"]),
    *_rules(["+CMT:", "+CDS:", "+CBM:"], data_lines=1),
    # USSD answers come as +CUSD: after the OK of AT+CUSD=1,... on every modem we know, and may
    # come in the middle of any later command, so +CUSD: is always unsolicited. Menus keep their
    # line breaks inside the quotes, so one answer can span several lines.
    UrcRule("+CUSD:", quoted=True),
    # Read commands answer with the prefix their URCs use; setting commands answer only OK, so
    # "+CPIN: READY" after AT+CPIN=<pin> is the unsolicited one.
    UrcRule("+CREG:", ("AT+CREG?",)),
    UrcRule("+CGREG:", ("AT+CGREG?",)),
    UrcRule("+CEREG:", ("AT+CEREG?",)),
    UrcRule("+CPIN:", ("AT+CPIN?",)),
    UrcRule("+CFUN:", ("AT+CFUN?",)),
    UrcRule("+CLIP:", ("AT+CLIP?",)),
    UrcRule("+CTZV:", ("AT+CTZV?",)),
    UrcRule("+CIEV:"),
    UrcRule("NO CARRIER", ("ATD", "ATA", "ATO", "AT+CGDATA")),
    *_rules(["RING", "+CRING:", "+CGEV:", "+CSQN:", "+STIN:"]),
    # SIMCom SIM800 series: start-up and power supervision.
    *_rules(["RDY", "Call Ready", "SMS Ready", "NORMAL POWER DOWN", "UNDER-VOLTAGE",
             "OVER-VOLTAGE", "*PSUTTZ:", "DST:"]),
    # Quectel EC25/EG25.
    *_rules(["+QIND:", "+QUSIM:", "POWERED DOWN", "+QSTK:"]),
    # Huawei E1xx/E3xx status reports.
    UrcRule("^HCSQ:", ("AT^HCSQ?",)),
    UrcRule("^SYSSTART"),
    *_rules(["^RSSI:", "^BOOT:", "^MODE:", "^SRVST:", "^SIMST:", "^DSFLOWRPT:", "^CEND:",
             "^ORIG:", "^CONF:", "^CONN:", "^STIN:", "^NDISSTAT:", "^RFSWITCH:"]),
    # Sierra Wireless / Wavecom.
    UrcRule("+WIND:", ("AT+WIND?",)),
)


@dataclass(frozen=True)
class Urc:
    """One unsolicited result code: the rule's prefix, the line, and any data lines after it.

    A quoted string that spanned lines is joined back into `line` with "\\n".
    """

    prefix: str
    line: str
    data: tuple[str, ...] = ()

    @property
    def value(self) -> str:
        """The text after the prefix (and its colon): '"SM",3' for '+CMTI: "SM",3'."""
        return _after_prefix(self.line, self.prefix)


def match_urc(line: str, pending: str | None,
              rules: Iterable[UrcRule] = URC_RULES) -> UrcRule | None:
    """The rule that makes `line` unsolicited while `pending` (a command, or None) runs, or None."""
    upper = pending.upper() if pending is not None else None
    for rule in rules:
        if line.startswith(rule.prefix):
            if upper is not None and upper.startswith(rule.solicited_by or ("\0",)):
                return None
            return rule
    return None


_ECHO_SETTING = re.compile(r"E[01]?|Z|&F")


def changes_echo(command: str) -> bool:
    """Whether a command line can switch echo (ATE0, ATE1, ATZ, AT&F, "ATQ0 V1 E1 ...")."""
    basic = re.split(r"[+^$%D;]", command.upper()[2:], maxsplit=1)[0]
    return bool(_ECHO_SETTING.search(basic))


def response_value(lines: Iterable[str], prefix: str) -> str | None:
    """The text after `prefix` in the first answer line that has it: "20,99" for "+CSQ"."""
    for line in lines:
        if line.startswith(prefix):
            return _after_prefix(line, prefix)
    return None


def _after_prefix(line: str, prefix: str) -> str:
    rest = line[len(prefix):] if line.startswith(prefix) else line
    if rest.startswith(":"):
        rest = rest[1:]
    return rest.strip()


class _Lost:
    def __init__(self, exc: BaseException | None) -> None:
        self.exc = exc


_STOP = object()
UrcHandler = Callable[[Urc], None]
ClosedHandler = Callable[[BaseException], None]


class AtSession:
    """Commands over one port, unsolicited codes to `urc_handler` on the session's event thread.

    `closed_handler(exc)` runs on the same thread when the port fails (not after `close()`).
    Timeouts raise ModemTimeout and leave the session usable; a failed port raises ModemClosed from
    then on. Answer lines that arrive while no command runs are late answers and are dropped.
    """

    def __init__(self, port: Port, *, urc_handler: UrcHandler | None = None,
                 closed_handler: ClosedHandler | None = None,
                 urc_rules: Iterable[UrcRule] = URC_RULES, default_timeout: float = 10.0,
                 encoding: str = "latin-1", name: str = "modem") -> None:
        self.port = port
        self.urc_handler = urc_handler
        self.closed_handler = closed_handler
        self.urc_rules = tuple(urc_rules)
        self.default_timeout = default_timeout
        self.encoding = encoding
        self.name = name
        self._lock = threading.Lock()
        self._responses: queue.Queue[str | Prompt | _Lost] = queue.Queue()
        self._events: queue.Queue[object] = queue.Queue()
        self._pending: str | None = None
        # Whether the modem echoes, as last seen (None: not known, e.g. right after ATE0 or ATZ),
        # and whether the running command's echo has come back yet. Reader thread state.
        self._echo_on: bool | None = None
        self._echo_seen = False
        self._collecting: tuple[UrcRule, str, list[str]] | None = None
        self._lost: _Lost | None = None
        self._reader = FrameReader(port, self, framer=LineFramer(encoding), name=f"{name}-reader")
        self._event_thread = threading.Thread(target=self._run_events, name=f"{name}-events",
                                              daemon=True)
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> AtSession:
        if not self._started:
            self._started = True
            self._event_thread.start()
            self._reader.start()
        return self

    def close(self) -> None:
        """Stop the reader, close the port, let queued URCs finish and stop the event thread."""
        if self._started:
            self._reader.stop()
        try:
            self.port.close()
        except (serial.SerialException, OSError) as exc:
            log.debug("%s: closing the port failed: %s", self.name, exc)
        if self._lost is None:
            self._lost = _Lost(None)
        if self._started and self._event_thread.is_alive():
            self._events.put(_STOP)
            if threading.current_thread() is not self._event_thread:
                self._event_thread.join(5.0)

    def __enter__(self) -> AtSession:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._lost is not None

    # -- commands ----------------------------------------------------------------------------

    def command(self, cmd: str, timeout: float | None = None, expect_prompt: bool = False,
                data: str | None = None) -> list[str]:
        """Send `cmd`, return its answer lines (echo and URCs removed) once it ends with OK.

        With `expect_prompt`, waits for the "> " prompt, then writes `data` (which carries its own
        Ctrl-Z) and waits for the final code. Raises CommandError (CmeError, CmsError, DialError),
        ModemTimeout or ModemClosed.
        """
        if expect_prompt and data is None:
            raise ValueError("expect_prompt needs the data to send after the prompt")
        timeout = self.default_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        if not self._lock.acquire(timeout=max(timeout, 0.0)):
            raise ModemTimeout(f"{cmd}: the session stayed busy for {timeout:g} s")
        try:
            self._raise_if_closed(cmd)
            self._drain()
            self._echo_seen = False
            self._pending = cmd
            try:
                self._write(cmd + "\r", cmd)
                lines: list[str] = []
                if expect_prompt:
                    self._await(cmd, lines, deadline, echo=cmd.strip(), until_prompt=True,
                                grace=min(timeout, ESCAPE_GRACE))
                    self._write(data or "", cmd)
                    echo = _CONTROL.sub("", data or "").strip()
                    return self._await(cmd, lines, deadline, echo=echo)
                return self._await(cmd, lines, deadline, echo=cmd.strip())
            finally:
                self._pending = None
        finally:
            self._lock.release()

    def send_pdu(self, length: int, pdu_hex: str, timeout: float = 60.0) -> int:
        """AT+CMGS=<length>, the PDU and Ctrl-Z after the prompt; returns the message reference.

        `length` is the TPDU length in octets, without the SMSC part (TS 27.005 clause 3.5.1).
        """
        if int(length) <= 0:
            raise ValueError(f"TPDU length must be positive, not {length!r}")
        bytes.fromhex(pdu_hex)  # ValueError for anything that is not hex
        cmd = f"AT+CMGS={int(length)}"
        lines = self.command(cmd, timeout, expect_prompt=True, data=pdu_hex.upper() + CTRL_Z)
        value = response_value(lines, "+CMGS")
        if value is None or not value.split(",")[0].strip().isdigit():
            raise ModemError(f"{cmd}: no message reference in the answer {lines!r}")
        return int(value.split(",")[0])

    def _await(self, cmd: str, lines: list[str], deadline: float, *, echo: str,
               until_prompt: bool = False, grace: float = 0.0) -> list[str]:
        expect_echo = bool(echo)
        while True:
            remaining = deadline - time.monotonic()
            try:
                item = self._responses.get(timeout=max(remaining, 0.0)) if remaining > 0 else (
                    self._responses.get_nowait())
            except queue.Empty:
                if until_prompt:
                    self._escape_prompt(cmd, grace)
                raise ModemTimeout(f"{cmd}: no final result code") from None
            if isinstance(item, _Lost):
                raise ModemClosed(f"{cmd}: port lost: {item.exc}")
            if item is PROMPT:
                if until_prompt:
                    return lines
                continue
            assert isinstance(item, str)
            if expect_echo:
                expect_echo = False
                # Control characters (a Ctrl-Z, the ESC that ended an earlier prompt) are echoed too.
                if _CONTROL.sub("", item).strip() == echo:
                    continue
            is_final, error = final_outcome(item, command=cmd, lines=lines)
            if not is_final:
                lines.append(item)
                continue
            if error is not None:
                raise error
            if until_prompt:
                raise ModemError(f"{cmd}: {item} instead of the '> ' prompt")
            return lines

    def _escape_prompt(self, cmd: str, grace: float) -> None:
        """Leave message-input mode with ESC (TS 27.005 clause 3.5.1) so the next command is not
        taken as PDU text, and wait a little for the modem's OK to it, so that OK is not taken
        for the next command's."""
        self._write(ESC, cmd)
        deadline = time.monotonic() + grace
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                item = self._responses.get(timeout=remaining)
            except queue.Empty:
                return
            if isinstance(item, _Lost):
                self._responses.put(item)
                return
            if isinstance(item, str) and final_outcome(item)[0]:
                return

    def _write(self, text: str, cmd: str) -> None:
        try:
            self.port.write(text.encode(self.encoding))
        except serial.SerialTimeoutException as exc:
            raise ModemTimeout(f"{cmd}: write timed out") from exc
        except (serial.SerialException, OSError) as exc:
            raise ModemClosed(f"{cmd}: write failed: {exc}") from exc

    def _drain(self) -> None:
        """Forget late answer lines a timed-out command left behind."""
        while True:
            try:
                item = self._responses.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Lost):
                self._responses.put(item)
                return
            log.debug("%s: dropped a late answer line %r", self.name, item)

    def _raise_if_closed(self, cmd: str) -> None:
        if self._lost is not None:
            raise ModemClosed(f"{cmd}: the port is closed ({self._lost.exc or 'closed'})")

    # -- FrameSink, called on the reader thread ---------------------------------------------

    def line_received(self, line: str) -> None:
        if self._collecting is not None:
            self._continue_urc(line)
            return
        pending = self._pending
        claimant = pending
        if pending is not None and not self._echo_seen:
            if _CONTROL.sub("", line).strip() == pending.strip():
                self._echo_seen = True
            elif self._echo_on:
                # V.250 echoes characters as they arrive, so with echo on nothing before the
                # echo answers this command: "+CPIN: READY" there is the URC after a PIN entry.
                claimant = None
        rule = match_urc(line, claimant, self.urc_rules)
        if rule is not None:
            if rule.data_lines or (rule.quoted and line.count('"') % 2):
                self._collecting = (rule, line, [])
            else:
                self._events.put(Urc(rule.prefix, line))
        elif pending is not None:
            if final_outcome(line)[0]:
                # The command is over as of this line: what follows in the same burst (a URC
                # sharing a prefix with the answer) is unsolicited. Cleared before the put, so
                # the next command's own _pending is never overwritten.
                self._pending = None
                self._echo_on = None if changes_echo(pending) else self._echo_seen
            self._responses.put(line)
        else:
            log.debug("%s: dropped a line outside any command: %r", self.name, line)

    def _continue_urc(self, line: str) -> None:
        assert self._collecting is not None
        rule, header, data = self._collecting
        if not rule.data_lines and (final_outcome(line)[0] or len(data) >= MAX_URC_LINES):
            # The closing quote never came: deliver what there is, the line is not part of it.
            self._collecting = None
            self._events.put(Urc(rule.prefix, "\n".join([header, *data])))
            self.line_received(line)
            return
        data.append(line)
        if rule.data_lines:
            if len(data) >= rule.data_lines:
                self._collecting = None
                self._events.put(Urc(rule.prefix, header, tuple(data)))
        elif sum(part.count('"') for part in data) % 2:
            self._collecting = None
            self._events.put(Urc(rule.prefix, "\n".join([header, *data])))

    def prompt_received(self) -> None:
        if self._pending is not None:
            self._responses.put(PROMPT)

    def connection_lost(self, exc: BaseException | None) -> None:
        lost = _Lost(exc)
        if self._lost is None:
            self._lost = lost
        self._responses.put(lost)
        if exc is not None:
            log.warning("%s: port lost: %s", self.name, exc)
            self._events.put(lost)

    # -- event thread ------------------------------------------------------------------------

    def _run_events(self) -> None:
        while True:
            item = self._events.get()
            if item is _STOP:
                return
            try:
                if isinstance(item, Urc):
                    if self.urc_handler is not None:
                        self.urc_handler(item)
                elif isinstance(item, _Lost) and item.exc is not None:
                    if self.closed_handler is not None:
                        self.closed_handler(item.exc)
            except Exception:
                # One bad URC must not end delivery of every later one (and with it SMS receipt).
                log.exception("%s: URC handler failed on %r", self.name, item)
