"""One simulated modem: bytes in from its pty, V.250 behaviour, bytes out; faults on request.

Everything a modem does happens on its own serving thread (commands, timers, output), so its state
needs no locks; other threads (tests, the control socket) hand work over with `call()`. The faults
and injections are in `faults`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from ..errors import CME_ERRORS, CMS_ERRORS
from .base import Deferred, Failure, SimState
from .commands import handler_for
from .faults import FaultsAndInjections
from .link import PtyLink
from .parser import AtCommand, parse_line
from .profiles import DEFAULT_USSD, Profile, SimCard, UssdMenu, UssdReply, default_imei
from .sms import SendLog, SmsStorage

log = logging.getLogger(__name__)

CR, LF, BACKSPACE, CTRL_Z, ESC = 0x0D, 0x0A, 0x08, 0x1A, 0x1B


@dataclass
class Settings:
    """What ATZ and a power cycle reset."""

    echo: bool
    cmee: int = 0
    cmgf: int = 0
    cnmi: tuple[int, ...] = (2, 1, 0, 0, 0)
    creg: int = 0
    cgreg: int = 0
    cops_format: int = 0
    cscs: str = "IRA"
    cusd: int = 0


class SimulatedModem(FaultsAndInjections):
    def __init__(self, index: int, profile: Profile, sim: SimCard, *,
                 link_path: str | None = None, network_delay: float = 0.0,
                 sim_busy_seconds: float = 0.0, ussd: Mapping[str, UssdReply] | None = None,
                 imei: str | None = None) -> None:
        self.index = index
        self.profile = profile
        self.sim = sim
        self.imei = imei or default_imei(profile, index)
        self.link_path = link_path
        self.network_delay = network_delay
        self.ussd_delay: float | None = None  # seconds the network takes to answer USSD; None: network_delay
        self.prompt_delay = 0.0  # seconds between AT+CMGS and its "> " (input is taken at once)
        self.status_report_delay = 0.0
        self.sim_busy_seconds = sim_busy_seconds
        self.ussd: dict[str, UssdReply] = {**DEFAULT_USSD, **(ussd or {})}
        self.ussd_session: UssdMenu | None = None
        self.settings = Settings(echo=profile.echo)
        self.sim_state = SimState.BUSY
        self.registration = 1  # +CREG stat: registered, home network
        self.rssi = 20
        self.storage = SmsStorage(profile.first_index, profile.storage_slots)
        self.sent = SendLog(index)
        self.commands_seen: list[str] = []
        self.message_reference = 0
        self.errors: list[BaseException] = []  # simulator bugs met while answering
        self._init_faults()
        self._link: PtyLink | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._calls: deque[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = deque()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = itertools.count()
        self._line = bytearray()
        self._mode = "command"  # "command", "prompt" (after AT+CMGS) or "data" (after CONNECT)
        self._prompt_done: Callable[[str], None] | None = None
        self._busy = False
        self._held_input = bytearray()
        self._boot = 0

    # -- lifecycle, on the caller's thread --------------------------------------------------

    @property
    def path(self) -> str:
        """The device path a client opens (the stable link when the simulator has a directory)."""
        if self._link is not None:
            return self._link.path
        return self.link_path or ""

    @property
    def slave_path(self) -> str | None:
        return self._link.slave_path if self._link is not None else None

    @property
    def plugged(self) -> bool:
        return self._link is not None

    def start(self) -> None:
        self._link = PtyLink(self.link_path)
        self._thread = threading.Thread(target=self._serve, name=f"simulated-modem{self.index}",
                                        daemon=True)
        self._thread.start()
        self.call(self._power_up, self.sim_busy_seconds)

    def stop(self) -> None:
        self._stopping.set()
        os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(5.0)
        if self._link is not None:
            self._link.close()
            self._link = None
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)

    def call(self, function: Callable[..., Any], *args: Any, timeout: float = 5.0) -> Any:
        """Run `function(*args)` on the modem's thread and return its result."""
        thread = self._thread
        if thread is None or threading.current_thread() is thread:
            return function(*args)
        if not thread.is_alive():
            raise RuntimeError(f"simulated modem {self.index} is not running")
        future: Future[Any] = Future()
        self._calls.append((future, function, args))
        os.write(self._wake_w, b"x")
        return future.result(timeout)

    # -- used by the command handlers, on the modem's thread --------------------------------

    def write_lines(self, lines: list[str]) -> None:
        if lines:
            self._write("".join(f"\r\n{line}\r\n" for line in lines).encode("latin-1", "replace"))

    def urc(self, line: str, data: str | None = None) -> None:
        """An unsolicited line; `data` is the PDU line that follows +CMT: and +CDS:."""
        if data is None:
            self.write_lines([line])
        else:
            self._write(f"\r\n{line}\r\n{data}\r\n".encode("latin-1"))

    def failure_line(self, failure: Failure) -> str:
        """ERROR, or +CME/+CMS ERROR per AT+CMEE (0 plain, 1 numeric, 2 verbose).

        +CMS ERROR is reported even at CMEE=0 (TS 27.005 clause 3.2.5 makes it the final result
        code of every SMS command), numerically unless verbose errors were asked for.
        """
        cmee = self.settings.cmee
        if failure.result is not None:
            return failure.result
        if failure.kind is None or (failure.kind == "CME" and cmee == 0):
            return "ERROR"
        table = CME_ERRORS if failure.kind == "CME" else CMS_ERRORS
        detail = table.get(failure.code, "unknown") if cmee == 2 else str(failure.code)
        return f"+{failure.kind} ERROR: {detail}"

    def schedule(self, delay: float, function: Callable[[], None]) -> None:
        now = time.monotonic()
        heapq.heappush(self._timers, (now + max(delay, 0.0), next(self._sequence), function))

    def enter_prompt(self, done: Callable[[str], None]) -> None:
        """Message-input mode: "> ", then text up to Ctrl-Z goes to `done` (ESC cancels)."""
        self._mode = "prompt"
        self._prompt_done = done
        if self.prompt_delay <= 0:
            self._write(b"\r\n> ")
            return

        def late_prompt() -> None:  # only if this very prompt is still open
            if self._prompt_done is done:
                self._write(b"\r\n> ")
        self.schedule(self.prompt_delay, late_prompt)

    def enter_data_mode(self) -> None:
        self._mode = "data"
        self._line.clear()

    def hold(self) -> None:
        """Busy (a send on the air): input waits until `release()`."""
        self._busy = True

    def release(self) -> None:
        self._busy = False
        held = bytes(self._held_input)
        self._held_input.clear()
        if held:
            self._on_input(held)

    def reset_settings(self) -> None:
        self.settings = Settings(echo=self.profile.echo)
        self.ussd_session = None

    # -- power-up ----------------------------------------------------------------------------

    def _power_up(self, sim_busy_seconds: float) -> None:
        self._boot += 1
        self.reset_settings()
        self._mode, self._busy = "command", False
        self._line.clear()
        self._held_input.clear()
        self.sim_state = SimState.BUSY
        for line in self.profile.boot_urcs:
            self.urc(line)
        boot = self._boot
        if sim_busy_seconds > 0:
            self.schedule(sim_busy_seconds, lambda: self._sim_ready(boot))
        else:
            self._sim_ready(boot)

    def _sim_ready(self, boot: int) -> None:
        if boot != self._boot or self.sim_state is not SimState.BUSY:
            return
        if self.sim.pin_attempts <= 0:
            self.sim_state = SimState.PUK
            self._announce_sim("+CPIN: SIM PUK")
        elif self.sim.pin_enabled:
            self.sim_state = SimState.PIN
            self._announce_sim("+CPIN: SIM PIN")
        else:
            self.sim_state = SimState.READY
            self.announce_ready()

    def announce_ready(self) -> None:
        """What the modem says once the SIM is usable (after start-up, or after the PIN)."""
        self._announce_sim("+CPIN: READY")
        for line in self.profile.ready_urcs:
            self.urc(line)

    def _announce_sim(self, line: str) -> None:
        if self.profile.cpin_urc:
            self.urc(line)

    def _unplug(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None

    def _replug(self) -> None:
        self._unplug()
        self._link = PtyLink(self.link_path)
        self._power_up(self.sim_busy_seconds)

    # -- serving -----------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stopping.is_set():
            link = self._link
            readers = [self._wake_r] + ([link.master] if link is not None else [])
            writers = [link.master] if link is not None and link.has_output else []
            timeout = max(self._timers[0][0] - time.monotonic(), 0.0) if self._timers else None
            readable, writable, _ = select.select(readers, writers, [], timeout)
            if self._wake_r in readable:
                os.read(self._wake_r, 4096)
            self._run_calls()
            if link is not None and link is self._link:
                if link.master in writable:
                    link.flush()
                if link.master in readable:
                    data = link.read()
                    if data:
                        self._guarded(self._on_input, data)
            self._run_timers()
        for future, _function, _args in self._calls:
            future.set_exception(RuntimeError("simulated modem stopped"))

    def _run_calls(self) -> None:
        while self._calls:
            future, function, args = self._calls.popleft()
            try:
                future.set_result(function(*args))
            except Exception as exc:  # handed back to the calling thread
                future.set_exception(exc)

    def _run_timers(self) -> None:
        while self._timers and self._timers[0][0] <= time.monotonic():
            _due, _seq, function = heapq.heappop(self._timers)
            self._guarded(function)

    def _guarded(self, function: Callable[..., None], *args: Any) -> None:
        """Run simulator code; a bug in it is logged and kept for the tests, the modem serves on."""
        try:
            function(*args)
        except Exception as exc:
            log.exception("modem %d: internal error", self.index)
            self.errors.append(exc)

    def _write(self, data: bytes) -> None:
        if self._link is not None and not self.silent:
            self._link.write(data)

    def _on_input(self, data: bytes) -> None:
        self.note_input(data)
        if self.silent:
            return
        for position, byte in enumerate(data):
            if self._busy:
                self._held_input += data[position:]
                return
            if self._mode == "prompt":
                self._prompt_byte(byte)
            elif self._mode == "data":
                self._data_byte(byte)
            else:
                self._command_byte(byte)

    def _command_byte(self, byte: int) -> None:
        if not self._line and byte not in (CR, LF):
            while self.crossing:  # sent as the command starts arriving: it crosses it
                self.urc(self.crossing.popleft())
        if self.settings.echo and byte != LF:
            self._write(bytes([byte]))
        if byte == CR:
            text = self._line.decode("latin-1")
            self._line.clear()
            if "AT" in text.upper():
                self._run_line(text[text.upper().index("AT"):])
        elif byte == BACKSPACE:
            del self._line[-1:]
        elif byte != LF:
            self._line.append(byte)

    def _prompt_byte(self, byte: int) -> None:
        if byte in (CTRL_Z, ESC):
            text = self._line.decode("latin-1")
            self._line.clear()
            done, self._prompt_done, self._mode = self._prompt_done, None, "command"
            if byte == ESC:
                self.write_lines(["OK"])
            elif done is not None:
                done(text)
        elif byte not in (CR, LF):
            if self.settings.echo:
                self._write(bytes([byte]))
            self._line.append(byte)

    def _data_byte(self, byte: int) -> None:
        # No PPP here: data is swallowed until the "+++" escape back to command mode (V.250 6.3.2).
        self._line.append(byte)
        if self._line.endswith(b"+++"):
            self._line.clear()
            self._mode = "command"
            self.write_lines(["OK"])

    def _run_line(self, text: str) -> None:
        self.commands_seen.append(text)
        try:
            commands = parse_line(text)
        except ValueError:
            self.write_lines(["ERROR"])
            return
        output: list[str] = []
        for command in commands:
            try:
                result = self._dispatch(command)
            except Failure as failure:
                self.write_lines(self._interleave(output) + [self.failure_line(failure)])
                return
            if isinstance(result, Deferred):
                self.write_lines(self._interleave(output))
                result.start()
                return
            output.extend(result)
        self.write_lines(self._interleave(output) + ["OK"])

    def _interleave(self, output: list[str]) -> list[str]:
        """Answer lines with the injected URCs after the first of them (or before them all)."""
        urcs: list[str] = []
        while self.interleaved:
            line, data = self.interleaved.popleft()
            urcs += [line] if data is None else [line, data]
        position = min(1, len(output))
        return output[:position] + urcs + output[position:]

    def _dispatch(self, command: AtCommand) -> list[str] | Deferred:
        handler = handler_for(self, command.name)
        if handler is None:
            raise Failure()
        try:
            return handler(self, command)
        except (ValueError, IndexError):  # malformed arguments
            raise Failure() from None
        except Failure:
            raise
        except Exception as exc:
            # A simulator bug: answer ERROR so the client goes on, and keep it for the tests
            # to fail on.
            log.exception("modem %d: %s failed", self.index, command.name)
            self.errors.append(exc)
            raise Failure() from None

