"""The REST API component, as a client sees it: a real process, real HTTP and HTTPS."""

from __future__ import annotations

import base64
import json
import re
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from otppi import codes

from .conftest import API_PASSWORD, API_USER
from .helpers import ApiProcess, env_for, free_port, otppi, wait_until
from .spec_examples import EXAMPLES

PATHS = ["/api/otp", "/api/sms", "/api/block", "/api/unblock"]


def _rows(root: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(root / "var/lib/otppi/otppi.db")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_spec_examples_over_http(api: ApiProcess, index: int) -> None:
    body = EXAMPLES[index]
    r = api.post("/api/sms", body.encode())
    assert r.status_code == 200, r.text
    answer = r.json()
    # The seed's examples carry expirations in 2021: with Drop Expire OTP on (the default) they are
    # dropped as expired, never refused as malformed.
    if '"expiration"' in body:
        expected = {codes.OTP_EXPIRED}
    elif '"validate-otp"' in body:
        expected = {codes.OTP_INVALID}  # no OTP with the example's reference exists here
    else:
        expected = {codes.SUCCESS, codes.QUEUED}
    assert answer["response_code"] in expected
    assert answer["command"] == json.loads(re.sub(r",(\s*})", r"\1", body))["command"]


def test_spec_examples_queue_when_expired_ones_are_kept(api: ApiProcess) -> None:
    otppi(api.root, "settings", "set", "general.drop_expire_otp", "false")
    wait_until(lambda: api.post("/api/otp", EXAMPLES[0].encode()).json()["response_code"] == codes.QUEUED,
               what="setting applied")
    assert api.post("/api/sms", EXAMPLES[2].encode()).json()["response_code"] == codes.QUEUED


def test_every_path_takes_every_command(api: ApiProcess) -> None:
    for path in PATHS:
        assert api.post(path, {"command": "echo", "data": {"p": path}}).json()["data"] == {"p": path}
        assert api.post(path, {"command": "block-msisdn", "data": {"receiver": "0811"}}).json()["response_code"] == "000"
        r = api.post(path, {"command": "send-email", "data": {"receiver": "a@example.com", "message": "hi"}})
        assert r.json()["response_code"] == codes.QUEUED


def test_send_sms_waits_then_answers_queued_and_the_row_stays(api: ApiProcess) -> None:
    r = api.post("/api/sms", {"command": "send-sms", "data": {"id": "q1", "receiver": "08126666666", "message": "m"}})
    assert r.json()["response_code"] == codes.QUEUED
    assert r.elapsed.total_seconds() >= 0.4, "the request waits for an outcome up to api.wait_timeout"
    assert _rows(api.root, "select state, receiver from sms_outbox") == [("queued", "628126666666")]


def test_the_same_id_is_queued_once(api: ApiProcess) -> None:
    req = {"command": "send-sms", "data": {"id": 77, "receiver": "08126666666", "message": "m"}}
    assert [api.post("/api/sms", req).json()["response_code"] for _ in range(3)] == [codes.QUEUED] * 3
    assert _rows(api.root, "select count(*) from sms_outbox") == [(1,)]


def test_block_list_refuses_sending(api: ApiProcess) -> None:
    api.post("/api/block", {"command": "block-msisdn", "data": {"receiver": "+62 812 6666 666"}})
    sms = {"command": "send-sms", "data": {"receiver": "08126666666", "message": "m"}}
    otp = {"command": "create-otp", "data": {"receiver": "08126666666", "reference": "b1"}}
    assert api.post("/api/sms", sms).json()["response_code"] == codes.BLOCKED
    assert api.post("/api/otp", otp).json()["response_code"] == codes.BLOCKED
    api.post("/api/unblock", {"command": "unblock-msisdn", "data": {"receiver": "08126666666"}})
    assert api.post("/api/sms", sms).json()["response_code"] == codes.QUEUED


@pytest.mark.parametrize(
    "auth,header",
    [
        (False, None),
        (("app-server", "wrong"), None),
        (("nobody", "correct horse battery staple"), None),
        (False, "Basic !!!notbase64"),
        (False, "Bearer abc"),
        (False, "Basic " + "QQ=="),  # "A": no colon
    ],
)
def test_bad_credentials_get_401_and_1100(api: ApiProcess, auth, header) -> None:
    headers = {"Authorization": header} if header else {}
    r = requests.post(api.url + "/api/otp", json={"command": "echo"}, auth=auth or None, headers=headers, timeout=10)
    assert r.status_code == 401
    assert r.json()["response_code"] == codes.UNAUTHORIZED
    assert r.headers["WWW-Authenticate"].startswith("Basic")


def test_removed_user_is_refused_at_once(api: ApiProcess) -> None:
    assert api.post("/api/otp", {"command": "echo"}).status_code == 200
    otppi(api.root, "api-user", "remove", api.user)
    assert api.post("/api/otp", {"command": "echo"}).status_code == 401


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_wrong_methods(api: ApiProcess, method: str) -> None:
    r = requests.request(method, api.url + "/api/sms", auth=(api.user, api.password), timeout=10)
    assert r.status_code == 405
    assert r.json()["response_code"] == codes.MALFORMED


def test_unknown_path(api: ApiProcess) -> None:
    r = api.post("/api/nothing", {"command": "echo"})
    assert r.status_code == 404 and r.json()["response_code"] == codes.MALFORMED


@pytest.mark.parametrize(
    "body,needle",
    [
        (b"not json", "not valid JSON"),
        (b'{"command": "send-sms", "data": {"receiver": "0812"}}', "data.message"),
        (b'{"command": "launch-missiles"}', "unknown command"),
        (b'{"command": "send-sms", "data": {"receiver": "0812", "message": "x\\u0000"}}', "control"),
        (b"\xc3\x28", "UTF-8"),
    ],
)
def test_malformed_bodies_get_1300_and_the_service_keeps_serving(api: ApiProcess, body: bytes, needle: str) -> None:
    r = api.post("/api/sms", body)
    assert r.status_code == 400
    assert r.json()["response_code"] == codes.MALFORMED
    assert needle in r.json()["message"]
    assert api.post("/api/sms", {"command": "echo"}).json()["response_code"] == codes.SUCCESS
    assert _rows(api.root, "select count(*) from sms_outbox") == [(0,)], "nothing half-written"


def test_oversize_bodies_are_refused(api: ApiProcess) -> None:
    big = b'{"command": "echo", "data": {"x": "' + b"a" * 70_000 + b'"}}'
    r = api.post("/api/sms", big)
    assert r.status_code == 413 and r.json()["response_code"] == codes.MALFORMED

    def chunks():
        for _ in range(80):
            yield b"a" * 1024

    r = requests.post(api.url + "/api/sms", data=chunks(), auth=(api.user, api.password), timeout=10)
    assert r.status_code == 413
    assert api.post("/api/sms", {"command": "echo"}).status_code == 200


def test_paths_and_ports_change_live(api: ApiProcess) -> None:
    otppi(api.root, "settings", "set", "api.message_path", "/v2/messages")
    wait_until(lambda: api.post("/v2/messages", {"command": "echo"}).status_code == 200, what="new path")
    assert api.post("/api/sms", {"command": "echo"}).status_code == 404
    new_port = free_port()
    otppi(api.root, "settings", "set", "api.http_port", str(new_port))
    old_url, api.url = api.url, f"http://127.0.0.1:{new_port}"
    wait_until(api.alive, what="listener on the new port")
    with pytest.raises(requests.ConnectionError):
        requests.post(old_url + "/v2/messages", timeout=2)


def test_https_listener_with_the_device_certificate(api: ApiProcess) -> None:
    port = free_port()
    otppi(api.root, "settings", "set", "api.https_port", str(port))
    otppi(api.root, "settings", "set", "api.https_enabled", "true")
    cert = api.root / "var/lib/otppi/secrets/tls.crt"
    url = f"https://127.0.0.1:{port}/api/otp"

    def answered():
        try:
            return requests.post(url, json={"command": "echo", "data": {"tls": 1}}, auth=(api.user, api.password),
                                 verify=str(cert), timeout=3)
        except requests.ConnectionError:
            return None

    r = wait_until(answered, what="HTTPS listener")
    assert r.json() == {"command": "echo", "response_code": "000", "message": "success", "data": {"tls": 1}}
    with pytest.raises(requests.exceptions.SSLError):
        requests.post(url, json={"command": "echo"}, timeout=3)  # the system CAs do not know the device


def test_https_with_a_keystore_certificate_and_http_off(api_root: Path, tmp_path: Path) -> None:
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=gw.test",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", crt],
                   check=True, capture_output=True)
    otppi(api_root, "keystore", "add", "site", "--cert", str(crt), "--key", str(key))
    port = free_port()
    for key_, value in [("api.https_keystore", "site"), ("api.https_port", str(port)),
                        ("api.https_enabled", "true"), ("api.http_enabled", "false")]:
        otppi(api_root, "settings", "set", key_, value)
    proc = subprocess.Popen([sys.executable, "-m", "otppi.api"], env=env_for(api_root),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def answered():
            try:
                return requests.post(f"https://127.0.0.1:{port}/api/otp", json={"command": "echo"},
                                     auth=("app-server", "correct horse battery staple"), verify=str(crt), timeout=3)
            except requests.ConnectionError:
                return None

        assert wait_until(answered, what="HTTPS with keystore cert").json()["response_code"] == "000"
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def test_api_refuses_to_start_without_a_migrated_store(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "otppi.api"], env=env_for(tmp_path / "empty"),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "otppi migrate" in result.stderr


def test_taken_port_fails_loudly(api: ApiProcess) -> None:
    second = subprocess.run([sys.executable, "-m", "otppi.api"], env=env_for(api.root),
                            capture_output=True, text=True, timeout=30)
    assert second.returncode != 0
    assert "address already in use" in second.stderr.lower()


def test_validate_over_http_uses_one_code_for_unknown_and_wrong(api: ApiProcess) -> None:
    api.post("/api/otp", {"command": "create-otp", "data": {"receiver": "0812", "reference": "h1"}})
    a = api.post("/api/otp", {"command": "validate-otp", "data": {"receiver": "0812", "reference": "h1", "otp": "1"}})
    b = api.post("/api/otp", {"command": "validate-otp", "data": {"receiver": "0812", "reference": "hx", "otp": "1"}})
    assert a.json()["response_code"] == b.json()["response_code"] == codes.OTP_INVALID


def test_a_burst_of_waiting_requests_holds_no_threads(api_root: Path) -> None:
    """300 clients at once, each waiting for its SMS: all are taken in at once, none is reset or left unanswered.

    A waiting request must not hold a worker thread: with one thread per waiting request, only as many
    requests as there are threads would reach the outbox before the first wait ran out.
    """
    from otppi.paths import Paths
    from otppi.store.db import close_database, open_database
    from otppi.store.models import SmsOutbox
    from otppi.store.outbox import finish

    clients = 300
    otppi(api_root, "settings", "set", "api.wait_timeout", "120")
    port = int(otppi(api_root, "settings", "get", "api.http_port").stdout)
    api = ApiProcess(api_root, port, API_USER, API_PASSWORD).start()
    try:
        auth = "Basic " + base64.b64encode(f"{api.user}:{api.password}".encode()).decode()
        answers: list[str] = []

        def client(i: int) -> None:
            body = json.dumps({"command": "send-sms", "data": {"id": f"b{i}", "receiver": f"0812{i:08d}",
                                                               "message": "burst"}}).encode()
            try:
                with socket.create_connection(("127.0.0.1", api.port), timeout=120) as sock:
                    sock.sendall(f"POST /api/sms HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nConnection: close\r\n"
                                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                    data = b""
                    while chunk := sock.recv(65536):
                        data += chunk
                answers.append(json.loads(data.partition(b"\r\n\r\n")[2])["response_code"])
            except OSError as exc:
                answers.append(type(exc).__name__)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        wait_until(lambda: _rows(api.root, "select count(*) from sms_outbox") == [(clients,)], timeout=60,
                   what="every request of the burst queued while the others wait")
        assert answers == [], "nobody is answered before the outcome or the wait's end"
        status = Path(f"/proc/{api.proc.pid}/status").read_text()
        threads_now = int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))
        assert threads_now < 20, f"{threads_now} threads for {clients} waiting requests"
        open_database(Paths(api.root).database)
        try:
            for (row_id,) in _rows(api.root, "select id from sms_outbox"):
                finish(Paths(api.root), SmsOutbox, row_id, "failed", error="no modem in this test")
        finally:
            close_database()
        for thread in threads:
            thread.join(60)
        assert sorted(set(answers)) == [codes.NO_MODEM] and len(answers) == clients
    finally:
        assert api.stop() == 0


def test_stopping_answers_waiting_requests_with_1111(api_root: Path) -> None:
    """A request already queued is in the store: on SIGTERM its client hears 1111, not a dropped connection."""
    otppi(api_root, "settings", "set", "api.wait_timeout", "60")
    port = int(otppi(api_root, "settings", "get", "api.http_port").stdout)
    api = ApiProcess(api_root, port, API_USER, API_PASSWORD).start()
    answers: list = []
    try:
        waiting = threading.Thread(target=lambda: answers.append(api.post(
            "/api/sms", {"command": "send-sms", "data": {"id": "s1", "receiver": "0812", "message": "m"}})))
        waiting.start()
        wait_until(lambda: _rows(api_root, "select count(*) from sms_outbox") == [(1,)], what="the SMS queued")
    finally:
        assert api.stop() == 0
    waiting.join(30)
    assert [(r.status_code, r.json()["response_code"]) for r in answers] == [(200, codes.QUEUED)]
    assert _rows(api_root, "select state from sms_outbox") == [("queued",)]
