"""The mailer component: the email outbox, sent through the pool of SMTP accounts."""

from __future__ import annotations

import logging

from .. import keys
from ..component import Runtime, setup_logging
from ..doorbell import Doorbell, ring
from .dispatcher import Dispatcher

log = logging.getLogger("otppi.mailer")


def main(argv: list[str] | None = None) -> int:
    setup_logging("mailer")
    rt = Runtime("mailer")
    rt.open_store()
    bell = Doorbell(rt.paths.doorbell("mailer"))
    rt.install_signals(on_stop=lambda: ring(bell.path))
    dispatcher = Dispatcher(rt.paths, keys.otp_key(rt.paths))
    try:
        requeued = dispatcher.requeue_in_flight()
        if requeued:
            log.warning("%d email(s) were being sent when the component stopped: queued again", requeued)
        rt.settings_changed()
        dispatcher.reload()
        rt.ready(f"{len(dispatcher.pool.accounts)} active email account(s)")
        sleep = 0.0
        while not rt.stopped.is_set():
            rt.notifier.ping()
            bell.wait(rt.notifier.loop_timeout(sleep))
            if rt.stopped.is_set():
                break
            if rt.settings_changed():
                dispatcher.reload()
            sleep = dispatcher.turn()
    finally:
        dispatcher.stop()
        bell.close()
        rt.close()
    return 0
