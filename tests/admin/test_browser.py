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

from otppi.msisdn import mask

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
        """SIGTERM; an open monitor stream must not hold the stop up (systemd restarts wait for it)."""
        self.proc.terminate()
        return self.proc.wait(5)


@pytest.fixture
def stack(gateway_factory):
    """Simulated modems, the modem component (no modem configured yet) and the admin component."""
    gw = gateway_factory(count=1)
    port = free_port()
    gw.cli("settings", "set", "admin.bind_address", "127.0.0.1")
    gw.cli("settings", "set", "admin.port", str(port))
    gw.start_modem()
    admin = AdminProcess(gw.root, port).start()
    yield gw, admin.url
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
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name} is {width} px wide on a {PHONE['width']} px phone: it scrolls sideways"
    page.set_viewport_size(DESKTOP)


def fill(page, values: dict[str, str]) -> None:
    for name, value in values.items():
        page.fill(f"[name='{name}']", value)


def first_run_and_login(page, url: str, gw) -> None:
    """Any page leads to "create administrator"; once made, that page is gone and login works."""
    page.goto(url + "/settings/sms")
    assert page.url == url + "/setup"
    shoot(page, "setup")
    code = gw.cli("setup-code").stdout.strip()
    fill(page, {"setup_code": code, "username": ADMIN, "password": "short", "password2": "short"})
    page.click("button[type=submit]")
    assert "at least 8 characters" in page.inner_text("#e-password")
    fill(page, {"setup_code": code.lower().replace("-", " "), "username": ADMIN, "password": PASSWORD,
                "password2": PASSWORD, "phone": "0812 3456 7890", "email": "admin@example.com"})
    page.click("button[type=submit]")
    assert "Welcome to OTP-Pi" in page.inner_text(".flash")

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


def settings_pages(page, gw) -> None:
    """A mistake is explained beside its field; a good value is saved; a secret is never shown back."""
    page.click("nav.side a[href='/settings/api']")
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

    page.click("nav.side a[href='/settings/sms']")
    shoot(page, "settings-sms")
    page.click("nav.side a[href='/settings/feeder_amqp']")
    page.fill("[name='password']", "broker secret 42")
    page.click("button.primary")
    assert "broker secret 42" not in page.content()
    assert page.get_attribute("[name='password']", "placeholder") == "(set: leave empty to keep)"

    page.set_viewport_size(PHONE)  # the menu folds behind a button
    assert not page.is_visible("nav.side")
    page.click("label.menu-button")
    assert page.is_visible("nav.side")
    page.set_viewport_size(DESKTOP)


def add_modem(page, url: str, gw) -> None:
    """Add the first simulated modem on the Modems page; the running modem component opens it."""
    page.goto(url + "/lists/modems")
    assert "No modems yet" in page.inner_text("main")
    fill(page, {"name": "modem0", "port": gw.port(0), "prefixes": ""})
    page.click("main button:text-is('Add modem')")
    assert "Modem modem0 added" in page.inner_text(".flash")
    gw.wait_states({"modem0": "ready"})
    page.goto(url + "/lists/modems")
    row = page.locator("table tr", has_text="modem0")
    assert "ready" in row.inner_text()
    shoot(page, "modems")
    page.click("table >> text=modem0")
    assert page.inner_text("h1") == "Modem modem0"
    shoot(page, "modem-edit")


def manual_sms_on_the_monitor(page, monitor, url: str, gw) -> None:
    """A manual SMS leaves through the modem and its line appears on the open monitor, receiver masked."""
    monitor.goto(url + "/monitor")
    monitor.locator("#live-state", has_text="live").wait_for()
    assert monitor.locator("#events tbody tr.empty").count() == 1, "nothing sent yet"
    assert monitor.locator("#modems tr", has_text="modem0").locator(".badge", has_text="ready").count() == 1

    page.goto(url + "/tools/sms")
    page.fill("[name='receiver']", "0812 3456 7890")
    page.select_option("[name='modem']", "modem0")
    page.fill("[name='text']", "Hello from the admin web")
    shoot(page, "manual-sms")
    page.click("button.primary")
    assert page.inner_text(".flash") == "Sent to 6281234567890 via modem0."
    assert [(m.number, m.text) for m in gw.sent(0)] == [("6281234567890", "Hello from the admin web")]

    line = monitor.locator("#events tbody tr", has_text=mask("6281234567890"))
    line.wait_for()  # pushed over the open event stream: the monitor page was not reloaded
    text = line.inner_text()
    assert "modem0" in text and "sent" in text and "admin" in text
    assert "6281234567890" not in monitor.inner_text("#events")
    shoot(monitor, "monitor")


def inbox(page, url: str, gw) -> None:
    """An SMS the simulated network delivers shows in the inbox and reads in full."""
    gw.sim[0].receive_sms("+6281299990000", "Paket Anda tiba hari ini")
    wait_until(lambda: gw.rows("select count(*) from inbox_message")[0][0] == 1, what="the SMS in the inbox")
    page.goto(url + "/inbox")
    row = page.locator("#inbox tbody tr", has_text="Paket Anda tiba")
    assert "6281299990000" in row.inner_text() and "new" in row.inner_text()
    shoot(page, "inbox")
    row.locator("a").click()
    assert "Paket Anda tiba hari ini" in page.inner_text("main")
    shoot(page, "inbox-message")


def ussd(page, url: str) -> None:
    page.goto(url + "/tools/ussd")
    page.select_option("[name='modem']", "modem0")
    page.fill("[name='code']", "*888#")
    page.click("button[value=run]")
    assert page.inner_text("#ussd-reply") == "Sisa pulsa Anda Rp 25.000. Aktif s/d 31-12-2026."
    shoot(page, "ussd")


def block_a_number(page, url: str, gw) -> None:
    """A number blocked on the Blocking list is refused by the REST API (1205)."""
    api = gw.start_api()
    page.goto(url + "/lists/blocking")
    page.fill("[name='number']", "0812 7777 8888")
    page.click("main button:text-is('Block')")
    assert page.inner_text(".flash") == "6281277778888 blocked."
    assert "6281277778888" in page.inner_text("table")
    shoot(page, "blocking")
    answer = api.post("/api/sms", {"command": "send-sms", "data": {"receiver": "+62 812 7777 8888",
                                                                   "message": "should not go"}}).json()
    assert answer["response_code"] == "1205", answer
    assert [m.number for m in gw.sent(0)] == ["6281234567890"]


def other_pages(page, url: str) -> None:
    for name, path in (("api-users", "/lists/api-users"), ("administrators", "/lists/admins"),
                       ("device-time", "/system/time"), ("reboot", "/system/reboot")):
        page.goto(url + path)
        assert page.url == url + path, f"{path} went to {page.url}"
        shoot(page, name)


def test_the_admin_web_in_a_browser(stack, browser):
    gw, url = stack
    page = browser.new_page()
    errors: list[str] = []  # script errors and CSP refusals; a form answered 400 is not one
    missing: list[str] = []

    def watch(p) -> None:
        p.on("console", lambda m: errors.append(m.text)
             if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
        p.on("pageerror", lambda e: errors.append(str(e)))
        p.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)

    watch(page)
    first_run_and_login(page, url, gw)
    settings_pages(page, gw)
    add_modem(page, url, gw)
    monitor = browser.new_page()
    watch(monitor)
    manual_sms_on_the_monitor(page, monitor, url, gw)
    inbox(page, url, gw)
    ussd(page, url)
    block_a_number(page, url, gw)
    monitor.close()  # frees the server thread its event stream holds
    other_pages(page, url)
    assert not errors, errors
    assert not missing, missing
