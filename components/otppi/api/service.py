"""The api component: HTTP and HTTPS listeners from API Settings, applied live."""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path


from .. import keys
from ..component import Runtime, setup_logging
from ..control import modem_control
from ..handler import Context, Handler
from ..outcome import OutcomeWatcher
from ..paths import Paths
from ..store import retention
from ..store.models import ApiSettings, KeystoreEntry
from ..store.settings import PageCache
from .app import RestApi, error
from .http import HttpServer

log = logging.getLogger("otppi.api")

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


def tls_context(spec: ListenerSpec) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(spec.cert, spec.key)
    return context


class Listeners:
    """Keeps the running listeners equal to what the settings ask for, on an event loop of their own."""

    def __init__(self, app: RestApi):
        self.app = app
        self.running: dict[ListenerSpec, HttpServer] = {}
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(self._loop_error)
        self._thread = threading.Thread(target=self.loop.run_forever, name="http", daemon=True)
        self._thread.start()

    @staticmethod
    def _loop_error(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        log.warning("event loop: %s", context.get("message"), exc_info=context.get("exception"))

    def _call(self, coroutine) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def apply(self, specs: list[ListenerSpec], *, strict: bool) -> None:
        for spec in list(self.running):
            if spec not in specs:
                self._call(self.running.pop(spec).stop())
        for spec in specs:
            if spec in self.running:
                continue
            try:
                server = HttpServer(self.app, error, spec.host, spec.port,
                                    tls=tls_context(spec) if spec.scheme == "https" else None)
                self._call(server.start())  # binds now, so a taken port fails here, loudly
            except (OSError, ssl.SSLError, RuntimeError) as exc:
                message = f"cannot listen on {spec.scheme}://{spec.host}:{spec.port}: {exc}"
                if strict:
                    raise SystemExit(f"otppi-api: {message}") from None
                log.error("%s", message)
                continue
            self.running[spec] = server
            log.info("listening on %s://%s:%d", spec.scheme, spec.host, server.bound_port)

    def stop(self) -> None:
        """Requests that wait for an outcome are answered (1111) before the listeners close."""
        self.app.watcher.release()
        for server in self.running.values():
            self._call(server.stop())
        self.running.clear()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


def main(argv: list[str] | None = None) -> int:
    setup_logging("api")
    rt = Runtime("api")
    rt.install_signals()
    rt.open_store()
    watcher = OutcomeWatcher(rt.paths, "api")
    pages = PageCache()
    ctx = Context(paths=rt.paths, otp_key=keys.otp_key(rt.paths), watcher=watcher,
                  modem_control=modem_control(rt.paths), settings=pages)
    app = RestApi(Handler(ctx))
    listeners = Listeners(app)
    try:
        rt.settings_changed()
        pages(ApiSettings)  # read here, not on the event loop
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
                pages(ApiSettings)
                try:
                    specs = wanted_listeners(ApiSettings.load(), rt.paths)
                except (RuntimeError, OSError) as exc:
                    log.error("HTTPS settings unusable: %s", exc)
                    continue
                listeners.apply(specs, strict=False)
    finally:
        rt.close()
        listeners.stop()
        app.close()
        watcher.close()
    return 0
