"""The modem component: every serial port, SMS out and in, USSD, modem tools."""

from __future__ import annotations

from .. import keys
from ..component import Runtime, run_owner_loop, setup_logging
from ..doorbell import Doorbell, ring
from .control import ControlServer, ModemControl
from .dispatcher import Dispatcher
from .internet import Internet


def main(argv: list[str] | None = None) -> int:
    setup_logging("modem")
    rt = Runtime("modem")
    rt.open_store()
    bell = Doorbell(rt.paths.doorbell("modem"))
    rt.install_signals(on_stop=lambda: ring(bell.path))
    dispatcher = Dispatcher(rt.paths, keys.otp_key(rt.paths))
    internet = Internet(rt.paths)
    control = ControlServer(rt.paths, ModemControl(dispatcher, internet))
    def loaded() -> str:
        control.start()
        return f"{len(dispatcher.workers)} modem(s)"

    try:
        run_owner_loop(rt, bell, dispatcher, noun="message(s)", loaded=loaded,
                       each_turn=lambda: internet.reap(dispatcher.workers))
    finally:
        control.stop()
        internet.stop()
        dispatcher.stop()
        bell.close()
        rt.close()
    return 0
