"""The REST burst benchmark: a thousand clients at once, each waiting for its SMS.

The promise of REST is "the outcome, or 1111 when Wait Timeout runs out", for
every client. This run opens *clients* connections at the same moment (one
request each, as a crowd of app servers would), against four simulated modems
whose network takes 3 s per message, so most requests can only end in 1111
after the wait. Measured from the client's side: connections reset or refused,
requests without an answer, and how late each answer came against the wait;
from the server's: the api's peak memory against its unit's MemoryMax.
"""

from __future__ import annotations

import asyncio
import base64
import json
import resource
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field

from otppi import codes

from .appliance import PASSWORD, USER, memory_max_mib
from .modem import Gateway, percentile
from .run import machine

CLIENTS = 1000
QUICK_CLIENTS = 300
MODEMS = 4
NETWORK_DELAY_S = 3.0
WAIT_TIMEOUT_S = 20.0
#: How late past Wait Timeout an answer may come (the goal).
GRACE_S = 1.0
MEMORY_MAX_MIB = memory_max_mib("otppi-api")


@dataclass
class Burst:
    clients: int
    answers: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    answer_s: list[float] = field(default_factory=list)  # connect → answer, per answered client
    connect_s: list[float] = field(default_factory=list)
    api_hwm_kib: int = 0
    api_threads: int = 0
    outbox: Counter = field(default_factory=Counter)

    @property
    def late(self) -> int:
        return sum(1 for s in self.answer_s if s > WAIT_TIMEOUT_S + GRACE_S)


async def _client(port: int, auth: str, body: bytes, start: asyncio.Event, result: Burst) -> None:
    await start.wait()
    t0 = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        result.errors[f"connect: {type(exc).__name__}"] += 1
        return
    result.connect_s.append(time.monotonic() - t0)
    try:
        writer.write(f"POST /api/sms HTTP/1.1\r\nHost: bench\r\nAuthorization: {auth}\r\nConnection: close\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), WAIT_TIMEOUT_S * 3)
        result.answer_s.append(time.monotonic() - t0)
        head, _, payload = data.partition(b"\r\n\r\n")
        status = head[9:12].decode(errors="replace")
        try:
            result.answers[f"{status}/{json.loads(payload)['response_code']}"] += 1
        except (ValueError, KeyError, TypeError):
            result.errors[f"answer: HTTP {status or 'nothing'}"] += 1
    except (OSError, asyncio.TimeoutError) as exc:
        result.errors[f"request: {type(exc).__name__}"] += 1
    finally:
        writer.close()


async def _crowd(port: int, clients: int, run: str, result: Burst) -> None:
    auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    start = asyncio.Event()
    tasks = [asyncio.create_task(_client(port, auth, json.dumps(
        {"command": "send-sms", "data": {"id": f"burst-{run}-{i}", "receiver": f"0814{i:08d}",
                                         "message": f"burst {run} {i}"}}).encode(), start, result))
        for i in range(clients)]
    await asyncio.sleep(0)
    start.set()
    await asyncio.gather(*tasks)


def burst(clients: int) -> Burst:
    result = Burst(clients)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * clients + 256)), hard))
    with Gateway(MODEMS, NETWORK_DELAY_S, wait_timeout_s=WAIT_TIMEOUT_S) as gw:
        warm = gw.connection()  # one request first: the credential is verified (argon2) once
        try:
            warm.request(json.dumps({"command": "echo"}).encode())
        finally:
            warm.close()
        asyncio.run(_crowd(gw.port, clients, secrets.token_hex(4), result))
        result.api_hwm_kib = gw.status("VmHWM")
        result.api_threads = gw.status("Threads")
        result.outbox = gw.outbox_states()
    return result


def lines(result: Burst, info: dict[str, str], quick: bool) -> list[str]:
    answered = sorted(result.answer_s)
    hwm_mib = result.api_hwm_kib / 1024
    goals_met = not result.errors and result.late == 0 and hwm_mib <= MEMORY_MAX_MIB \
        and sum(result.answers.values()) == result.clients
    return [
        "",
        f"OTP-Pi REST burst benchmark{' (--quick: scaled down)' if quick else ''}, {info['date']}",
        f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram']} RAM, Python {info['python']}",
        f"{result.clients} clients connect at once, one send-sms each; {MODEMS} simulated modems at "
        f"{NETWORK_DELAY_S:g} s per message; api.wait_timeout {WAIT_TIMEOUT_S:g} s",
        f"   answers: {', '.join(f'{k}×{n}' for k, n in result.answers.most_common())}",
        f"   errors (resets, refusals, no answer): {sum(result.errors.values())}"
        + (f" ({', '.join(f'{k}×{n}' for k, n in result.errors.most_common())})" if result.errors else ""),
        f"   connect → answer: p50 {percentile(answered, 0.5):.2f} s, p99 {percentile(answered, 0.99):.2f} s, "
        f"max {percentile(answered, 1.0):.2f} s; later than wait + {GRACE_S:g} s: {result.late}",
        f"   connect time: max {percentile(sorted(result.connect_s), 1.0) * 1000:.0f} ms",
        f"   outbox after the burst: {', '.join(f'{k} {n}' for k, n in result.outbox.most_common())}",
        f"   api peak RSS (VmHWM) {hwm_mib:.1f} MiB of MemoryMax {MEMORY_MAX_MIB} MiB; "
        f"{result.api_threads} threads at the end",
        f"goal: every client answered (000 or 1111) within wait + {GRACE_S:g} s, zero resets, within MemoryMax: "
        f"{'met' if goals_met else 'MISSED'}",
    ]


def main(quick: bool) -> int:
    result = burst(QUICK_CLIENTS if quick else CLIENTS)
    print("\n".join(lines(result, machine(), quick)), flush=True)
    unsound = result.errors or set(result.answers) - {"200/" + codes.SUCCESS, "200/" + codes.QUEUED}
    return 1 if unsound else 0
