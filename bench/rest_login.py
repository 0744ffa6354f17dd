"""REST Basic auth under wrong passwords: what a wrong name costs, and a flood of distinct credentials.

``python -m bench.rest_login`` (or ``python -m bench --only login``, with the admin web's login
benchmark) provisions a throwaway root with the real CLI, starts ``python -m otppi.api`` on loopback,
and measures:

- the median time of a wrong password for an unknown user name against one for the real user (each on a
  new connection, so nothing is remembered): the two must be alike, or the timing tells which names
  exist;
- a flood of distinct wrong credentials at once (each a new connection): how many are answered 401, how
  many 503 (more than the api lets wait for argon2), how many get no answer, and the api's peak memory
  (VmHWM) against its unit's MemoryMax.

Nothing here reaches past loopback; the root is deleted and the process stopped at the end.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import statistics
import sys
import time
from collections import Counter

from .appliance import PASSWORD, USER, Appliance, at_once, memory_max_mib

MEMORY_MAX_MIB = memory_max_mib("otppi-api")
ECHO = b'{"command": "echo", "data": {}}'


def _post(port: int, username: str, password: str) -> tuple[int | str, float]:
    """One echo request on a new connection: its HTTP status (or the error's name) and how long it took."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.perf_counter()
    try:
        conn.request("POST", "/api/otp", body=ECHO, headers={"Authorization": f"Basic {auth}",
                                                                "Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    except OSError as exc:
        return type(exc).__name__, time.perf_counter() - started
    finally:
        conn.close()


def _flood(port: int, count: int) -> Counter:
    return Counter(status for status, _ in at_once([lambda i=i: _post(port, f"guess{i}", f"wrong password {i}")
                                                    for i in range(count)]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rest_login", description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30, help="wrong passwords per kind for the timing (default 30)")
    parser.add_argument("--flood", type=int, default=200, help="distinct wrong credentials at once (default 200)")
    args = parser.parse_args(argv)
    with Appliance() as app:
        status, _ = _post(app.port, USER, PASSWORD)  # warm: argon2 loaded once
        assert status == 200, status
        timings: dict[str, list[float]] = {"unknown": [], "known": []}
        for i in range(args.samples):
            for kind, name in (("unknown", f"nobody{i}"), ("known", USER)):
                status, took = _post(app.port, name, f"a wrong guess {i}")
                assert status == 401, status
                timings[kind].append(took * 1000)
        unknown, known = statistics.median(timings["unknown"]), statistics.median(timings["known"])
        print(f"REST wrong password, median of {args.samples} (new connection each): unknown name {unknown:.1f} ms, "
              f"real name {known:.1f} ms")
        before = app.status("VmRSS")
        answers = _flood(app.port, args.flood)
        print(f"{args.flood} distinct wrong credentials at once: answers "
              f"{', '.join(f'{k}×{v}' for k, v in sorted(answers.items(), key=str))}; "
              f"api VmRSS {before / 1024:.0f} -> {app.status('VmRSS') / 1024:.0f} MiB, "
              f"peak (VmHWM) {app.status('VmHWM') / 1024:.0f} MiB of MemoryMax {MEMORY_MAX_MIB} MiB; "
              f"{app.status('Threads')} threads")
        status, _ = _post(app.port, USER, PASSWORD)
        print(f"the real user right after the flood: {status}")
        unanswered = sum(v for k, v in answers.items() if k not in (401, 503))
        return 1 if unanswered or status != 200 else 0


if __name__ == "__main__":
    sys.exit(main())
