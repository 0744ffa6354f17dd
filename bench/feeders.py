"""Feeder benchmarks: requests committed per second by each broker feeder, and publish → Ctrl-Z latency.

Our own rabbitmq-server, mosquitto and redis-server (tests/brokers.py) and an
``otppi-wsbroker`` run on free ports in a temp dir. For each feeder a root is
provisioned with the real CLI and ``python -m otppi.feeders.<name>`` runs as its
own process:

1. throughput: a burst of send-sms requests (unique ids) published as fast as
   the client can; no modem component runs, so each request ends as a queued
   outbox row. The rate is requests committed per second, from the first
   publish to the last commit (the publisher is faster than any feeder here);
2. latency: one simulated modem and the modem component beside the feeder;
   send-sms requests published one at a time, each measured from just before
   the publish to the Ctrl-Z that ends its SMS-SUBMIT at the simulated modem.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import paho.mqtt.client as mqtt
import pika
import redis
from websockets.headers import build_authorization_basic
from websockets.sync.client import connect as ws_connect

from otppi import control
from otppi.modem.simulator import Simulator
from otppi.paths import Paths

from tests.brokers import start_all
from tests.wsbroker_process import APP_PASSWORD, APP_USER, DEVICE_PASSWORD, DEVICE_USER, WsBroker

from .modem import percentile, proc_status

GOAL_RATE = 500.0  # requests/s for RabbitMQ, MQTT and Redis Streams
GOAL_P50_MS = 20.0
NAMES = ("amqp", "mqtt", "redis", "ws")


@dataclass(frozen=True)
class Scale:
    burst: int
    latency_samples: int


FULL = Scale(burst=3000, latency_samples=300)
QUICK = Scale(burst=500, latency_samples=50)


def request(key: str) -> bytes:
    return json.dumps({"command": "send-sms", "data": {"id": key, "receiver": "08126666666",
                                                       "message": f"bench {key}"}}).encode()


class Device:
    """A throwaway root with one feeder (and optionally a simulated modem with the modem component)."""

    def __init__(self, name: str, settings: dict[str, str], modem: bool):
        self.name = name
        self.root = Path(tempfile.mkdtemp(prefix="fb", dir="/tmp"))
        self.env = dict(os.environ, OTPPI_ROOT=str(self.root), PYTHONUNBUFFERED="1")
        self.env.pop("NOTIFY_SOCKET", None)
        self.procs: list[subprocess.Popen] = []
        self.sim: Simulator | None = None
        self.cli("migrate")
        self.cli("settings", "set", "sms.queue_timeout", "3600")
        for key, value in settings.items():
            self.cli("settings", "set", f"feeder_{name}.{key}", value)
        if modem:
            self.sim = Simulator(count=1, directory=str(self.root / "sim"))
            self.sim.start()
            self.cli("modem", "add", "m0", "--port", self.sim[0].path, "--default")
            self.spawn("otppi.modem")
            self.wait(lambda: self._modem_ready(), "the modem component")
        self.feeder = self.spawn(f"otppi.feeders.{name}")
        self.wait(self._connected, f"feeder-{name} to connect")

    def cli(self, *args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "otppi.cli", *args], env=self.env, text=True,
                                capture_output=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"otppi {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def spawn(self, module: str) -> subprocess.Popen:
        log = (self.root / f"{module}.log").open("ab")
        proc = subprocess.Popen([sys.executable, "-m", module], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(proc)
        return proc

    def query(self, sql: str) -> list[tuple]:
        con = sqlite3.connect(Paths(self.root).database, timeout=15)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def _connected(self) -> bool:
        return bool(self.query("select 1 from event where kind = 'feeder' and result = 'connected'"))

    def _modem_ready(self) -> bool:
        answer = control.call(Paths(self.root), {"op": "status"}, 5.0)
        return answer.get("ok") and [m["state"] for m in answer["modems"]] == ["ready"]

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args[-1]} exited ({self.root})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what} ({self.root})")
            time.sleep(0.02)  # other processes: nothing to wait on but their rows

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            proc.wait(20)
        if self.sim is not None:
            self.sim.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------- publishers (the app server's side)


def amqp_publisher(broker, topic: str) -> tuple[Callable[[bytes], None], Callable[[], None]]:
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        broker.host, broker.port, credentials=pika.PlainCredentials(broker.user, broker.password)))
    channel = conn.channel()
    props = pika.BasicProperties(delivery_mode=2)
    return (lambda body: channel.basic_publish("", topic, body, props)), conn.close


def mqtt_publisher(broker, topic: str) -> tuple[Callable[[bytes], None], Callable[[], None]]:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{secrets.token_hex(3)}")
    client.username_pw_set(broker.user, broker.password)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(broker.host, broker.port)
    client.loop_start()
    infos: list = []

    def publish(body: bytes) -> None:
        infos.append(client.publish(topic, body, qos=1))

    def close() -> None:
        for info in infos:
            info.wait_for_publish(30)
        client.loop_stop()
        client.disconnect()

    return publish, close


def redis_publisher(broker, topic: str) -> tuple[Callable[[bytes], None], Callable[[], None]]:
    client = redis.Redis(host=broker.host, port=broker.port, username=broker.user, password=broker.password)
    return (lambda body: client.xadd(topic, {"data": body})), client.close


def ws_publisher(broker, topic: str) -> tuple[Callable[[bytes], None], Callable[[], None]]:
    conn = ws_connect(f"ws://{broker.host}:{broker.port}{broker.path}?topic={topic}",
                      additional_headers={"Authorization": build_authorization_basic(APP_USER, APP_PASSWORD)})
    return (lambda body: conn.send(body.decode())), conn.close


def feeder_settings(name: str, broker, topic: str) -> dict[str, str]:
    settings = {"enabled": "true", "host": broker.host, "port": str(broker.port), "topic": topic,
                "username": broker.user if name != "ws" else DEVICE_USER,
                "password": broker.password if name != "ws" else DEVICE_PASSWORD}
    if name == "mqtt":
        settings["client_id"] = f"bench-{topic}"
    if name == "redis":
        settings["mode"] = "streams"
        settings["username"] = ""  # the default user, with requirepass: one consumer named after the device
    if name == "ws":
        settings["path"] = broker.path
    return settings


PUBLISHERS = {"amqp": amqp_publisher, "mqtt": mqtt_publisher, "redis": redis_publisher, "ws": ws_publisher}


@dataclass
class Figures:
    name: str
    rate: float = 0.0
    committed: int = 0
    burst: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    rss_kib: int = 0
    error: str = ""


def throughput(name: str, broker, scale: Scale, fig: Figures) -> None:
    topic = f"bench-{secrets.token_hex(4)}"
    device = Device(name, feeder_settings(name, broker, topic), modem=False)
    try:
        publish, close = PUBLISHERS[name](broker, topic)
        keys = [f"t{i}-{topic}" for i in range(scale.burst)]
        started = time.monotonic()
        sender = threading.Thread(target=lambda: [publish(request(k)) for k in keys])
        sender.start()
        device.wait(lambda: device.query("select count(*) from sms_outbox")[0][0] >= scale.burst,
                    "the burst to be committed", timeout=600)
        elapsed = time.monotonic() - started
        sender.join()
        close()
        fig.burst = scale.burst
        fig.committed = device.query("select count(distinct message_key) from sms_outbox")[0][0]
        fig.rate = scale.burst / elapsed
        fig.rss_kib = proc_status(device.feeder.pid, "VmHWM")
    finally:
        device.close()


def latency(name: str, broker, scale: Scale, fig: Figures) -> None:
    topic = f"bench-{secrets.token_hex(4)}"
    device = Device(name, feeder_settings(name, broker, topic), modem=True)
    try:
        publish, close = PUBLISHERS[name](broker, topic)
        modem = device.sim[0]
        samples = []
        for i in range(scale.latency_samples + 10):
            before = len(modem.sent.parts())
            t0 = time.time()
            publish(request(f"l{i}-{topic}"))
            device.wait(lambda: len(modem.sent.parts()) > before, "the SMS at the modem", timeout=30)
            if i >= 10:  # the first ones warm caches up
                samples.append((modem.sent.parts()[-1].time.timestamp() - t0) * 1000)
        close()
        samples.sort()
        fig.p50_ms, fig.p99_ms = percentile(samples, 0.50), percentile(samples, 0.99)
    finally:
        device.close()


def report(figures: list[Figures], info: dict[str, str]) -> list[str]:
    lines = [f"OTP-Pi feeder benchmark, {info['date']}",
             f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram']} RAM, Python {info['python']}; "
             f"load average before the run {info['load']}",
             "brokers: our own rabbitmq-server, mosquitto, redis-server (AOF, appendfsync always) and otppi-wsbroker "
             "on loopback, sharing the CPUs with the feeder",
             "",
             "feeder   burst  committed  req/s   publish→Ctrl-Z p50 ms  p99 ms  feeder peak RSS"]
    for f in figures:
        if f.error:
            lines.append(f"{f.name:<7}  failed: {f.error}")
            continue
        lines.append(f"{f.name:<7} {f.burst:>6} {f.committed:>10} {f.rate:>6.0f}   {f.p50_ms:>21.1f} {f.p99_ms:>7.1f}"
                     f"  {f.rss_kib / 1024:.1f} MiB")
    lines += ["", "goals (2-core machine):"]
    for f in figures:
        if f.error:
            continue
        if f.name != "ws":
            lines.append(f"  {f.name} >= {GOAL_RATE:.0f} req/s committed: {f.rate:.0f}/s  "
                         f"{'met' if f.rate >= GOAL_RATE else 'MISSED'}")
        lines.append(f"  {f.name} publish -> Ctrl-Z p50 <= {GOAL_P50_MS:.0f} ms: {f.p50_ms:.1f} ms  "
                     f"{'met' if f.p50_ms <= GOAL_P50_MS else 'MISSED'}")
    return lines


def main(quick: bool, only: tuple[str, ...] = NAMES) -> int:
    from .run import machine

    scale = QUICK if quick else FULL
    info = machine()
    base = Path(tempfile.mkdtemp(prefix="fbrk", dir="/tmp"))
    brokers = start_all(base)
    ws = WsBroker(base / "ws").start()
    brokers["ws"] = ws
    figures = []
    try:
        for name in only:
            fig = Figures(name)
            try:
                throughput(name, brokers[name], scale, fig)
                latency(name, brokers[name], scale, fig)
            except Exception as exc:  # one feeder failing must not hide the others' figures
                fig.error = str(exc)[:200]
            figures.append(fig)
    finally:
        ws.stop()
        for broker in brokers.values():
            if broker is not ws:
                broker.stop()
        shutil.rmtree(base, ignore_errors=True)
    print("\n".join(report(figures, info)), flush=True)
    failed = [f for f in figures if f.error or f.committed != f.burst]
    return 1 if failed else 0
