"""The REST benchmark end to end: provision, load, measure, print the table (see ``bench/__init__.py``)."""

from __future__ import annotations

import argparse
import base64
import math
import multiprocessing
import os
import platform
import secrets
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import load
from .appliance import PASSWORD, USER, Appliance
from .workload import create_requests, encode, read_codes, validate_requests

#: The project's goals on a 2-core machine.
GOAL_RATE = {"validate-otp": 500.0, "create-otp": 300.0}
GOAL_P99_MS = 50.0
#: The open-loop phase is cut to this many seconds of load whatever the request count.
OPEN_LOOP_MAX_S = 30.0
EXPECTED = {"create-otp": "200/1111", "validate-otp": "200/000", "echo": "200/000"}


@dataclass
class Row:
    command: str
    load: str
    clients: int
    result: load.Result
    server_cpu_s: float

    @property
    def rate(self) -> float:
        return len(self.result.latencies_s) / self.result.wall_s if self.result.wall_s else 0.0

    def percentile_ms(self, q: float) -> float:
        xs = self.result.latencies_s
        return 1000 * xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))] if xs else float("nan")

    @property
    def unexpected(self) -> int:
        good = self.result.answers.get(EXPECTED[self.command], 0)
        return self.result.sent - good


def machine() -> dict[str, str]:
    info = {"nproc": str(len(os.sched_getaffinity(0))), "cpu": platform.processor() or platform.machine(),
            "ram": "?", "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() in ("model name", "Model"):  # x86 and most ARM kernels; "Model" on a Pi
                info["cpu"] = value.strip()
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["ram"] = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return info


class Bench:
    """The phases, each one load run in the client process while the api process is watched."""

    def __init__(self, app: Appliance, clients: ProcessPoolExecutor, args: argparse.Namespace):
        self.app, self.pool, self.args = app, clients, args
        auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode("ascii")
        self.target = load.Target("127.0.0.1", app.port, "/api/otp", f"Basic {auth}")

    def _measure(self, command: str, label: str, fn, *fn_args) -> Row:
        cpu0 = self.app.cpu_seconds()
        result = self.pool.submit(fn, *fn_args).result()
        return Row(command, label, self.args.clients, result, self.app.cpu_seconds() - cpu0)

    def closed(self, command: str, bodies: list[bytes]) -> Row:
        return self._measure(command, "full", load.closed_loop, self.target, bodies, self.args.clients,
                             self.args.budget)

    def open(self, command: str, bodies: list[bytes], rate: float) -> Row:
        rate = max(rate, 1.0)
        count = max(1, min(len(bodies), int(rate * OPEN_LOOP_MAX_S)))
        return self._measure(command, f"half @ {rate:.0f}/s", load.open_loop, self.target, bodies[:count], rate,
                             self.args.clients, self.args.budget)

    def run(self) -> list[Row]:
        a, run_id = self.args, secrets.token_hex(4)
        self.closed("echo", [encode({"command": "echo", "data": {"n": i}}) for i in range(a.warmup)])
        full = create_requests(run_id, 0, a.requests)
        half = create_requests(run_id, a.requests, a.half_requests)
        rows = [self.closed("create-otp", [encode(r) for r in full])]
        rows.append(self.open("create-otp", [encode(r) for r in half], rows[-1].rate / 2))
        codes = read_codes(self.app.root)
        rows.append(self.closed("validate-otp", [encode(r) for r in validate_requests(full, codes)]))
        rows.append(self.open("validate-otp", [encode(r) for r in validate_requests(half, codes)], rows[-1].rate / 2))
        return rows


def _row_line(r: Row) -> str:
    answers = ", ".join(f"{k}×{n}" for k, n in r.result.answers.most_common())
    if r.result.errors:
        answers += ", " + ", ".join(f"{k}×{n}" for k, n in r.result.errors.items())
    wall = r.result.wall_s or 1.0
    return (f"{r.command:<13} {r.load:<13} {r.result.sent:>8} {r.rate:>7.0f} {r.percentile_ms(0.5):>7.1f} "
            f"{r.percentile_ms(0.99):>7.1f} {r.percentile_ms(1.0):>7.1f} {r.server_cpu_s / wall:>10.2f} "
            f"{r.result.client_cpu_s / wall:>10.2f}  {answers}")


def _goal_line(r: Row) -> str:
    if r.load == "full":
        goal = GOAL_RATE[r.command]
        verdict = "met" if r.rate >= goal else "MISSED"
        return f"  {r.command} >= {goal:.0f}/s at full load: {r.rate:.0f}/s  {verdict}"
    p99 = r.percentile_ms(0.99)
    verdict = "met" if p99 < GOAL_P99_MS else "MISSED"
    return f"  {r.command} p99 < {GOAL_P99_MS:.0f} ms at half load: {p99:.1f} ms  {verdict}"


def table(rows: list[Row], info: dict[str, str], rss_kib: tuple[int, int], clients: int) -> str:
    lines = [
        f"OTP-Pi REST benchmark, {info['date']}",
        f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram']} RAM, Python {info['python']}; "
        f"load average before the run {info['load']} (other work on the machine skews the figures)",
        f"client and server share these {info['nproc']} CPUs: the load generator is its own process "
        f"({clients} keep-alive connections on threads), the api is `python -m otppi.api` (cheroot, "
        f"loopback HTTP); CPU columns are seconds of CPU per second of wall time (1.00 = one core).",
        "",
        f"{'command':<13} {'load':<13} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'server CPU':>10} {'client CPU':>10}  answers",
    ]
    lines += [_row_line(r) for r in rows]
    lines += [f"note: {r.command} ({r.load}): the client sent up to {1000 * r.result.late_s:.1f} ms late "
              "(counted in the latencies, which run from when each request was due)"
              for r in rows if r.load != "full" and r.result.late_s > 0.005]
    peak, end = (kib / 1024 for kib in rss_kib)
    lines += ["", f"api peak RSS (VmHWM): {peak:.1f} MiB; RSS at the end (VmRSS): {end:.1f} MiB",
              "", "goals (2-core machine):"]
    lines += [_goal_line(r) for r in rows]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--clients", type=int, default=16, help="concurrent keep-alive connections (default 16)")
    parser.add_argument("--requests", type=int, default=3000, help="requests per full-load run (default 3000)")
    parser.add_argument("--half-requests", type=int, default=1500,
                        help=f"requests per half-load run, cut to {OPEN_LOOP_MAX_S:.0f} s of load (default 1500)")
    parser.add_argument("--warmup", type=int, default=300, help="echo requests before measuring (default 300)")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds a run may take at most (default 120)")
    args = parser.parse_args(argv)
    if min(args.clients, args.requests, args.half_requests) < 1 or args.warmup < 0:
        parser.error("counts must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    # spawn: the client process starts clean rather than as a copy of this one.
    with Appliance() as app, ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        rows = Bench(app, pool, args).run()
        rss = app.status("VmHWM"), app.status("VmRSS")
    print(table(rows, info, rss, args.clients))
    broken = [r for r in rows if r.unexpected]
    for r in broken:
        print(f"error: {r.command} ({r.load}): {r.unexpected} of {r.result.sent} requests did not answer "
              f"{EXPECTED[r.command]}")
    return 1 if broken else 0
