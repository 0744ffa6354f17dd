"""The admin web's login under a burst of wrong passwords: memory of the process, and what a wrong name costs.

``python -m bench.admin_login`` provisions a throwaway root with the real CLI, starts ``python -m
otppi.admin`` on loopback, and measures:

- the admin process's resident memory (VmRSS, and its high-water mark VmHWM) before and after twelve
  wrong logins at once, each from its own loopback address (127.0.0.x), so the throttle lets every one
  through to argon2: the worst case for memory;
- the same burst from one address (the throttle counts each attempt before it is checked);
- the median time of a wrong login for an unknown name against one for the real name (each from a fresh
  address, and the name's failures cleared by a right password after each, so no throttle delay is in
  the figures).

Nothing here reaches past loopback; the root is deleted and the process stopped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from .appliance import at_once, free_port

ADMIN, PASSWORD = "bench-admin", "a long bench passphrase"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def _cli(root: Path, *args: str, stdin: str | None = None) -> None:
    subprocess.run([sys.executable, "-m", "otppi.cli", *args], env={"OTPPI_ROOT": str(root), "PATH": "/usr/bin:/bin"},
                   input=stdin, text=True, check=True, capture_output=True)


def _memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of *pid* in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


class Browser:
    """One client at one source address: a session cookie, the login form's token, then one POST."""

    def __init__(self, port: int, source: str):
        self.port, self.source = port, source
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
        self.conn.request("GET", "/login")
        response = self.conn.getresponse()
        page = response.read().decode()
        self.cookie = response.getheader("Set-Cookie", "").split(";")[0]
        self.token = _TOKEN.search(page).group(1)

    def login(self, username: str, password: str) -> tuple[int, float]:
        body = urlencode({"csrf_token": self.token, "username": username, "password": password})
        started = time.perf_counter()
        self.conn.request("POST", "/login", body=body, headers={
            "Cookie": self.cookie, "Content-Type": "application/x-www-form-urlencoded"})
        response = self.conn.getresponse()
        response.read()
        took = time.perf_counter() - started
        self.conn.close()
        return response.status, took


def _burst(port: int, sources: list[str]) -> list[int]:
    browsers = [Browser(port, source) for source in sources]  # each has its form before the burst starts
    return [status for status, _ in at_once([lambda b=b: b.login(ADMIN, "a wrong guess") for b in browsers])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.admin_login", description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30, help="wrong logins per kind for the timing (default 30)")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="otppi-adm-"))
    port = free_port()
    proc = None
    try:
        _cli(root, "migrate")
        _cli(root, "admin", "add", ADMIN, "--password-stdin", stdin=PASSWORD + "\n")
        _cli(root, "settings", "set", "admin.bind_address", "127.0.0.1")
        _cli(root, "settings", "set", "admin.port", str(port))
        log = (root / "admin.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "otppi.admin"], env={"OTPPI_ROOT": str(root),
                                "PATH": "/usr/bin:/bin"}, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                Browser(port, "127.0.0.1")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"the admin web did not start: {(root / 'admin.log').read_text()[-2000:]}")
                time.sleep(0.2)
        Browser(port, "127.0.0.250").login(ADMIN, PASSWORD)  # warm: argon2 and the templates loaded once
        start = _memory(proc.pid)
        timings: dict[str, list[float]] = {"unknown": [], "known": []}
        for i in range(args.samples):
            for kind, name in (("unknown", f"nobody{i}"), ("known", ADMIN)):
                source = f"127.{1 if kind == 'unknown' else 2}.{i // 250}.{i % 250 + 1}"
                status, took = Browser(port, source).login(name, "a wrong guess")
                assert status == 200, status
                timings[kind].append(took * 1000)
                if kind == "known":  # a right password clears the name's failures (untimed)
                    Browser(port, f"127.3.{i // 250}.{i % 250 + 1}").login(ADMIN, PASSWORD)
        print(f"wrong login, median of {args.samples}: unknown name {statistics.median(timings['unknown']):.1f} ms, "
              f"real name {statistics.median(timings['known']):.1f} ms")
        before = _memory(proc.pid)
        statuses = _burst(port, [f"127.0.0.{i}" for i in range(10, 22)])
        after = _memory(proc.pid)
        print(f"VmRSS after one login {start['VmRSS'] / 1024:.0f} MiB, after the timed logins (one at a time) "
              f"{before['VmRSS'] / 1024:.0f} MiB")
        print(f"12 wrong logins at once from 12 addresses: answers {sorted(statuses)}; "
              f"VmRSS {before['VmRSS'] / 1024:.0f} -> {after['VmRSS'] / 1024:.0f} MiB, "
              f"high-water mark {after['VmHWM'] / 1024:.0f} MiB")
        statuses = _burst(port, ["127.0.0.30"] * 12)
        again = _memory(proc.pid)
        print(f"12 wrong logins at once from one address: {statuses.count(429)} held back (429), "
              f"{statuses.count(200)} checked; VmRSS {again['VmRSS'] / 1024:.0f} MiB, "
              f"high-water mark {again['VmHWM'] / 1024:.0f} MiB")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
