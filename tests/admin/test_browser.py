"""The admin web in a real browser against the running stack: Debian's chromium driven by playwright.

The components run as their own processes on a throwaway root with simulated
modems (tests/gateway.py); the admin component serves on a free port of
127.0.0.1. One walk through the product, as its user would take it on the
device's access point, with screenshots of the main pages at desktop and phone
widths in test-artifacts/screenshots/.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests

from ..helpers import ROOT_OF_REPO, env_for, free_port, wait_until

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT_OF_REPO / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

#: Chromium on a machine with no way out: nothing in the background, no first-run work.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]

ADMIN, PASSWORD = "operator", "a long admin passphrase"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                     "(./build.sh test installs it)"),
]


class AdminProcess:
    """The admin component as systemd runs it: ``python -m otppi.admin`` on the root's settings."""

    def __init__(self, root: Path, port: int):
        self.root, self.url = root, f"http://127.0.0.1:{port}"
        self.log = root / "admin.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "AdminProcess":
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "otppi.admin"], env=env_for(self.root),
                                         stdout=log, stderr=subprocess.STDOUT)
        wait_until(self.alive, what=f"admin web on {self.url} ({self.log})")
        return self

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"admin exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
        try:
            requests.get(self.url + "/login", timeout=1, allow_redirects=False)
            return True
        except requests.ConnectionError:
            return False

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(10)


@pytest.fixture
def stack(gateway_factory):
    gw = gateway_factory(count=2)
    port = free_port()
    gw.cli("settings", "set", "admin.bind_address", "127.0.0.1")
    gw.cli("settings", "set", "admin.port", str(port))
    admin = AdminProcess(gw.root, port).start()
    gw.admin = admin
    yield gw
    assert admin.stop() == 0, f"the admin component must stop cleanly: {admin.log.read_text()[-2000:]}"


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="chromium") as profile, sync_playwright() as p:
        # launch_persistent_context: a fresh, empty profile of our own for every run.
        context = p.chromium.launch_persistent_context(profile, executable_path=str(CHROMIUM), headless=True,
                                                       args=CHROMIUM_FLAGS, viewport=DESKTOP)
        context.set_default_timeout(10_000)
        yield context
        context.close()


def shoot(page, name: str) -> None:
    """The page at desktop width, then at phone width (the menu folded away)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(SHOTS / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(SHOTS / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def fill(page, values: dict[str, str]) -> None:
    for name, value in values.items():
        page.fill(f"[name='{name}']", value)


def test_the_admin_web_in_a_browser(stack, browser):
    gw, url = stack, stack.admin.url
    page = browser.new_page()
    errors: list[str] = []  # script errors and CSP refusals; a form answered 400 is not one
    page.on("console", lambda m: errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)

    # First run: any page leads to the "create administrator" page.
    page.goto(url + "/settings/sms")
    assert page.url == url + "/setup"
    shoot(page, "setup")
    fill(page, {"username": ADMIN, "password": "short", "password2": "short"})
    page.click("button[type=submit]")
    assert "at least 8 characters" in page.inner_text("#e-password")
    fill(page, {"username": ADMIN, "password": PASSWORD, "password2": PASSWORD, "phone": "0812 3456 7890",
                "email": "admin@example.com"})
    page.click("button[type=submit]")
    assert "Welcome to OTP-Pi" in page.inner_text(".flash")

    # Log out, find the setup page gone, log in again.
    page.click("form.logout button")
    assert page.url.startswith(url + "/login")
    page.goto(url + "/setup")
    assert page.url.startswith(url + "/login")
    shoot(page, "login")
    fill(page, {"username": ADMIN, "password": "wrong password"})
    page.click("button[type=submit]")
    assert "wrong username or password" in page.inner_text(".error")
    fill(page, {"username": ADMIN, "password": PASSWORD})
    page.click("button[type=submit]")
    assert page.inner_text(".who") == ADMIN

    # A settings page: a mistake is explained beside its field, then a good value is saved and applied.
    page.click("nav.side >> text=API")
    assert page.inner_text("h1") == "API settings"
    page.fill("[name='http_port']", "70000")
    page.click("button.primary")
    assert "port number from 1 to 65535" in page.inner_text(".field.invalid .error")
    page.fill("[name='http_port']", gw.cli("settings", "get", "api.http_port").stdout.strip())
    page.fill("[name='wait_timeout']", "12")
    page.click("button.primary")
    assert "API settings saved" in page.inner_text(".flash")
    assert gw.cli("settings", "get", "api.wait_timeout").stdout.strip() == "12.0"
    shoot(page, "settings-api")

    page.click("nav.side >> text=SMS")
    shoot(page, "settings-sms")
    page.click("nav.side >> text=RabbitMQ")
    page.fill("[name='password']", "broker secret 42")
    page.click("button.primary")
    assert "broker secret 42" not in page.content()
    assert page.get_attribute("[name='password']", "placeholder") == "(set: leave empty to keep)"

    # The phone layout: the menu folds behind a button.
    page.set_viewport_size(PHONE)
    assert not page.is_visible("nav.side")
    page.click("label.menu-button")
    assert page.is_visible("nav.side")
    page.set_viewport_size(DESKTOP)

    assert not errors, errors
    assert not missing, missing
