"""Modem benchmarks: REST → the real modem component → simulated modems, on a throwaway root.

Each run provisions a root with the real CLI (modems added with ``otppi modem
add``), starts the in-process simulator (pty modems, as the tests use), then
``python -m otppi.api`` and ``python -m otppi.modem`` as their own processes.
The simulator notes the moment each SMS-SUBMIT arrives (the Ctrl-Z that ends
it), which is what the figures are measured against:

1. overhead: one modem, no network delay, messages sent one after another over
   REST with a long ``api.wait_timeout`` (each answer comes after the outcome);
   latency from just before the HTTP request to the Ctrl-Z at the modem;
2. utilisation: four modems whose network takes 3 s per message, a burst of
   messages queued at once (``api.wait_timeout`` 0 answers 1111); wall time
   until the simulator has recorded them all, against the ideal of one
   message per modem per network delay; none may be lost or sent twice;
3. peak memory (VmHWM) of the modem component through the utilisation run.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import secrets
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from otppi import codes, control
from otppi.modem.simulator import Simulator
from otppi.paths import Paths

from . import load
from .appliance import PASSWORD, USER, Appliance
from .run import machine
from .workload import encode

GOAL_P50_MS = 10.0
GOAL_P99_MS = 50.0
GOAL_UTILISATION = 0.95
READY_TIMEOUT_S = 60.0
WARMUP = 20  # messages before the overhead run is measured: the first request verifies the password (argon2)


@dataclass(frozen=True)
class Scale:
    overhead_messages: int
    burst_messages: int
    modems: int
    network_delay_s: float


FULL = Scale(overhead_messages=1000, burst_messages=400, modems=4, network_delay_s=3.0)
QUICK = Scale(overhead_messages=200, burst_messages=100, modems=4, network_delay_s=1.0)


def proc_status(pid: int, name: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (VmHWM: peak resident set), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise KeyError(name)


class Gateway(Appliance):
    """The appliance with simulated modems and the modem component beside the api."""

    def __init__(self, modems: int, network_delay_s: float, wait_timeout_s: float):
        super().__init__()
        self.modems, self.wait_timeout_s = modems, wait_timeout_s
        self.sim = Simulator(count=modems, directory=str(self.root / "sim"), network_delay=network_delay_s)
        self.modem_log = self.root / "modem.log"
        self.modem_proc: subprocess.Popen | None = None

    def provision(self) -> None:
        super().provision()
        self.cli("settings", "set", "api.wait_timeout", str(self.wait_timeout_s))
        # A burst of 400 at 4/3 per second takes 300 s, the default queue timeout: keep every message.
        self.cli("settings", "set", "sms.queue_timeout", "3600")
        for index, modem in enumerate(self.sim):
            self.cli("modem", "add", f"m{index}", "--port", modem.path)

    def start(self) -> None:
        self.sim.start()
        super().start()
        with self.modem_log.open("ab") as log:
            self.modem_proc = subprocess.Popen([sys.executable, "-m", "otppi.modem"], env=self.env(),
                                               stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self._modems_ready():
            if self.modem_proc.poll() is not None:
                raise RuntimeError(f"modem component exited with {self.modem_proc.returncode}: "
                                   f"{self.modem_log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"modems not ready within {READY_TIMEOUT_S:.0f} s: {self.modem_log}")
            time.sleep(0.05)  # another process: nothing to wait on but its answers

    def _modems_ready(self) -> bool:
        answer = control.call(Paths(self.root), {"op": "status"}, 5.0)
        states = [m["state"] for m in answer.get("modems", [])] if answer.get("ok") else []
        return len(states) == self.modems and all(s == "ready" for s in states)

    def connection(self) -> load.Connection:
        auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode("ascii")
        return load.Connection(load.Target("127.0.0.1", self.port, "/api/sms", f"Basic {auth}"))

    def parts(self) -> list:
        return [part for modem in self.sim for part in modem.sent.parts()]

    def query(self, sql: str, *args) -> list[tuple]:
        con = sqlite3.connect(Paths(self.root).database, timeout=15)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def outbox_states(self) -> Counter:
        return Counter(dict(self.query("select state, count(*) from sms_outbox group by state")))

    def stop(self) -> None:
        try:
            if self.modem_proc is not None and self.modem_proc.poll() is None:
                self.modem_proc.terminate()
                try:
                    self.modem_proc.wait(20)
                except subprocess.TimeoutExpired:
                    self.modem_proc.kill()
                    self.modem_proc.wait(5)
            self.modem_proc = None
            super().stop()
        finally:
            self.sim.stop()


def send_sms(conn: load.Connection, key: str, text: str, receiver: str) -> str:
    status, answer = conn.request(encode({"command": "send-sms",
                                          "data": {"id": key, "receiver": receiver, "message": text}}))
    try:
        return f"{status}/{json.loads(answer)['response_code']}"
    except (ValueError, KeyError, TypeError):
        return f"{status}/?"


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))]


# ---------------------------------------------------------------- 1. overhead


@dataclass
class Overhead:
    messages: int
    to_modem_ms: list[float] = field(default_factory=list)  # request start → Ctrl-Z at the modem
    round_trip_ms: list[float] = field(default_factory=list)  # request start → REST answer (after the outcome)
    answers: Counter = field(default_factory=Counter)
    missing: int = 0
    wall_s: float = 0.0
    # Medians of the legs, from the row's timestamps: request → row made (api), row made → Ctrl-Z (commit,
    # doorbell, dispatcher, claim, AT+CMGS and its prompt), Ctrl-Z → row sent (+CMGS answer), sent → REST answer.
    legs_ms: dict[str, float] = field(default_factory=dict)


def overhead(scale: Scale, run: str) -> Overhead:
    result = Overhead(scale.overhead_messages)
    with Gateway(1, 0.0, wait_timeout_s=30.0) as gw:
        conn = gw.connection()
        try:
            for i in range(WARMUP):
                send_sms(conn, f"w-{run}-{i}", f"warm-up {run} {i}", "081200000000")
            started: dict[str, tuple[float, float]] = {}  # text → (request start, answer)
            t_begin = time.perf_counter()
            for i in range(scale.overhead_messages):
                text = f"overhead {run} {i}"
                t0 = time.time()
                answer = send_sms(conn, f"o-{run}-{i}", text, f"0812{i:08d}")
                t1 = time.time()
                result.round_trip_ms.append(1000 * (t1 - t0))
                started[text] = (t0, t1)
                result.answers[answer] += 1
            result.wall_s = time.perf_counter() - t_begin
        finally:
            conn.close()
        arrived = {p.text: p.time.timestamp() for p in gw.parts() if p.text in started}
        rows = {f"overhead {run} {key.rsplit('-', 1)[1]}": (created, sent) for key, created, sent in gw.query(
            "select message_key, created_at, sent_at from sms_outbox where message_key like ?", f"send-sms:o-{run}-%")}
    result.to_modem_ms = sorted(1000 * (arrived[t] - t0) for t, (t0, _) in started.items() if t in arrived)
    result.round_trip_ms.sort()
    result.missing = len(started) - len(arrived)
    result.legs_ms = legs(started, arrived, rows)
    return result


def legs(started: dict[str, tuple[float, float]], arrived: dict[str, float],
         rows: dict[str, tuple[float, float | None]]) -> dict[str, float]:
    """Median of each leg of a message's way, in ms (the row's created_at and sent_at split it)."""
    out: dict[str, list[float]] = {"request → row": [], "row → Ctrl-Z": [], "Ctrl-Z → sent": [],
                                   "sent → answer": []}
    for text, (t0, t1) in started.items():
        if text in arrived and text in rows and rows[text][1] is not None:
            created, sent = rows[text]
            for leg, s in zip(out, (created - t0, arrived[text] - created, sent - arrived[text], t1 - sent)):
                out[leg].append(1000 * s)
    return {leg: percentile(sorted(xs), 0.5) for leg, xs in out.items()}


# ---------------------------------------------------------------- 2 and 3. utilisation and memory


@dataclass
class Utilisation:
    messages: int
    modems: int
    network_delay_s: float
    queue_s: float = 0.0  # time to queue the burst over REST
    wall_s: float = 0.0  # first request → the simulator recorded the last message
    answers: Counter = field(default_factory=Counter)
    per_modem: Counter = field(default_factory=Counter)
    duplicates: int = 0
    lost: int = 0
    outbox: Counter = field(default_factory=Counter)
    gaps_ms: list[float] = field(default_factory=list)  # a modem idle between one answer and its next Ctrl-Z
    modem_hwm_kib: int = 0
    modem_rss_kib: int = 0
    api_hwm_kib: int = 0
    timed_out: bool = False

    @property
    def ideal_rate(self) -> float:
        return self.modems / self.network_delay_s

    @property
    def rate(self) -> float:
        return self.messages / self.wall_s if self.wall_s else 0.0


def utilisation(scale: Scale, run: str) -> Utilisation:
    result = Utilisation(scale.burst_messages, scale.modems, scale.network_delay_s)
    ideal_s = scale.burst_messages / scale.modems * scale.network_delay_s
    texts = [f"burst {run} {i}" for i in range(scale.burst_messages)]
    with Gateway(scale.modems, scale.network_delay_s, wait_timeout_s=0.0) as gw:
        conn = gw.connection()
        try:
            t_start = time.time()
            for i, text in enumerate(texts):
                result.answers[send_sms(conn, f"b-{run}-{i}", text, f"0813{i:08d}")] += 1
            result.queue_s = time.time() - t_start
        finally:
            conn.close()
        deadline = time.monotonic() + 2 * ideal_s + 60
        while len(gw.parts()) < len(texts):
            if time.monotonic() > deadline or gw.modem_proc.poll() is not None:
                result.timed_out = True
                break
            result.modem_rss_kib = max(result.modem_rss_kib, proc_status(gw.modem_proc.pid, "VmRSS"))
            time.sleep(0.1)  # the simulator's logs, polled: a benchmark, not a test
        parts = gw.parts()
        if gw.modem_proc.poll() is not None:
            raise RuntimeError(f"the modem component exited with {gw.modem_proc.returncode}: {gw.modem_log}")
        result.modem_hwm_kib = proc_status(gw.modem_proc.pid, "VmHWM")
        result.api_hwm_kib = gw.status("VmHWM")
        result.outbox = gw.outbox_states()
    tally(result, parts, texts, t_start)
    return result


def tally(result: Utilisation, parts: list, texts: list[str], t_start: float) -> None:
    """Wall time, duplicates, losses, spread and idle gaps from what the simulator recorded."""
    delay = result.network_delay_s
    if parts:  # a part is recorded, and answered, one network delay after its Ctrl-Z
        result.wall_s = max(p.time.timestamp() for p in parts) + delay - t_start
    seen = Counter(p.text for p in parts)
    result.duplicates = sum(n - 1 for n in seen.values() if n > 1)
    result.lost = sum(1 for t in texts if t not in seen)
    result.per_modem = Counter(f"m{p.modem}" for p in parts)
    by_modem: dict[int, list[float]] = {}
    for p in parts:
        by_modem.setdefault(p.modem, []).append(p.time.timestamp())
    for times in by_modem.values():
        times.sort()
        result.gaps_ms += [1000 * (b - a - delay) for a, b in zip(times, times[1:])]
    result.gaps_ms.sort()


# ---------------------------------------------------------------- report


def _counts(counter: Counter) -> str:
    return ", ".join(f"{k}×{n}" for k, n in counter.most_common())


def overhead_lines(over: Overhead) -> list[str]:
    lines = [f"1. overhead: 1 modem, no network delay, {over.messages} send-sms one after another "
             f"(api.wait_timeout 30: each answer after the outcome), {over.wall_s:.1f} s",
             f"   {'':<32} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7}"]
    for label, xs in (("request → Ctrl-Z at the modem", over.to_modem_ms),
                      ("request → REST answer", over.round_trip_ms)):
        lines.append(f"   {label:<32} {percentile(xs, 0.5):>7.1f} {percentile(xs, 0.9):>7.1f} "
                     f"{percentile(xs, 0.99):>7.1f} {percentile(xs, 1.0):>7.1f}")
    lines.append(f"   legs (medians): {'; '.join(f'{k} {v:.1f} ms' for k, v in over.legs_ms.items())}")
    lines.append(f"   answers: {_counts(over.answers)}")
    return lines


def utilisation_lines(util: Utilisation) -> list[str]:
    gaps = util.gaps_ms
    return [
        f"2. utilisation: {util.modems} modems, {util.network_delay_s:g} s network delay, "
        f"{util.messages} messages queued at once (api.wait_timeout 0)",
        f"   queued over REST in {util.queue_s:.1f} s; answers: {_counts(util.answers)}",
        f"   all recorded by the simulator after {util.wall_s:.1f} s "
        f"(ideal {util.messages / util.ideal_rate:.1f} s){'  TIMED OUT' if util.timed_out else ''}",
        f"   throughput {util.rate:.3f}/s against the ideal {util.ideal_rate:.3f}/s: "
        f"{100 * util.rate / util.ideal_rate:.1f}%",
        f"   per modem: {', '.join(f'{k} {n}' for k, n in sorted(util.per_modem.items()))}; "
        f"outbox: {', '.join(f'{k} {n}' for k, n in util.outbox.most_common())}",
        f"   sent twice: {util.duplicates}; lost: {util.lost}",
        f"   a modem idle between its answer and its next Ctrl-Z: p50 {percentile(gaps, 0.5):.1f} ms, "
        f"p99 {percentile(gaps, 0.99):.1f} ms, max {percentile(gaps, 1.0):.1f} ms",
        "",
        f"3. memory: modem component with {util.modems} modems, peak RSS (VmHWM) {util.modem_hwm_kib / 1024:.1f} MiB "
        f"(largest VmRSS seen {util.modem_rss_kib / 1024:.1f} MiB); api VmHWM {util.api_hwm_kib / 1024:.1f} MiB",
    ]


def goal_lines(over: Overhead, util: Utilisation) -> list[str]:
    p50, p99 = percentile(over.to_modem_ms, 0.5), percentile(over.to_modem_ms, 0.99)
    share = util.rate / util.ideal_rate
    return [
        "goals:",
        f"  overhead p50 <= {GOAL_P50_MS:.0f} ms: {p50:.1f} ms  {'met' if p50 <= GOAL_P50_MS else 'MISSED'}",
        f"  overhead p99 <= {GOAL_P99_MS:.0f} ms: {p99:.1f} ms  {'met' if p99 <= GOAL_P99_MS else 'MISSED'}",
        f"  utilisation >= {100 * GOAL_UTILISATION:.0f}%: {100 * share:.1f}%  "
        f"{'met' if share >= GOAL_UTILISATION else 'MISSED'}",
    ]


def problems(over: Overhead, util: Utilisation) -> list[str]:
    """What makes the run unsound, whatever the timings: anything lost, duplicated or answered wrongly."""
    found = []
    if over.missing or set(over.answers) != {"200/" + codes.SUCCESS}:
        found.append(f"overhead: {over.missing} message(s) never reached the modem; answers {dict(over.answers)}")
    if util.lost or util.duplicates or util.timed_out or set(util.answers) != {"200/" + codes.QUEUED}:
        found.append(f"utilisation: {util.lost} lost, {util.duplicates} sent twice, timed out: {util.timed_out}; "
                     f"answers {dict(util.answers)}")
    return found


def report(over: Overhead, util: Utilisation, info: dict[str, str], quick: bool) -> list[str]:
    return [
        "",
        f"OTP-Pi modem benchmark{' (--quick: scaled down)' if quick else ''}, {info['date']}",
        f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram']} RAM, Python {info['python']}",
        "the api and modem components are their own processes; the simulated modems are ptys served by threads "
        "of the benchmark process, which also runs the REST client",
        "",
        *overhead_lines(over),
        "",
        *utilisation_lines(util),
        "",
        *goal_lines(over, util),
        *(f"error: {problem}" for problem in problems(over, util)),
    ]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    group = p.add_argument_group("modem benchmarks")
    group.add_argument("--quick", action="store_true",
                       help=f"scale the modem benchmarks down for a smoke run ({QUICK.overhead_messages} "
                            f"messages one by one, {QUICK.burst_messages} queued at {QUICK.network_delay_s:g} s "
                            f"network delay)")
    group.add_argument("--only", choices=("rest", "modem", "burst", "feeders", "login"), help="run one part of the benchmark")
    return p


def parse_known_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    return parser().parse_known_args(argv)


def main(options: argparse.Namespace) -> int:
    scale = QUICK if options.quick else FULL
    info = machine()
    run = secrets.token_hex(4)
    over = overhead(scale, run)
    util = utilisation(scale, run)
    print("\n".join(report(over, util, info, options.quick)), flush=True)
    return 1 if problems(over, util) else 0
