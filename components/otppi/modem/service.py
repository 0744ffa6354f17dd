"""The modem component: every serial port, SMS out and in, USSD, modem tools."""

from __future__ import annotations

import logging

from .. import keys
from ..component import Runtime, setup_logging
from ..doorbell import Doorbell, ring
from .control import ControlServer, ModemControl
from .dispatcher import Dispatcher
from .internet import Internet

log = logging.getLogger("otppi.modem")


def main(argv: list[str] | None = None) -> int:
    setup_logging("modem")
    rt = Runtime("modem")
    rt.open_store()
    bell = Doorbell(rt.paths.doorbell("modem"))
    rt.install_signals(on_stop=lambda: ring(bell.path))
    dispatcher = Dispatcher(rt.paths, keys.otp_key(rt.paths))
    internet = Internet(rt.paths)
    control = ControlServer(rt.paths, ModemControl(dispatcher, internet))
    try:
        requeued = dispatcher.requeue_in_flight()
        if requeued:
            log.warning("%d message(s) were being sent when the component stopped: queued again", requeued)
        rt.settings_changed()
        dispatcher.reload()
        control.start()
        rt.ready(f"{len(dispatcher.workers)} modem(s)")
        sleep = 0.0
        while not rt.stopped.is_set():
            rt.notifier.ping()
            bell.wait(rt.notifier.loop_timeout(sleep))
            if rt.stopped.is_set():
                break
            if rt.settings_changed():
                dispatcher.reload()
            sleep = dispatcher.turn()
            internet.reap(dispatcher.workers)
    finally:
        control.stop()
        internet.stop()
        dispatcher.stop()
        bell.close()
        rt.close()
    return 0
