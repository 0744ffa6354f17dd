"""Random and hostile bodies against the REST API over HTTP: only table codes, never a 500."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from otppi import codes

from .helpers import ApiProcess, otppi
from .hostile import batches

pytestmark = pytest.mark.slow

PATHS = ["/api/otp", "/api/sms", "/api/block", "/api/unblock"]


def test_every_hostile_body_gets_a_table_code_and_a_good_request_behind_it_is_served(api: ApiProcess,
                                                                                      api_root: Path) -> None:
    otppi(api_root, "settings", "set", "api.wait_timeout", "0")  # queued requests answer 1111 at once

    @settings(max_examples=100, deadline=None, derandomize=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(batches())
    def hostile(batch: list[bytes]) -> None:
        for i, body in enumerate(batch):
            reply = api.post(PATHS[i % len(PATHS)], body)
            assert reply.status_code < 500, (reply.status_code, reply.text[:300], body[:200])
            answer = reply.json()
            assert answer["response_code"] in codes.ALL and answer["message"], answer
        marker = uuid.uuid4().hex
        good = api.post("/api/sms", {"command": "echo", "data": {"marker": marker}})
        assert good.status_code == 200 and good.json()["data"] == {"marker": marker}

    hostile()
