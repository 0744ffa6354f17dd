"""The Redis feeder as systemd runs it (its own process) against a real redis-server.

Requests are published with redis-py from the test; delivery goes through the
real modem component to simulated modems where it matters, otherwise the
outbox, the block list and the event table tell what the feeder did.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from otppi import keys
from otppi.paths import Paths
from otppi.store import settings
from otppi.store.db import close_database, db, open_database
from otppi.store.migrations import migrate

from ..brokers import have
from ..helpers import env_for, otppi, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not have("redis-server"), reason="redis-server is missing: ./build.sh test installs it"),
]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def provision(root: Path, values: dict[str, Any]) -> Path:
    """A migrated root (if new) with these settings, written as the CLI writes them."""
    paths = Paths(root)
    keys.ensure_all(paths)
    open_database(paths.database, sealing_key=keys.otp_key(paths))
    try:
        migrate(db)
        for key, value in values.items():
            settings.set_text(key, str(value).lower() if isinstance(value, bool) else str(value))
    finally:
        close_database()
    return root


def redis_settings(broker, topic: str, mode: str, **more: Any) -> dict[str, Any]:
    values = {"enabled": True, "allow_plain_login": True, "host": broker.host, "port": broker.port, "username": broker.user,
              "password": broker.password, "topic": topic, "mode": mode, "group": "otppi",
              "reconnect_delay": 0.2, "timeout": 10}
    values.update(more)
    values["password"] = values.pop("password")  # last: a new host, port or TLS clears it
    return {f"feeder_redis.{k}": v for k, v in values.items()}


def rows(root: Path, sql: str, *args: Any) -> list[tuple]:
    con = sqlite3.connect(Paths(root).database, timeout=15)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def count(root: Path, sql: str, *args: Any) -> int:
    return rows(root, sql, *args)[0][0]


def feeder_events(root: Path, result: str) -> int:
    return count(root, "select count(*) from event where kind='feeder' and source='redis' and result=?", result)


def request(command: str, callback: str | None = None, **data: Any) -> bytes:
    body: dict[str, Any] = {"command": command, "data": data}
    if callback:
        body["callback_topic"] = callback
    return json.dumps(body).encode()


class FeederProcess:
    """``python -m otppi.feeders.redis`` on a root, logging to a file."""

    def __init__(self, root: Path, **env: str):
        self.root, self.env = root, env
        self.log = root / f"feeder-redis-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "FeederProcess":
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "otppi.feeders.redis"],
                                         env=env_for(self.root, **self.env), stdout=log, stderr=subprocess.STDOUT)
        return self

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError(f"the feeder exited: {self.text()[-3000:]}")
        return True

    def stop(self) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        finally:
            self.proc = None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None


@pytest.fixture
def feeders():
    """Start feeders with ``feeders(root)``; each still running must stop cleanly on SIGTERM."""
    made: list[FeederProcess] = []

    def start(root: Path, **env: str) -> FeederProcess:
        made.append(FeederProcess(root, **env).start())
        return made[-1]

    yield start
    codes = {f.log.name: f.stop() for f in made}
    assert all(code == 0 for code in codes.values()), f"feeders must stop cleanly: {codes}"


@pytest.fixture
def client(redis_broker) -> redis.Redis:
    c = redis.Redis(host=redis_broker.host, port=redis_broker.port, password=redis_broker.password)
    yield c
    c.close()


def connected(root: Path, times: int = 1) -> None:
    wait_until(lambda: feeder_events(root, "connected") >= times, timeout=20, what=f"{times} feeder connects")


def subscribed(client: redis.Redis, channel: str, subscribers: int = 1) -> None:
    wait_until(lambda: dict(client.pubsub_numsub(channel)).get(channel.encode(), 0) == subscribers,
               what=f"{subscribers} subscribers on {channel}")


@pytest.fixture
def listen(client):
    """``listen(channel)``: the app server's subscription to a callback channel, made before it publishes."""
    made: list[redis.client.PubSub] = []

    def subscribe(channel: str) -> redis.client.PubSub:
        made.append(client.pubsub(ignore_subscribe_messages=True))
        made[-1].subscribe(channel)
        subscribed(client, channel)
        return made[-1]

    yield subscribe
    for ps in made:
        ps.close()


def next_message(ps: redis.client.PubSub, timeout: float = 20) -> dict[str, Any]:
    message = wait_until(lambda: ps.get_message(timeout=0.5), timeout=timeout, what="an answer on the channel")
    return json.loads(message["data"])


class StreamReader:
    """The app server's side of a callback stream: entries in order, each read once."""

    def __init__(self, client: redis.Redis, stream: str):
        self.client, self.stream, self.last = client, stream, "0"

    def next(self, timeout: float = 20) -> dict[str, Any]:
        def read():
            got = self.client.xread({self.stream: self.last}, count=1, block=500)
            return got[0][1][0] if got else None

        entry_id, fields = wait_until(read, timeout=timeout, what=f"an answer on stream {self.stream}")
        self.last = entry_id
        return json.loads(fields[b"data"])


def pending(client: redis.Redis, stream: str, group: str = "otppi") -> int:
    return client.xpending(stream, group)["pending"]


def sent_texts(gw, index: int = 0) -> list[str]:
    return [m.text for m in gw.sent(index)]


# ---------------------------------------------------------------- end to end


def test_pubsub_send_sms_reaches_the_modem_and_otp_answers_come_back(gateway_factory, redis_broker, client,
                                                                       listen, feeders) -> None:
    gw = gateway_factory(count=1)
    gw.add_modem("m", 0, "--default")
    gw.start_modem(wait_for=["m"])
    topic, callback = unique("sms"), unique("answers")
    provision(gw.root, redis_settings(redis_broker, topic, "pubsub"))
    feeder = feeders(gw.root)
    subscribed(client, topic)
    ps = listen(callback)

    client.publish(topic, request("send-sms", id="ps-1", receiver="08126666666", message="Hello over Redis"))
    wait_until(lambda: sent_texts(gw) == ["Hello over Redis"], what="the SMS at the modem")

    client.publish(topic, request("send-sms", callback, receiver=62812, message="x"))
    refused = next_message(ps)
    assert refused["response_code"] == "1300" and "data.receiver" in refused["message"]

    client.publish(topic, request("create-otp", callback, receiver="08127777777", reference="ps-otp",
                                  message="Your code %s"))
    created = next_message(ps)
    assert created["response_code"] == "000", created  # the final answer: the modem sent it
    assert created["data"]["reference"] == "ps-otp"
    code = sent_texts(gw)[-1].rsplit(" ", 1)[1]
    check = {"receiver": "08127777777", "reference": "ps-otp"}
    wrong = str((int(code) + 1) % 10 ** len(code)).zfill(len(code))
    client.publish(topic, request("validate-otp", callback, otp=wrong, **check))
    assert next_message(ps)["response_code"] == "1202"
    client.publish(topic, request("validate-otp", callback, otp=code, **check))
    assert next_message(ps)["response_code"] == "000"
    log = feeder.text()
    assert "Hello over Redis" not in log and code not in log, "no bodies or codes in the log"


def test_streams_send_sms_answers_000_on_the_callback_stream_after_the_modem_sent_it(gateway_factory,
                                                                                      redis_broker, client,
                                                                                      feeders) -> None:
    gw = gateway_factory(count=1)
    gw.add_modem("m", 0, "--default")
    gw.start_modem(wait_for=["m"])
    topic, callback = unique("sms"), unique("answers")
    provision(gw.root, redis_settings(redis_broker, topic, "streams"))
    feeders(gw.root)
    connected(gw.root)
    answers = StreamReader(client, callback)

    client.xadd(topic, {"data": request("send-sms", callback, id="st-1", receiver="08126666666",
                                        message="Hello over a stream")})
    final = answers.next()
    assert final["response_code"] == "000", final
    assert final["data"]["id"] == "st-1"
    assert sent_texts(gw) == ["Hello over a stream"], "000 only once the modem sent it"
    assert gw.rows("select state from sms_outbox where message_key='send-sms:st-1'") == [("sent",)]

    client.xadd(topic, {"data": request("get-modem-list", callback)})
    modems = answers.next()
    assert modems["response_code"] == "000" and [m["name"] for m in modems["data"]["modems"]] == ["m"]
    wait_until(lambda: pending(client, topic) == 0, what="every entry acknowledged")


def test_streams_entries_added_while_the_feeder_is_down_are_handled_when_it_comes_back(short_tmp, redis_broker,
                                                                                        client, feeders) -> None:
    topic = unique("sms")
    root = provision(short_tmp / "r", redis_settings(redis_broker, topic, "streams"))
    first = feeders(root)
    connected(root)
    assert first.stop() == 0
    for i in range(5):
        client.xadd(topic, {"data": request("send-sms", id=f"offline-{i}", receiver="0812555000", message="x")})
    assert count(root, "select count(*) from sms_outbox") == 0
    feeders(root)
    wait_until(lambda: count(root, "select count(*) from sms_outbox") == 5, what="the 5 entries in the outbox")
    wait_until(lambda: pending(client, topic) == 0, what="every entry acknowledged")
    assert sorted(r[0] for r in rows(root, "select message_key from sms_outbox")) == [
        f"send-sms:offline-{i}" for i in range(5)]


def test_entries_of_a_killed_consumer_are_reclaimed_and_handled_once(short_tmp, redis_broker, client,
                                                                     feeders) -> None:
    topic = unique("sms")
    root = provision(short_tmp / "r", redis_settings(redis_broker, topic, "streams"))
    feeder = feeders(root)
    connected(root)
    # Hold the store's write lock, so the feeder reads the entry and then waits to commit it.
    lock = sqlite3.connect(Paths(root).database, timeout=15, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        client.xadd(topic, {"data": request("send-sms", id="k-1", receiver="0812555000", message="x")})
        wait_until(lambda: pending(client, topic) == 1, what="the entry read and not acknowledged")
        feeder.kill()  # kill -9 between read and ack
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert count(root, "select count(*) from sms_outbox") == 0
    # A consumer that read an entry and died a minute ago (its entry is older than the reclaim threshold).
    client.xadd(topic, {"data": request("send-sms", id="k-2", receiver="0812555000", message="x")})
    [[_, [(ghost_entry, _)]]] = client.xreadgroup("otppi", "ghost", {topic: ">"}, count=1)
    client.xclaim(topic, "otppi", "ghost", 0, [ghost_entry], idle=60_000)
    assert pending(client, topic) == 2

    feeders(root)  # the killed device comes back under its own name
    wait_until(lambda: pending(client, topic) == 0, what="both entries handled and acknowledged")
    keys_seen = [r[0] for r in rows(root, "select message_key from sms_outbox order by message_key")]
    assert keys_seen == ["send-sms:k-1", "send-sms:k-2"], "each exactly once"


def test_a_broker_restart_in_the_middle_of_a_stream_loses_nothing(short_tmp, redis_broker, client,
                                                                  feeders) -> None:
    topic = unique("sms")
    root = provision(short_tmp / "r", redis_settings(redis_broker, topic, "streams"))
    feeders(root)
    connected(root)
    before_restart, after_restart = 800, 400

    def add(ids: range) -> None:
        with client.pipeline(transaction=False) as pipe:
            for i in ids:
                pipe.xadd(topic, {"data": request("send-sms", id=f"rs-{i}", receiver="0812555000", message="x")})
            pipe.execute()

    def handled() -> int:
        return count(root, "select count(*) from sms_outbox")

    add(range(before_restart))
    wait_until(lambda: handled() >= 20, what="the first entries handled")
    run_id = client.info("server")["run_id"]
    redis_broker.restart()  # the stream, its group and the pending entries come back from the AOF
    assert client.info("server")["run_id"] != run_id
    add(range(before_restart, before_restart + after_restart))
    total = before_restart + after_restart
    wait_until(lambda: handled() >= total, timeout=60, what=f"all {total} entries in the outbox")
    wait_until(lambda: pending(client, topic) == 0, what="every entry acknowledged")
    assert count(root, "select count(distinct message_key) from sms_outbox") == total
    assert handled() == total, "each id exactly once"


# ---------------------------------------------------------------- connection life


def test_a_password_is_not_sent_without_tls_unless_plain_login_is_allowed(short_tmp, redis_broker, client,
                                                                         feeders) -> None:
    topic = unique("sms")
    root = provision(short_tmp / "r", redis_settings(redis_broker, topic, "pubsub", allow_plain_login=False))
    feeder = feeders(root)
    refusal = ("feeder_redis.password would be sent without TLS: turn on feeder_redis.ssl, or set "
               "feeder_redis.allow_plain_login if the broker offers no TLS")
    wait_until(lambda: refusal in feeder.text(), what="the refusal in the log")
    assert "ERROR" in feeder.text()
    assert count(root, "select count(*) from event where kind='feeder' and result='disconnected' and cause=?",
                 refusal) >= 1
    assert feeder_events(root, "connected") == 0
    subscribed(client, topic, 0)
    # Allowing it moves how the password is sent, so it is entered again with the flag.
    otppi(root, "settings", "set", "feeder_redis.allow_plain_login", "true")
    otppi(root, "settings", "set", "feeder_redis.password", "--value-stdin", stdin=redis_broker.password + "\n")
    connected(root)
    subscribed(client, topic)


def test_a_wrong_password_is_said_clearly_and_fixing_it_live_connects(short_tmp, redis_broker, client,
                                                                      feeders) -> None:
    topic = unique("sms")
    root = provision(short_tmp / "r", redis_settings(redis_broker, topic, "pubsub", password="wrong-secret"))
    feeder = feeders(root)
    wait_until(lambda: "refused the password of user 'otppi'" in feeder.text(), what="the error in the log")
    assert feeder_events(root, "disconnected") >= 1
    assert feeder_events(root, "connected") == 0
    assert feeder.alive()
    otppi(root, "settings", "set", "feeder_redis.password", redis_broker.password)
    connected(root)
    subscribed(client, topic)
    assert "wrong-secret" not in feeder.text() and redis_broker.password not in feeder.text()


def test_tls_against_the_test_ca_and_a_clear_error_without_it(short_tmp, redis_broker, client, listen,
                                                             feeders) -> None:
    topic, callback = unique("sms"), unique("answers")
    root = provision(short_tmp / "r", redis_settings(redis_broker, topic, "pubsub", ssl=True,
                                                     port=redis_broker.tls_port, ca_file=redis_broker.ca.ca))
    feeder = feeders(root)
    subscribed(client, topic)
    ps = listen(callback)
    client.publish(topic, request("echo", callback, over="tls"))
    assert next_message(ps)["data"] == {"over": "tls"}

    otppi(root, "settings", "set", "feeder_redis.ca_file", "")
    wait_until(lambda: "could not be verified" in feeder.text(), what="the TLS error in the log")
    assert "set ca_file to the CA that signed it" in feeder.text()
    assert count(root, "select count(*) from event where kind='feeder' and result='disconnected' "
                       "and cause like 'TLS:%'") >= 1
    subscribed(client, topic, 0)
    assert feeder.alive()


def test_a_disabled_feeder_idles_and_settings_apply_live(short_tmp, redis_broker, client, feeders) -> None:
    first, second, callback = unique("sms"), unique("sms"), unique("answers")
    device = unique("idle")
    root = provision(short_tmp / "r", {**redis_settings(redis_broker, first, "pubsub", enabled=False, username=""),
                                       "general.device_name": device})
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(short_tmp / "notify"))
    notify.settimeout(20)
    feeders(root, NOTIFY_SOCKET=str(short_tmp / "notify"))
    try:
        assert notify.recv(4096).decode() == "READY=1\nSTATUS=idle"
    finally:
        notify.close()

    def ours() -> int:
        return sum(1 for c in client.client_list() if c["name"].startswith(device))

    assert ours() == 0 and feeder_events(root, "connected") == 0

    otppi(root, "settings", "set", "feeder_redis.enabled", "true")
    connected(root)
    subscribed(client, first)
    assert ours() >= 1, "the connection carries the device's name"

    otppi(root, "settings", "set", "feeder_redis.mode", "streams")
    otppi(root, "settings", "set", "feeder_redis.topic", second)
    subscribed(client, first, 0)
    wait_until(lambda: client.exists(second) and client.xinfo_groups(second), what="the group on the new topic")
    answers = StreamReader(client, callback)
    client.xadd(second, {"data": request("echo", callback, mode="streams")})
    assert answers.next()["data"] == {"mode": "streams"}
    [consumer] = client.xinfo_consumers(second, "otppi")
    assert consumer["name"].decode() == f"{device}@{socket.gethostname()}"

    otppi(root, "settings", "set", "feeder_redis.enabled", "false")
    wait_until(lambda: ours() == 0, what="the feeder's connections closed")


# ---------------------------------------------------------------- bad input and the fleet


def test_bad_input_is_answered_1300_acknowledged_and_the_feeder_goes_on(short_tmp, redis_broker, client,
                                                                        feeders) -> None:
    topic, callback = unique("sms"), unique("answers")
    root = provision(short_tmp / "r", redis_settings(redis_broker, topic, "streams"))
    feeder = feeders(root)
    connected(root)
    answers = StreamReader(client, callback)
    marker = "BODY-MARKER-7731"
    client.xadd(topic, {"data": f"not json {marker}", "callback_topic": callback})
    assert "not valid JSON" in answers.next()["message"]
    client.xadd(topic, {"data": request("send-sms", callback, id=5.5, receiver=[marker], message="x")})
    wrong_types = answers.next()
    assert wrong_types["response_code"] == "1300" and "data.id" in wrong_types["message"]
    client.xadd(topic, {"data": json.dumps({"command": "echo", "data": {"pad": marker * 4_400}}),
                        "callback_topic": callback})
    huge = answers.next()
    assert huge["response_code"] == "1300" and "64 KiB" in huge["message"]
    client.xadd(topic, {"payload": marker, "callback_topic": callback})
    assert answers.next()["message"] == "the stream entry has no data field"
    client.xadd(topic, {"data": b"\xff\xfe" + marker.encode()})  # no callback anywhere: logged, acknowledged
    client.xadd(topic, {"data": request("echo", callback, still="here")})
    assert answers.next() == {"command": "echo", "response_code": "000", "message": "success",
                              "data": {"still": "here"}}
    wait_until(lambda: pending(client, topic) == 0, what="bad entries acknowledged too: no poison loop")
    assert feeder.alive() and marker not in feeder.text()


def test_fleet_of_three_consumers_handles_each_of_1000_entries_once(short_tmp, redis_broker, client,
                                                                    feeders) -> None:
    topic = unique("fleet")
    roots = [provision(short_tmp / f"pi{i}", {**redis_settings(redis_broker, topic, "streams", username=""),
                                              "general.device_name": f"fleet-{i}"}) for i in range(3)]
    for root in roots:
        feeders(root)
    wait_until(lambda: client.exists(topic) and len(client.xinfo_consumers(topic, "otppi")) == 3,
               what="three consumers in the group")
    total = 1000
    with client.pipeline(transaction=False) as pipe:
        for i in range(total):
            pipe.xadd(topic, {"data": request("block-msisdn", receiver=f"0813{i:07d}")})
        pipe.execute()

    def handled() -> int:
        return sum(count(root, "select count(*) from event where kind='block'") for root in roots)

    wait_until(lambda: handled() >= total, timeout=60, what=f"{total} block requests handled")
    wait_until(lambda: pending(client, topic) == 0, what="every entry acknowledged")
    per_device = [count(root, "select count(*) from blocked_number") for root in roots]
    numbers = {r[0] for root in roots for r in rows(root, "select msisdn from blocked_number")}
    assert handled() == total and sum(per_device) == total and len(numbers) == total, per_device
    assert all(n > 0 for n in per_device), f"each device took a share: {per_device}"
