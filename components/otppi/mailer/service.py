"""The mailer component: the email outbox, sent through the pool of SMTP accounts."""

from __future__ import annotations

from .. import keys
from ..component import Runtime, run_owner_loop, setup_logging
from ..doorbell import Doorbell, ring
from .dispatcher import Dispatcher


def main(argv: list[str] | None = None) -> int:
    setup_logging("mailer")
    rt = Runtime("mailer")
    rt.open_store()
    bell = Doorbell(rt.paths.doorbell("mailer"))
    rt.install_signals(on_stop=lambda: ring(bell.path))
    dispatcher = Dispatcher(rt.paths, keys.otp_key(rt.paths))
    try:
        run_owner_loop(rt, bell, dispatcher, noun="email(s)",
                       loaded=lambda: f"{len(dispatcher.pool.accounts)} active email account(s)")
    finally:
        dispatcher.stop()
        bell.close()
        rt.close()
    return 0
