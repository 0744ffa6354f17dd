"""The api component: HTTP and HTTPS listeners from API Settings, applied live."""

from __future__ import annotations

import logging
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from .. import keys
from ..component import Runtime, setup_logging
from ..control import modem_control
from ..handler import Context, Handler
from ..outcome import OutcomeWatcher
from ..paths import Paths
from ..store import retention
from ..store.models import ApiSettings, KeystoreEntry
from ..store.settings import PageCache
from .app import create_app

log = logging.getLogger("otppi.api")

THREADS = 16
PURGE_EVERY = 3600.0


@dataclass(frozen=True)
class ListenerSpec:
    """What a listener is bound to; a change of any field rebinds it."""

    scheme: str
    host: str
    port: int
    cert: str = ""
    key: str = ""


def wanted_listeners(settings: ApiSettings, paths: Paths) -> list[ListenerSpec]:
    specs = []
    if settings.http_enabled:
        specs.append(ListenerSpec("http", settings.bind_address, settings.http_port))
    if settings.https_enabled:
        cert, key = tls_material(settings, paths)
        specs.append(ListenerSpec("https", settings.bind_address, settings.https_port, str(cert), str(key)))
    return specs


def tls_material(settings: ApiSettings, paths: Paths) -> tuple[Path, Path]:
    """The certificate: a keystore entry by name, else configured files, else the device's own."""
    if settings.https_keystore:
        entry = KeystoreEntry.get_or_none(
            (KeystoreEntry.name == settings.https_keystore) & (KeystoreEntry.active == True)  # noqa: E712
        )
        if entry is None:
            raise RuntimeError(f"keystore entry {settings.https_keystore!r} does not exist or is inactive")
        folder = paths.runtime_dir / "tls"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        cert, key = folder / f"{entry.id}.crt", folder / f"{entry.id}.key"
        cert.write_text(entry.certificate)
        key.touch(mode=0o600)
        key.write_text(entry.private_key)
        return cert, key
    if settings.https_cert_file and settings.https_key_file:
        return Path(settings.https_cert_file), Path(settings.https_key_file)
    return keys.ensure_tls(paths)


class Listener:
    def __init__(self, spec: ListenerSpec, app):
        self.spec = spec
        self.server = wsgi.Server((spec.host, spec.port), app, numthreads=THREADS,
                                  server_name="otppi", shutdown_timeout=2)
        if spec.scheme == "https":
            adapter = BuiltinSSLAdapter(spec.cert, spec.key)
            adapter.context.minimum_version = ssl.TLSVersion.TLSv1_2
            self.server.ssl_adapter = adapter
        self.server.prepare()  # binds now, so a taken port fails here, loudly
        self.thread = threading.Thread(target=self.server.serve, name=f"{spec.scheme}-{spec.port}", daemon=True)
        self.thread.start()
        log.info("listening on %s://%s:%d", spec.scheme, spec.host, self.server.bind_addr[1])

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(timeout=5)


class Listeners:
    """Keeps the running listeners equal to what the settings ask for."""

    def __init__(self, app):
        self.app = app
        self.running: dict[ListenerSpec, Listener] = {}

    def apply(self, specs: list[ListenerSpec], *, strict: bool) -> None:
        for spec in list(self.running):
            if spec not in specs:
                self.running.pop(spec).stop()
        for spec in specs:
            if spec in self.running:
                continue
            try:
                self.running[spec] = Listener(spec, self.app)
            except (OSError, ssl.SSLError, RuntimeError) as exc:
                if strict:
                    raise
                log.error("cannot listen on %s://%s:%d: %s", spec.scheme, spec.host, spec.port, exc)

    def stop(self) -> None:
        for listener in self.running.values():
            listener.stop()
        self.running.clear()


def main(argv: list[str] | None = None) -> int:
    setup_logging("api")
    rt = Runtime("api")
    rt.install_signals()
    rt.open_store()
    watcher = OutcomeWatcher(rt.paths, "api")
    pages = PageCache()
    ctx = Context(paths=rt.paths, otp_key=keys.otp_key(rt.paths), watcher=watcher,
                  modem_control=modem_control(rt.paths), settings=pages)
    listeners = Listeners(create_app(Handler(ctx)))
    try:
        rt.settings_changed()
        listeners.apply(wanted_listeners(ApiSettings.load(), rt.paths), strict=True)
        rt.ready(f"{len(listeners.running)} listener(s)")
        purge_at = 0.0
        while rt.sleep(1.0):
            if time.monotonic() >= purge_at:  # housekeeping for the whole store, hourly
                purge_at = time.monotonic() + PURGE_EVERY
                removed = retention.purge(time.time())
                if any(removed.values()):
                    log.info("removed old rows: %s", removed)
            if rt.settings_changed():
                pages.clear()  # requests read the new pages from now on
                try:
                    specs = wanted_listeners(ApiSettings.load(), rt.paths)
                except (RuntimeError, OSError) as exc:
                    log.error("HTTPS settings unusable: %s", exc)
                    continue
                listeners.apply(specs, strict=False)
    finally:
        rt.close()
        listeners.stop()
        watcher.close()
    return 0
