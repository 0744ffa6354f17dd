"""The admin component: the admin web on its own port (8888), never on the public API ports."""

from __future__ import annotations

import logging
import threading

from cheroot import wsgi

from ..component import Runtime, setup_logging
from ..store.models import AdminSettings
from .app import create_app

log = logging.getLogger("otppi.admin")


def main(argv: list[str] | None = None) -> int:
    setup_logging("admin")
    rt = Runtime("admin")
    rt.install_signals()
    rt.open_store()
    app = create_app(rt.paths)
    settings = AdminSettings.load()
    bind = (settings.bind_address, settings.port)
    # Server-Sent Events keep one thread per open monitor page: leave room for them.
    server = wsgi.Server(bind, app, numthreads=12, server_name="otppi-admin", shutdown_timeout=2)
    server.prepare()  # binds now: a taken port fails start-up loudly
    thread = threading.Thread(target=server.serve, name="admin-http", daemon=True)
    thread.start()
    log.info("admin web on http://%s:%d", *bind)
    try:
        rt.settings_changed()
        rt.ready(f"http://{bind[0]}:{bind[1]}")
        while rt.sleep(1.0):
            if rt.settings_changed():
                fresh = AdminSettings.load()
                if (fresh.bind_address, fresh.port) != bind:
                    log.warning("admin web address changed: restarting to apply it")
                    return 75  # systemd (Restart=on-failure) and the dev launcher start it again
    finally:
        app.extensions["otppi_stopping"].set()
        server.stop()
        thread.join(5)
        rt.close()
    return 0
