"""What tests and the control socket do to a simulated modem, from any thread.

Faults are named for what the driver sees: `fail_sends` (+CMS ERROR on the next sends),
`go_silent` (no answers at all), `unplug`, `power_cycle` (the SIM busy while it starts),
`set_network_delay`, `set_ussd_delay` (a slow USSD service, sends unaffected), `set_prompt_delay`,
`interleave_urc` (an unsolicited line in the middle of the next answer), `cross_next_command` (one that
crosses the next command on the wire).
Injections play the network: an SMS arriving, a status report, a USSD reply. Each hands its work
to the modem's own thread with `call()`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .profiles import UssdReply
from .sms import SentMessage, deliver_status_report, receive_sms


class FaultsAndInjections:
    """Mixed into SimulatedModem; the public knobs, kept apart from the V.250 machinery."""

    def _init_faults(self) -> None:
        self.silent = False
        self.send_failures: deque[int] = deque()  # CMS codes for the next sends, in order
        self.dial_result: str | None = None  # None: the profile's CONNECT line
        self.interleaved: deque[tuple[str, str | None]] = deque()
        self.crossing: deque[str] = deque()
        self._input_seen = threading.Condition()
        self._input_log = bytearray()

    def call(self, function: Callable[..., Any], *args: Any, timeout: float = 5.0) -> Any:
        """Run on the modem's thread (SimulatedModem provides it)."""
        raise NotImplementedError

    def fail_sends(self, count: int = 1, code: int = 38) -> None:
        """The next `count` AT+CMGS end in +CMS ERROR: `code` (38: network out of order)."""
        self.call(self.send_failures.extend, [int(code)] * int(count))

    def go_silent(self) -> None:
        """Stop answering: input is swallowed and nothing is sent, URCs included."""
        self.call(setattr, self, "silent", True)

    def answer_again(self) -> None:
        self.call(setattr, self, "silent", False)

    def set_network_delay(self, seconds: float) -> None:
        """Each send (and USSD request) takes this long on the network before its answer."""
        self.call(setattr, self, "network_delay", float(seconds))

    def set_ussd_delay(self, seconds: float | None) -> None:
        """The network answers each USSD request this late (None: as late as a send, the network delay)."""
        self.call(setattr, self, "ussd_delay", None if seconds is None else float(seconds))

    def set_prompt_delay(self, seconds: float) -> None:
        """The "> " after AT+CMGS comes this late (the modem takes input at once)."""
        self.call(setattr, self, "prompt_delay", float(seconds))

    def unplug(self) -> None:
        """Close the pty, as a USB modem pulled out: the client's port fails."""
        self.call(self._unplug)

    def replug(self) -> None:
        """A new pty (and the stable link repointed at it), and the modem powers up again."""
        self.call(self._replug)

    def power_cycle(self, sim_busy_seconds: float | None = None) -> None:
        """Restart: settings reset, boot URCs, SIM busy (+CME ERROR: 14) for the given time."""
        busy = self.sim_busy_seconds if sim_busy_seconds is None else sim_busy_seconds
        self.call(self._power_up, busy)

    def end_sim_busy(self) -> None:
        """Finish the SIM start-up now, whatever time was left."""
        self.call(self._sim_ready, self._boot)

    def clear_faults(self) -> None:
        def clear() -> None:
            self.silent = False
            self.send_failures.clear()
            self.network_delay = 0.0
            self.ussd_delay = None
            self.prompt_delay = 0.0
            self.dial_result = None
        self.call(clear)

    def emit(self, line: str) -> None:
        """Send an unsolicited line ("RING", "+CREG: 2") as the modem would."""
        self.call(self.urc, line)

    def receive_sms(self, sender: str, text: str, timestamp: Any = None) -> list[int]:
        """An SMS from the network: stored and announced per AT+CNMI; storage indexes."""
        return self.call(receive_sms, self, sender, text, timestamp)

    def send_status_report(self, message_reference: int, status: int = 0) -> int | None:
        """A status report for a sent message, routed per AT+CNMI <ds>; its index if stored."""
        return self.call(deliver_status_report, self, int(message_reference), int(status))

    def set_ussd_reply(self, code: str, reply: UssdReply) -> None:
        self.call(self.ussd.__setitem__, code, reply)

    def wait_for_sent(self, count: int = 1, timeout: float = 5.0) -> list[SentMessage]:
        """The sent messages once `count` are complete; TimeoutError otherwise."""
        return self.sent.wait_for(count, timeout)

    def interleave_urc(self, line: str, data: str | None = None) -> None:
        """Put an unsolicited line (and its PDU line) inside the answer of the next command."""
        self.call(self.interleaved.append, (line, data))

    def cross_next_command(self, line: str) -> None:
        """Send an unsolicited line just as the next command starts arriving, ahead of its echo."""
        self.call(self.crossing.append, line)

    def note_input(self, data: bytes) -> None:
        """Called on the modem's thread for every byte received, answered or not."""
        with self._input_seen:
            self._input_log += data
            self._input_seen.notify_all()

    def wait_for_input(self, expected: bytes, timeout: float = 5.0) -> None:
        """Return once `expected` has arrived from the client (even while silent)."""
        with self._input_seen:
            if not self._input_seen.wait_for(lambda: expected in self._input_log, timeout):
                raise TimeoutError(f"the modem did not receive {expected!r} in {timeout} s")

