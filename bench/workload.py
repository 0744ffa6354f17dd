"""The requests the benchmark sends: OTPs created over REST, then validated with their real codes.

The device keeps only a keyed hash of each code; the clear code exists in the
sealed body of the queued SMS until a modem sends it. With no modem running
the bodies stay queued, so the benchmark (which owns the throwaway root and
its keys) unseals them to learn the codes, and every validation it sends is a
correct one: the path a real client takes most.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

TEMPLATE = "Your OTP is %s"
_CODE = re.compile(r"Your OTP is ([0-9]+)")
EXPIRES_IN_S = 3600  # far beyond the run, so no OTP expires under test


def encode(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def create_requests(run: str, first: int, count: int) -> list[dict[str, Any]]:
    """create-otp requests with distinct references and receivers, shaped like the spec's example."""
    now = int(time.time())
    return [
        {"command": "create-otp", "data": {
            "date_time": now,
            "expiration": now + EXPIRES_IN_S,
            "receiver": f"0812{i:07d}",
            "message": TEMPLATE,
            "reference": f"bench-{run}-{i:08d}",
            "param1": str(100_000 + i),
            "param2": "1234567890",
            "param3": "987654",
            "param4": "674527846556468254",
        }}
        for i in range(first, first + count)
    ]


def validate_requests(created: list[dict[str, Any]], codes: dict[str, str]) -> list[dict[str, Any]]:
    """The matching validate-otp request, with the right code, for every created OTP that has one."""
    out = []
    for req in created:
        d = req["data"]
        code = codes.get(d["reference"])
        if code is None:
            continue
        out.append({"command": "validate-otp", "data": {
            "date_time": int(time.time()),
            "receiver": d["receiver"],
            "otp": code,
            "reference": d["reference"],
            **{k: d[k] for k in ("param1", "param2", "param3", "param4")},
        }})
    return out


def read_codes(root: Path) -> dict[str, str]:
    """reference → clear code, from the sealed bodies of the queued OTP messages in *root*'s store."""
    from otppi import keys
    from otppi.paths import Paths
    from otppi.seal import unseal
    from otppi.store.db import close_database, open_database
    from otppi.store.models import Otp, SmsOutbox

    paths = Paths(root)
    key = keys.otp_key(paths)
    open_database(paths.database)
    try:
        rows = (Otp.select(Otp.reference, SmsOutbox.body)
                .join(SmsOutbox, on=(Otp.sms == SmsOutbox.id))
                .where(SmsOutbox.body.is_null(False))
                .tuples())
        codes = {}
        for reference, body in rows:
            match = _CODE.fullmatch(unseal(key, body))
            if match:
                codes[reference] = match.group(1)
        return codes
    finally:
        close_database()
