"""The device pages: its clock against the browser's, and restarting the service or rebooting the device.

The clock is set from the browser's (the spec's Real Time Clock section: a device whose RTC battery ran
out takes the time of the browser that visits it) through systemd-timedated (``timedatectl set-time``),
which the image's polkit rule lets the admin web's own user (``otppi-admin``) do; timedated also writes
the hardware clock (the DS3231 behind the kernel's RTC driver). Restart and reboot go through systemd, always after a
confirmation page. Every command runs through a runner the app config may replace (``OTPPI_RUN``: a
callable taking the argument list and returning ``(exit status, output)``).
"""

from __future__ import annotations

import subprocess
import time
from typing import Callable

from flask import Blueprint, abort, current_app, render_template, request, url_for

from .forms import Form
from .toolkit import device_zone, local_time

bp = Blueprint("system", __name__, url_prefix="/system")

MENU = ("Device", [
    ("Device time", "system.clock", {}),
    ("Restart service", "system.confirm", {"what": "restart"}),
    ("Reboot device", "system.confirm", {"what": "reboot"}),
])

RUN_TIMEOUT = 30.0

Runner = Callable[[list[str]], tuple[int, str]]

#: --no-block: systemctl only queues the job. Restarting otppi.target stops this very process, and a
#: systemctl waiting for that job would be stopped with it before the page could answer.
ACTIONS = {
    "restart": {"argv": ["systemctl", "--no-block", "restart", "otppi.target"], "title": "Restart service",
                "question": "Restart every OTP-Pi service now?",
                "detail": "Queued messages stay queued and are sent once the modems are open again. "
                          "This page is away for a few seconds.",
                "button": "Restart the service", "done": "The service is restarting."},
    "reboot": {"argv": ["systemctl", "--no-block", "reboot"], "title": "Reboot device",
               "question": "Reboot the device now?",
               "detail": "Nothing is sent or received until it is back, usually within two minutes.",
               "button": "Reboot the device", "done": "The device is rebooting."},
}


def run_command(argv: list[str], timeout: float = RUN_TIMEOUT) -> tuple[int, str]:
    """Run *argv*; its exit status and what it printed (a missing program is status 127, as in a shell)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        return 127, f"{argv[0]} is not installed: this system is not run by systemd"
    except subprocess.TimeoutExpired:
        return 124, f"{argv[0]} did not finish within {timeout:g} s"
    except OSError as exc:
        return 126, f"{argv[0]} could not be run: {exc}"
    return done.returncode, (done.stderr.strip() or done.stdout.strip())


@bp.route("/<what>", methods=["GET", "POST"])
def confirm(what: str):
    action = ACTIONS.get(what)
    if action is None:
        abort(404)
    if request.method == "GET":
        return render_template("tools/confirm.html", what=what, action=action, error="", done=False)
    error = _run(action["argv"])
    if error:
        return render_template("tools/confirm.html", what=what, action=action, error=error, done=False), 502
    return render_template("tools/confirm.html", what=what, action=action, error="", done=True)


def _run(argv: list[str]) -> str:
    """Run a system command through the configured runner; '' on success, else why it failed."""
    runner: Runner = current_app.config.get("OTPPI_RUN") or run_command
    command = " ".join(a for a in argv if a != "--no-block")
    try:
        status, output = runner(list(argv))
    except Exception as exc:  # shown, never a server error page: the administrator must see why
        status, output = -1, f"{type(exc).__name__}: {exc}"
    if status != 0:
        return f"{command} failed (exit status {status}): {output or 'no reason given'}"
    return ""


# ---------------------------------------------------------------- device time


def _browser_ms(form: Form) -> int | None:
    text = form.get("browser_ms").strip()
    if not text.isdigit() or not 946_684_800_000 <= int(text) < 32_503_680_000_000:  # 2000 … 3000
        form.error("browser_ms", "your browser sent no clock: this needs JavaScript on")
        return None
    return int(text)


def _difference(seconds: float) -> str:
    size = abs(seconds)
    if size < 1:
        return "The device clock and your browser's clock agree (within a second)."
    if size < 120:
        amount = f"{size:.0f} s"
    elif size < 2 * 3600:
        amount = f"{size / 60:.0f} min"
    elif size < 2 * 86400:
        amount = f"{size / 3600:.1f} h"
    else:
        amount = f"{size / 86400:.1f} days"
    return f"The device clock is {amount} {'behind' if seconds > 0 else 'ahead of'} your browser's clock."


@bp.route("/time", endpoint="clock", methods=["GET", "POST"])
def clock():
    form = Form(request.form)
    zone = device_zone()
    now = time.time()
    compared = None
    status = 200
    if request.method == "POST":
        browser_ms = _browser_ms(form)
        if browser_ms is None:
            status = 400
        else:
            browser = browser_ms / 1000
            utc = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(browser))
            error = _run(["timedatectl", "set-time", f"{utc} UTC"])
            compared = {"device": local_time(now, zone), "browser": local_time(browser, zone),
                        "difference": _difference(browser - now), "error": error}
            status = 502 if error else 200
            now = time.time() if not error else now
    return render_template("tools/time.html", form=form, zone=zone.key, device=local_time(now, zone),
                           utc=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)), now_ms=int(now * 1000),
                           compared=compared, settings_url=url_for("settings.page", section="time")), status
