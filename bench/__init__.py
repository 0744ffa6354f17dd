"""Benchmarks of the real components on a throwaway root: ``./build.sh bench`` (``python -m bench``).

``run``: the REST API. A root provisioned with the real CLI, ``python -m
otppi.api`` with ``api.wait_timeout`` 0 (so create-otp answers 1111, queued, at
once), and a load generator in a process of its own (``load``); create-otp and
validate-otp are measured at full load (N clients in a closed loop) and at
half that rate (an open loop), with the api's CPU and peak RSS.

``modem``: simulated modems behind the real api and modem components.

Figures and what limits them are kept in ``docs/performance.md``.
"""
