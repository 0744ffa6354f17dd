"""One thread per modem: it owns the modem's port and does one job at a time.

Jobs are sends handed over by the dispatcher, interactive calls (USSD,
information, tools) from the control socket, and inbox reads the modem
announces. The worker keeps the modem connected: it reopens a port that
failed, waits for an unplugged one to come back, checks a quiet modem's
health, and resets the USB device of one that stopped answering.

Sends and housekeeping go before interactive calls, and only one call may
wait besides the one running (more are refused as busy), so an OTP waits
behind one interactive call at most. A call carries its caller's deadline:
one whose caller has gone is skipped, and a running one stops at it. Each
job is guarded on its own: a store error (the database locked past its busy
timeout, a full disk) or a bug fails that job, logged, never the thread.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Callable

from peewee import DatabaseError

from ..store.db import db
from ..store.models import Modem, ModemStatus, SmsOutbox
from . import usbreset
from .at import Urc
from .device import DeviceConfig, ModemDevice
from .errors import CallExpired, ModemBusy, ModemClosed, ModemError, ModemTimeout, ModemUnavailable
from .inbox import apply_status_report, store_deliver
from .pdu import Deliver, PduError, StatusReport, decode_pdu
from .port import PortSettings
from .routing import RouteModem

log = logging.getLogger(__name__)

HEALTH_INTERVAL = 30.0
RECONNECT_DELAY = 1.0
RECONNECT_MAX_DELAY = 30.0
#: After a store error the worker reads the SIM and writes its status again this much later: what
#: could not be stored is still on the SIM (a message is deleted from it only after its commit).
STORE_RETRY = 5.0
#: Interactive calls that may wait for a busy modem besides the one it runs; more are refused (busy).
PENDING_CALLS = 1
_WORK, _CALL = 0, 1  # job priorities: sends, housekeeping and wake-ups before interactive calls


@dataclass(frozen=True)
class ModemConfig:
    """The fields of a Modem row that this component acts on; a change restarts the worker."""

    name: str
    port: str
    baud_rate: int
    parity: str
    data_bits: int
    stop_bits: float
    start_bits: int
    sim_pin: str
    prefixes: frozenset[str]
    is_default: bool
    send_from_api: bool
    active: bool

    @classmethod
    def from_row(cls, row: Modem) -> "ModemConfig":
        return cls(row.name, row.port, row.baud_rate, row.parity, row.data_bits, row.stop_bits, row.start_bits,
                   row.sim_pin, frozenset(row.prefix_list()), row.is_default, row.send_from_api, row.active)

    def port_settings(self) -> PortSettings:
        return PortSettings(port=self.port, baudrate=self.baud_rate, parity=self.parity, bytesize=self.data_bits,
                            stopbits=self.stop_bits, start_bits=self.start_bits)

    def route(self) -> RouteModem:
        return RouteModem(self.name, self.prefixes, self.is_default, self.send_from_api, self.active)

    def connection(self) -> tuple:
        """What needs a new connection when it changes (routing flags do not)."""
        return (self.port, self.baud_rate, self.parity, self.data_bits, self.stop_bits, self.start_bits,
                self.sim_pin)


@dataclass
class SendJob:
    row_id: int
    receiver: str
    text: str
    status_report: bool
    concat_reference: int
    attempt: int = 0  # the row's attempts after this claim: a row claimed again is another attempt


@dataclass
class SendResult:
    modem: str
    row_id: int
    ok: bool
    refs: list[int] = field(default_factory=list)
    error: str = ""
    closed: bool = False
    attempt: int = 0
    skipped: bool = False  # not sent: the row was no longer this worker's (its lease ran out)


@dataclass
class CallJob:
    fn: Callable[[ModemDevice, float], Any]  # the device, and the seconds left before the caller's deadline
    future: Future
    deadline: float  # time.monotonic() at which the caller stops waiting


class _Wake:
    """A job that only wakes the worker (port lost, stop requested)."""


class _Jobs:
    """The worker's queue: sends and housekeeping before interactive calls, first come first served within each."""

    def __init__(self) -> None:
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._order = itertools.count()

    def put(self, job: object, priority: int = _WORK) -> None:
        self._queue.put((priority, next(self._order), job))

    def get(self, timeout: float) -> object:
        return self._queue.get(timeout=timeout)[2]

    def get_nowait(self) -> object:
        return self._queue.get_nowait()[2]


class ModemWorker(threading.Thread):
    def __init__(self, config: ModemConfig, *, on_result: Callable[[SendResult], None],
                 on_change: Callable[[], None], send_timeout: float = 60.0):
        super().__init__(name=f"modem-{config.name}", daemon=True)
        self.config = config
        self._on_result = on_result
        self._on_change = on_change
        self.send_timeout = send_timeout
        self._jobs = _Jobs()
        self._stopping = threading.Event()
        self._lost = threading.Event()
        self.device: ModemDevice | None = None
        self.state = "starting"
        self.busy = False
        self.in_call = False
        self._calls_lock = threading.Lock()
        self.calls_waiting = 0
        self._sending: tuple[int, float] | None = None  # (row id, time.monotonic() the send began)
        self._store_retry_at: float | None = None
        self.last_error = ""
        self.last_sent_at = 0.0
        self.failures = 0
        self.quarantined_until = 0.0
        self._suspended: str | None = None
        self._concat_reference = int.from_bytes(os.urandom(1), "big")

    # ---------------------------------------------------------------- asked by others

    @property
    def connected(self) -> bool:
        return self.device is not None

    @property
    def free(self) -> bool:
        """Can take a send now (the dispatcher also checks pacing and caps)."""
        return self.state == "ready" and self.device is not None and not self.busy

    def submit(self, job: SendJob) -> None:
        self.busy = True
        self._jobs.put(job)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def sending_since(self, row_id: int) -> float | None:
        """When (time.monotonic()) this worker began sending *row_id*, or None when it is not sending it."""
        sending = self._sending
        return sending[1] if sending is not None and sending[0] == row_id else None

    def call(self, fn: Callable[[ModemDevice, float], Any], timeout: float) -> Any:
        """Run *fn(device, seconds left)* on the worker's thread within *timeout*; raise what it raised.

        It waits behind the sends and behind the call running now; when another call is already
        waiting, this one is refused (:class:`ModemBusy`). When *timeout* passes first it raises
        :class:`ModemTimeout`, and the call is skipped if it had not started.
        """
        if not self.connected:
            raise ModemUnavailable(f"modem {self.config.name} is {self.state}")
        with self._calls_lock:
            if self.calls_waiting >= PENDING_CALLS:
                raise ModemBusy(f"modem {self.config.name} is busy with another interactive call: "
                                "try again when it is done")
            self.calls_waiting += 1
        job = CallJob(fn, Future(), time.monotonic() + timeout)
        self._jobs.put(job, _CALL)
        try:
            return job.future.result(timeout)
        except FutureTimeout:
            # Not started yet: the worker will skip it, and its place is free now. Running: it stops at the deadline.
            if job.future.cancel():
                with self._calls_lock:
                    self.calls_waiting -= 1
            raise ModemTimeout(f"modem {self.config.name} did not finish in {timeout:g} s") from None

    def quarantine(self, until: float, reason: str) -> None:
        """Rest after too many failures; meanwhile reopen the modem (then reset its USB device)."""
        self.quarantined_until = until
        self._set_state("quarantined", reason)
        self._jobs.put(lambda: self._recover(reason))

    def release(self) -> None:
        """The rest is over: eligible again, with a clean failure count."""
        self.quarantined_until = 0.0
        self.failures = 0
        self._set_state("ready" if self.device is not None else "disconnected", "")

    def suspend(self, state: str, timeout: float = 30.0) -> None:
        """Let go of the port (for pppd) and stay off it until :meth:`resume`."""
        self._suspended = state
        done: Future = Future()

        def let_go() -> None:
            self._disconnect(state)
            self._set_state(state, "")
            done.set_result(None)

        self._jobs.put(let_go)
        done.result(timeout)

    def resume(self) -> None:
        self._suspended = None
        self._jobs.put(_Wake())

    def stop(self) -> None:
        self._stopping.set()
        self._jobs.put(_Wake())

    def next_concat_reference(self) -> int:
        self._concat_reference = (self._concat_reference + 1) % 256
        return self._concat_reference

    # ---------------------------------------------------------------- the loop

    def run(self) -> None:
        delay = RECONNECT_DELAY
        try:
            while not self._stopping.is_set():
                timeout = HEALTH_INTERVAL
                if self.device is None and self._suspended is None:
                    if self._guard(self._connect):
                        delay = RECONNECT_DELAY
                    else:
                        timeout, delay = delay, min(delay * 2, RECONNECT_MAX_DELAY)
                if self._store_retry_at is not None:
                    timeout = min(timeout, max(self._store_retry_at - time.monotonic(), 0.0))
                try:
                    job = self._jobs.get(timeout=timeout)
                except queue.Empty:
                    self._guard(self._housekeeping)
                    continue
                self._guard(lambda: self._run(job))
        finally:
            self._disconnect("stopped")
            self._fail_pending("the modem component is stopping")
            db.close()

    def _run(self, job: object) -> None:
        if self._lost.is_set():
            self._disconnect("the port was closed (unplugged?)")
        if isinstance(job, SendJob):
            self._send(job)
        elif isinstance(job, CallJob):
            self._call(job)
        elif callable(job):
            job()

    def _call(self, job: CallJob) -> None:
        if not job.future.set_running_or_notify_cancel():
            return  # its caller gave up while it waited (and freed its place): never run
        with self._calls_lock:
            self.calls_waiting -= 1
        left = job.deadline - time.monotonic()
        if left <= 0:
            job.future.set_exception(CallExpired(f"modem {self.config.name} got to the call after its "
                                                 "caller's deadline: not run"))
            return
        if self.device is None:
            job.future.set_exception(ModemUnavailable(f"modem {self.config.name} is {self.state}"))
            return
        self.in_call = True
        try:
            job.future.set_result(job.fn(self.device, left))
        except ModemClosed as exc:
            job.future.set_exception(exc)
            self._disconnect(str(exc))
        except Exception as exc:  # handed to the caller, who reports it
            job.future.set_exception(exc)
        finally:
            self.in_call = False

    def _guard(self, action: Callable[[], Any]) -> Any:
        """Run one job; a lost port disconnects, a silent modem is recovered, and nothing kills the thread.

        A store error leaves what could not be stored on the SIM and retries in :data:`STORE_RETRY`
        seconds; anything else unexpected is a bug, logged with its traceback. Both return None.
        """
        try:
            return action()
        except ModemClosed as exc:
            self._disconnect(str(exc))
        except ModemTimeout as exc:
            self._recover(str(exc))
        except (ModemError, PduError) as exc:
            log.warning("%s: %s", self.config.name, exc)
        except DatabaseError as exc:
            log.error("%s: store error, retrying in %g s: %s", self.config.name, STORE_RETRY, exc)
            self._store_retry_at = time.monotonic() + STORE_RETRY
        except Exception:
            log.exception("%s: a job failed", self.config.name)
        return None

    # ---------------------------------------------------------------- connection

    def _connect(self) -> bool:
        if not os.path.exists(self.config.port):
            self._set_state("disconnected", f"{self.config.port} is not present")
            return False
        self._lost.clear()
        device = ModemDevice(DeviceConfig(
            name=self.config.name, port=self.config.port_settings(), sim_pin=self.config.sim_pin,
            send_timeout=self.send_timeout, urc_callback=self._on_urc, closed_callback=self._on_closed,
        ), stop=self._stopping)
        try:
            device.open()
        except ModemError as exc:
            self._set_state("disconnected", str(exc))
            return False
        self.device = device
        self._set_state("quarantined" if self.quarantined_until > time.time() else "ready", "")
        log.info("%s: connected on %s", self.config.name, self.config.port)
        self._guard(self._identify)
        if self.device is not None:  # identifying may have found the port gone again
            self._guard(self.read_inbox)
        return self.device is not None

    def _disconnect(self, reason: str) -> None:
        if self.device is not None:
            self.device.close()
            self.device = None
            log.warning("%s: disconnected: %s", self.config.name, reason)
        if not self._stopping.is_set():
            self._set_state("disconnected", reason)
        self._on_change()

    def _recover(self, reason: str) -> None:
        """A modem that stops answering: reopen it; if that fails too, reset its USB device."""
        log.warning("%s: not answering (%s): reopening", self.config.name, reason)
        self._disconnect(reason)
        if self._stopping.is_set() or self._connect():
            return
        try:
            device = usbreset.reset(self.config.port)
            log.warning("%s: USB device %s reset", self.config.name, device)
        except (LookupError, OSError) as exc:
            log.warning("%s: no USB reset: %s", self.config.name, exc)

    def _on_closed(self, exc: BaseException) -> None:
        # On the session's event thread: only flag it and wake the worker.
        self._lost.set()
        self._jobs.put(_Wake())

    def _on_urc(self, urc: Urc) -> None:
        # On the session's event thread: the work happens on the worker's own thread.
        if urc.prefix == "+CMTI:":
            index = urc.value.split(",")[-1].strip()
            if index.isdigit():
                self._jobs.put(lambda: self._read_index(int(index)))
        elif urc.prefix in ("+CDS:", "+CMT:") and urc.data:
            self._jobs.put(lambda: self._store_pdu(urc.data[0]))
        elif urc.prefix == "+CDSI:":
            index = urc.value.split(",")[-1].strip()
            if index.isdigit():
                self._jobs.put(lambda: self._read_index(int(index)))

    # ---------------------------------------------------------------- work

    def _still_mine(self, job: SendJob) -> bool:
        """Whether the row is still claimed by this worker for this attempt (its lease may have run out
        while the job waited, and another modem may have it now). A store that cannot answer says yes:
        sending twice beats never sending."""
        try:
            row = SmsOutbox.select(SmsOutbox.state, SmsOutbox.modem, SmsOutbox.attempts).where(
                SmsOutbox.id == job.row_id).first()
        except DatabaseError as exc:
            log.warning("%s: cannot check row %d before sending it: %s", self.config.name, job.row_id, exc)
            return True
        return row is not None and (row.state, row.modem, row.attempts) == ("sending", self.config.name,
                                                                             job.attempt)

    def _send(self, job: SendJob) -> None:
        """Send one row and always report it (the dispatcher counts on one result per job)."""
        result = SendResult(self.config.name, job.row_id, ok=False, attempt=job.attempt)
        recover = ""
        try:
            if not self._still_mine(job):
                result.skipped, result.error = True, "no longer this modem's"
                return
            if self.device is None:
                raise ModemClosed(f"modem {self.config.name} is {self.state}")
            self._sending = (job.row_id, time.monotonic())
            result.refs = self.device.send_sms(job.receiver, job.text, status_report=job.status_report,
                                               concat_reference=job.concat_reference)
            result.ok = True
            self.failures = 0
            self.last_sent_at = time.time()
        except ModemClosed as exc:
            result.error, result.closed = str(exc), True
            self._disconnect(str(exc))
        except ModemTimeout as exc:
            result.error = f"timed out: {exc}"
            self.failures += 1
            recover = str(exc)
            self._disconnect(recover)  # not free while it recovers; the row fails over at once
        except (ModemError, PduError, ValueError) as exc:
            result.error = str(exc)
            self.failures += 1
        finally:
            self._sending = None
            self.busy = False
            self._on_result(result)
        if recover:
            self._recover(recover)

    def _fail_pending(self, reason: str) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if isinstance(job, SendJob):
                self._on_result(SendResult(self.config.name, job.row_id, ok=False, error=reason, closed=True,
                                           attempt=job.attempt))
            elif isinstance(job, CallJob) and job.future.set_running_or_notify_cancel():
                job.future.set_exception(ModemUnavailable(reason))

    def _housekeeping(self) -> None:
        """When the queue is quiet: retry what the store refused, else check the modem's health."""
        if self._store_retry_at is not None and self._store_retry_at <= time.monotonic():
            self._store_retry_at = None
            if self.device is not None:
                self.read_inbox()
            self._write_status()
            return
        self._health_check()

    def _health_check(self) -> None:
        if self.device is not None:
            signal = self.device.signal()
            self._write_status(signal_dbm=signal)

    def _identify(self) -> None:
        if self.device is None:
            raise ModemClosed(f"modem {self.config.name} is {self.state}")
        info = self.device.info()
        identity = {k: getattr(info, k) for k in ("manufacturer", "model", "revision", "imei", "imsi", "operator",
                                                     "msisdn", "sms_center")}
        with db.atomic():
            # Identity is read from the modem, not a setting: no settings generation bump.
            Modem.update(**identity).where(Modem.name == self.config.name).execute()
        self._write_status(signal_dbm=info.signal_dbm, registration=info.registration, operator=info.operator)

    def read_inbox(self) -> int:
        """Move every message stored on the SIM into the store, then off the SIM."""
        if self.device is None:
            raise ModemClosed(f"modem {self.config.name} is {self.state}")
        count = 0
        for stored in self.device.stored_messages():
            if self._store_pdu(stored.pdu_hex):
                self.device.delete_message(stored.index)
                count += 1
        return count

    def _read_index(self, index: int) -> None:
        pdu_hex = self.device.read_message(index) if self.device else None
        if pdu_hex is not None and self._store_pdu(pdu_hex):
            self.device.delete_message(index)

    def _store_pdu(self, pdu_hex: str) -> bool:
        """True when the message is safely in the store (or is one the SIM may drop)."""
        try:
            message = decode_pdu(pdu_hex)
        except PduError as exc:
            log.warning("%s: unreadable PDU left on the SIM: %s", self.config.name, exc)
            return False
        if isinstance(message, Deliver):
            store_deliver(self.config.name, message)
            return True
        if isinstance(message, StatusReport):
            apply_status_report(self.config.name, message)
            return True
        return False  # an SMS-SUBMIT the user saved on the SIM: not ours to delete

    # ---------------------------------------------------------------- status

    def _set_state(self, state: str, error: str) -> None:
        changed = (state, error) != (self.state, self.last_error)
        self.state, self.last_error = state, error
        if changed:
            self._write_status()

    def _write_status(self, **fields: Any) -> None:
        """Record the state for the monitor, CLI and admin. Only a record: when the store refuses it, the
        job that changed the state goes on and the status is written again in :data:`STORE_RETRY` s."""
        values = {"state": self.state, "connected": self.device is not None, "last_error": self.last_error[:255],
                  "failures": self.failures, "quarantined_until": self.quarantined_until or None,
                  "updated_at": time.time(), **fields}
        try:
            with db.atomic():
                if not ModemStatus.update(**values).where(ModemStatus.name == self.config.name).execute():
                    ModemStatus.create(name=self.config.name, **values)
        except DatabaseError as exc:
            log.error("%s: cannot record its status (%s): retrying in %g s", self.config.name, exc, STORE_RETRY)
            self._store_retry_at = time.monotonic() + STORE_RETRY
