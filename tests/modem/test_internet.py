"""Mobile internet: the pppd peer and chat script (golden files, hostile input, the real chat and pppd
against simulated modems), and a link brought up and down through the modem component's control socket.

Regenerate the golden files after an intended change with ``OTPPI_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tty
from dataclasses import replace
from pathlib import Path

import pytest

from otppi import codes
from otppi.modem.internet import DialSettings, Internet, InternetError, render_chat, render_peer
from otppi.modem.simulator import PROFILES
from otppi.paths import Paths
from otppi.store.models import Modem
from otppi.store.modems import APN_PRESETS

from ..helpers import wait_until

GOLDEN = Path(__file__).parent / "golden"
CHAT = "/usr/sbin/chat"
#: On the device the files live under the real root; the golden files show those paths.
DEVICE = Internet(Paths(Path("/")))

#: The spec's "APN Settings for Indonesian Telco" table, copied by hand: (APN, username, password, dial).
SPEC_TABLE = {
    "Telkomsel": ("internet", "", "", "*99#"),
    "XL": ("internet", "", "", "*99#"),
    "Three": ("3data", "3data", "3data", "*99#"),
    "Smartfren": ("smart", "smart", "smart", "#777"),
    "Indosat Ooredoo": ("indosatgprs", "", "", "*99#"),
    "Axis": ("axis", "axis", "123456", "*99#"),
}

#: A SIM800 on its stable by-id path, with the init strings dial-up guides give for it.
TYPICAL = DialSettings(
    name="modem1", port="/dev/serial/by-id/usb-SimTech__Incorporated_SimTech__Incorporated_0123456789ABCDEF-if00-port0",
    baud_rate=115200, apn="internet", username="", password="", dial_number="*99#", dial_command="ATD",
    init=("ATZ", "ATQ0 V1 E1 S0=0 &C1 &D2 +FCLASS=0"),
)


def slug(operator: str) -> str:
    return operator.lower().replace(" ", "-")


def preset(operator: str, **changes) -> DialSettings:
    apn, username, password, dial = APN_PRESETS[operator]
    base = DialSettings(name=f"modem-{slug(operator)}", port="/dev/ttyUSB2", baud_rate=115200, apn=apn,
                        username=username, password=password, dial_number=dial, dial_command="ATD", init=())
    return replace(base, **changes)


CASES = {"typical": TYPICAL, **{f"preset-{slug(op)}": preset(op) for op in SPEC_TABLE}}


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("OTPPI_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden file {path}: run with OTPPI_UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text(), f"{name} differs from its golden file"


# ---------------------------------------------------------------- pure rendering


def test_the_presets_are_the_spec_table() -> None:
    assert APN_PRESETS == SPEC_TABLE


@pytest.mark.parametrize("case", sorted(CASES))
def test_chat_script_golden(case: str) -> None:
    check_golden(f"{case}.chat", render_chat(CASES[case]))


@pytest.mark.parametrize("case", sorted(CASES))
def test_peer_file_golden(case: str) -> None:
    settings = CASES[case]
    _, chat = DEVICE.files(settings.name)
    check_golden(f"{case}.peer", render_peer(settings, chat))


def test_settings_from_a_modem_row_fill_the_defaults_and_skip_empty_init_strings() -> None:
    row = Modem(name="m", port="/dev/ttyUSB0", baud_rate=9600, apn="3data", apn_username="3data",
                apn_password="3data", dial_number="", dial_command="", init_dial_1="ATZ", init_dial_2="",
                init_dial_3="AT+CFUN=1", init_dial_4="", init_dial_5="")
    settings = DialSettings.from_row(row)
    assert (settings.dial_number, settings.dial_command) == ("*99#", "ATD")
    assert settings.init == ("ATZ", "AT+CFUN=1")
    assert (settings.port, settings.baud_rate) == ("/dev/ttyUSB0", 9600)


def test_legal_but_awkward_credentials_are_kept_as_typed() -> None:
    settings = replace(TYPICAL, username="user name", password="p4ss'#w rd")
    peer = render_peer(settings, Path("/etc/chatscripts/otppi-modem1"))
    assert 'user "user name"\n' in peer
    assert "password \"p4ss'#w rd\"\n" in peer


HOSTILE = ["\n", "\r", "\x00", "\x1a", "\\", "é"]


def hostile_cases() -> list[tuple[str, dict]]:
    cases: list[tuple[str, dict]] = []
    for bad in HOSTILE:
        cases += [
            (f"apn {bad!r}", {"apn": f"inter{bad}net"}),
            (f"username {bad!r}", {"username": f"us{bad}er"}),
            (f"password {bad!r}", {"password": f"pa{bad}ss"}),
            (f"init string {bad!r}", {"init": ("ATZ", f"AT+CFUN=1{bad}")}),
            (f"dial command {bad!r}", {"dial_command": f"ATD{bad}"}),
        ]
    cases += [
        ("apn with a single quote", {"apn": "inter'net"}),
        ("apn with a double quote", {"apn": 'inter"net'}),
        ("apn with a space", {"apn": "inter net"}),
        ("empty apn", {"apn": ""}),
        # The chat script quotes sends with ' and pppd quotes words with ": each refuses its own quote.
        ("init string with a single quote", {"init": ("AT+CGDCONT=1,'IP'",)}),
        ("dial command with a single quote", {"dial_command": "ATD'"}),
        ("username with a double quote", {"username": 'us"er'}),
        ("password with a double quote", {"password": 'pa"ss'}),
        ("init string that is not an AT command", {"init": ("RM -RF",)}),
        ("dial command that is not an AT command", {"dial_command": "CONNECT"}),
        ("dial number with a letter", {"dial_number": "*99#a"}),
        ("dial number with a space", {"dial_number": "*99 #"}),
        ("dial number with a semicolon (a voice call)", {"dial_number": "*99#;"}),
        ("dial number with a plus", {"dial_number": "+6281"}),
        ("empty dial number", {"dial_number": ""}),
        ("long apn", {"apn": "a" * 101}),
        ("long username", {"username": "u" * 65}),
        ("long password", {"password": "p" * 65}),
        ("long init string", {"init": ("AT" + "Z" * 121,)}),
        ("long dial command", {"dial_command": "ATD" + "T" * 120}),
        ("long dial number", {"dial_number": "9" * 21}),
        ("modem name with a slash", {"name": "../modem"}),
        ("modem name with a space", {"name": "my modem"}),
    ]
    return cases


@pytest.mark.parametrize("changes", [c for _, c in hostile_cases()], ids=[i for i, _ in hostile_cases()])
def test_hostile_settings_are_refused(changes: dict) -> None:
    settings = replace(TYPICAL, **changes)
    with pytest.raises(InternetError):
        render_chat(settings)
    with pytest.raises(InternetError):
        render_peer(settings, Path("/etc/chatscripts/otppi-modem1"))


@pytest.mark.parametrize("limit", [
    {"apn": "a" * 100}, {"username": "u" * 64}, {"password": "p" * 64}, {"init": ("AT" + "Z" * 120,)},
    {"dial_number": "9" * 20},
], ids=["apn", "username", "password", "init string", "dial number"])
def test_values_at_their_limit_are_accepted(limit: dict) -> None:
    settings = replace(TYPICAL, **limit)
    render_chat(settings)
    render_peer(settings, Path("/etc/chatscripts/otppi-modem1"))


def test_a_port_that_would_inject_a_pppd_option_is_refused() -> None:
    settings = replace(TYPICAL, port="/dev/ttyUSB0\nconnect /bin/sh")
    with pytest.raises(InternetError):
        render_peer(settings, Path("/etc/chatscripts/otppi-modem1"))


# ---------------------------------------------------------------- the real chat(8) on a simulated modem


needs_chat = pytest.mark.skipif(not os.access(CHAT, os.X_OK),
                                reason=f"{CHAT} is missing: install Debian's ppp package")


def run_chat(tmp_path: Path, modem, settings: DialSettings) -> subprocess.CompletedProcess:
    """The rendered script through the real chat, its stdin and stdout on the modem's pty, as pppd runs it."""
    script = tmp_path / "chat"
    script.write_text(render_chat(settings))
    fd = os.open(modem.path, os.O_RDWR | os.O_NOCTTY)
    try:
        tty.setraw(fd)
        return subprocess.run([CHAT, "-v", "-s", "-S", "-f", str(script)], stdin=fd, stdout=fd,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(fd)


@needs_chat
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_chat_reaches_connect_on_each_modem(tmp_path, make_simulator, profile: str) -> None:
    modem = make_simulator(profiles=profile)[0]
    result = run_chat(tmp_path, modem, replace(TYPICAL, port=modem.path))
    assert result.returncode == 0, result.stderr
    assert "CONNECT\n -- got it" in result.stderr, result.stderr
    assert modem.commands_seen == ["AT", "ATE0", "ATZ", "ATQ0 V1 E1 S0=0 &C1 &D2 +FCLASS=0",
                                   'AT+CGDCONT=1,"IP","internet"', "ATD*99#"]


@needs_chat
@pytest.mark.parametrize("operator", sorted(SPEC_TABLE))
def test_chat_dials_each_preset(tmp_path, make_simulator, operator: str) -> None:
    modem = make_simulator()[0]
    apn, _, _, dial = SPEC_TABLE[operator]
    result = run_chat(tmp_path, modem, preset(operator, port=modem.path))
    assert result.returncode == 0, result.stderr
    assert modem.commands_seen[-2:] == [f'AT+CGDCONT=1,"IP","{apn}"', f"ATD{dial}"]


@needs_chat
@pytest.mark.parametrize("answer", ["NO CARRIER", "BUSY", "NO DIALTONE", "NO ANSWER", "ERROR"])
def test_chat_fails_when_the_dial_fails(tmp_path, make_simulator, answer: str) -> None:
    modem = make_simulator()[0]
    modem.call(setattr, modem, "dial_result", answer)
    result = run_chat(tmp_path, modem, replace(TYPICAL, port=modem.path))
    assert result.returncode != 0, result.stderr
    assert f"Failed ({answer})" in result.stderr


@needs_chat
def test_chat_stops_at_an_init_string_the_modem_refuses(tmp_path, make_simulator) -> None:
    modem = make_simulator()[0]
    result = run_chat(tmp_path, modem, replace(TYPICAL, port=modem.path, init=("AT+NOSUCH=1",)))
    assert result.returncode != 0, result.stderr
    assert not any(command.startswith("ATD") for command in modem.commands_seen), "it must not dial"


@needs_chat
def test_a_huawei_init_string_reaches_the_modem_as_typed(tmp_path, make_simulator) -> None:
    modem = make_simulator(profiles="huawei-e173")[0]
    result = run_chat(tmp_path, modem, replace(TYPICAL, port=modem.path, init=("AT^ICCID?",)))
    assert "AT^ICCID?" in modem.commands_seen, modem.commands_seen
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- the peer file through the real pppd


def pppd_binary() -> str | None:
    found = shutil.which("pppd") or shutil.which("pppd", path="/usr/sbin:/sbin")
    return found if found and os.access(found, os.X_OK) else None


needs_pppd = pytest.mark.skipif(pppd_binary() is None, reason="pppd is missing: install Debian's ppp package")


@needs_pppd
@pytest.mark.parametrize("case", sorted(CASES))
def test_pppd_parses_each_peer_file(tmp_path, case: str) -> None:
    """``dryrun`` parses every option and stops; without /dev/ppp pppd stops at the kernel check (4),
    which it makes only once the options parsed (a bad one exits 2 with "In file …")."""
    settings = replace(CASES[case], port="/dev/null")
    peer = tmp_path / "peer"
    peer.write_text(render_peer(settings, tmp_path / "chat"))
    result = subprocess.run([pppd_binary(), "file", str(peer), "dryrun"], capture_output=True, text=True,
                            timeout=30)
    output = result.stdout + result.stderr
    assert result.returncode in (0, 4), output
    assert "In file" not in output and "quoted word" not in output, output


# ---------------------------------------------------------------- the link through the modem component


def provision(gw) -> None:
    """a: sends to 62812 and has Internet Access; b: the default modem, takes a's traffic while a is online."""
    gw.add_modem("a", 0, "--prefix", "62812")
    gw.add_modem("b", 1, "--default")
    for field, value in (("apn", "internet"), ("init_dial_1", "ATZ"), ("internet_access", "true")):
        gw.cli("modem", "set", "a", field, value)


def send(gw, key: str) -> str:
    """Send one SMS to a 62812 number; the modem that took it."""
    answer = gw.rest("send-sms", id=key, receiver="081234567890", message=key)
    assert answer["response_code"] == codes.SUCCESS, answer
    return gw.rows("select modem from sms_outbox where message_key = ?", f"send-sms:{key}")[0][0]


def internet(gw, action: str, modem: str = "a") -> dict:
    return gw.control({"op": "internet", "modem": modem, "action": action}, timeout=60)


@pytest.mark.slow
@needs_pppd
def test_up_hands_the_port_to_pppd_and_down_takes_it_back(gateway_factory) -> None:
    gw = gateway_factory(count=2)
    provision(gw)
    gw.start_modem(wait_for=["a", "b"])
    gw.start_api()
    assert send(gw, "before") == "a"

    answer = internet(gw, "up")
    assert answer["ok"], answer
    gw.wait_states({"a": "internet", "b": "ready"})
    peer, chat = Internet(gw.paths).files("a")
    settings = DialSettings.from_row(Modem(name="a", port=gw.port(0), apn="internet", init_dial_1="ATZ"))
    assert chat.read_text() == render_chat(settings)
    assert peer.read_text() == render_peer(settings, chat)
    assert peer.stat().st_mode & 0o777 == 0o600, "the peer file may hold the APN password"
    assert send(gw, "while-online") == "b", "a's traffic goes to the default modem while pppd has the port"

    # pppd cannot negotiate PPP with the simulator (or finds no /dev/ppp): it must give up, LCP within ~30 s.
    wait_until(lambda: internet(gw, "state")["state"] == "failed", timeout=90, what="the link to fail")
    if any(command.startswith("ATD") for command in gw.sim[0].commands_seen):
        # A real modem hangs up when pppd drops DTR (AT&D2); a pty has no DTR, so play the hang-up.
        gw.sim[0].power_cycle(0)

    answer = internet(gw, "down")
    assert answer["ok"], answer
    gw.wait_states({"a": "ready"})
    assert send(gw, "after") == "a"
    assert [m.text for m in gw.sent(0)] == ["before", "after"]
    assert [m.text for m in gw.sent(1)] == ["while-online"]


@pytest.mark.slow
@needs_pppd
def test_a_link_that_fails_says_why(gateway_factory) -> None:
    gw = gateway_factory(count=2)
    provision(gw)
    gw.start_modem(wait_for=["a", "b"])
    assert internet(gw, "up")["ok"]
    answer = wait_until(lambda: (a := internet(gw, "state"))["state"] == "failed" and a, timeout=90,
                        what="the link to fail")
    assert answer["error"].startswith("pppd exited with"), "a failed link says why before anyone takes it down"
    gw.wait_states({"a": "ready"})  # back to SMS without a "down"
    internet(gw, "down")


@pytest.mark.slow
def test_up_without_pppd_answers_a_clear_error(gateway_factory, tmp_path, monkeypatch) -> None:
    gw = gateway_factory(count=2)
    provision(gw)
    monkeypatch.setenv("PATH", str(tmp_path))  # the modem component finds no pppd
    gw.start_modem(wait_for=["a", "b"])
    gw.start_api()
    answer = internet(gw, "up")
    assert answer == {"ok": False, "error": "pppd is not installed", "kind": "unsupported", "cme": None}
    assert gw.states()["a"] == "ready", "the worker keeps the port when no link can start"
    assert send(gw, "no-pppd") == "a"


@pytest.mark.slow
def test_requests_the_component_must_refuse(gateway_factory) -> None:
    gw = gateway_factory(count=2)
    provision(gw)
    gw.start_modem(wait_for=["a", "b"])
    off = internet(gw, "up", modem="b")
    assert not off["ok"] and "Internet Access is off" in off["error"]
    bad = internet(gw, "sideways")
    assert not bad["ok"] and "action must be" in bad["error"]
    missing = internet(gw, "up", modem="nosuch")
    assert not missing["ok"] and "no active modem" in missing["error"]
    assert internet(gw, "state") == {"ok": True, "state": "down", "error": ""}
    assert gw.states() == {"a": "ready", "b": "ready"}
