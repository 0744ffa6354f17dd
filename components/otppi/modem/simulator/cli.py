"""Run simulated modems until SIGTERM or SIGINT: `python -m otppi.modem.simulator`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from . import Simulator
from .profiles import PROFILES


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m otppi.modem.simulator",
        description="Simulated GSM modems on pseudo-terminals, with stable links DIR/modem<N> "
                    "and a JSON-lines control socket DIR/control.sock.")
    parser.add_argument("--count", type=int, default=1, help="number of modems (default 1)")
    parser.add_argument("--dir", required=True, help="directory for the links and control socket")
    parser.add_argument("--profile", action="append", choices=sorted(PROFILES),
                        help="modem profile; repeat to give each modem its own (used in turn)")
    parser.add_argument("--network-delay", type=float, default=0.0,
                        help="seconds each send and USSD request spends on the network")
    parser.add_argument("--sim-busy", type=float, default=0.0,
                        help="seconds the SIM answers 'SIM busy' after power-up")
    parser.add_argument("--pin", help="lock every SIM with this PIN")
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.count < 1:
        print("--count must be at least 1", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    simulator = Simulator(args.count, args.profile, directory=args.dir,
                          network_delay=args.network_delay, sim_busy_seconds=args.sim_busy,
                          pin=args.pin, control=True)
    with simulator:
        for modem in simulator:
            print(f"modem{modem.index} {modem.path} -> {modem.slave_path} "
                  f"profile={modem.profile.name} imei={modem.imei} msisdn={modem.sim.msisdn} "
                  f"operator={modem.sim.operator}", flush=True)
        logging.getLogger(__name__).info("control socket %s", simulator.control_path)
        stop.wait()
    return 0
