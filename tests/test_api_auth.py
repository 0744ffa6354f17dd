"""REST Basic auth inside the api's application: argon2 off the store's threads, the same cost for every name."""

from __future__ import annotations

import asyncio
import base64
import threading

from otppi.api.app import MAX_HASH_QUEUE, RestApi
from otppi.auth import ARGON2, CredentialCache, hash_password
from otppi.handler import Handler
from otppi.store.db import db
from otppi.store.models import ApiUser


class RecordingCache(CredentialCache):
    """A real credential cache that also notes each argon2 verification it is asked for."""

    def __init__(self, gate: threading.Event | None = None):
        super().__init__()
        self.verified: list[str] = []
        self.gate = gate

    def verify(self, stored_hash: str, password: str) -> bool:
        self.verified.append(stored_hash)
        if self.gate is not None:
            self.gate.wait(30)
        return super().verify(stored_hash, password)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_unknown_users_cost_an_argon2_check_like_known_ones(handler: Handler) -> None:
    with db.atomic():
        ApiUser.create(username="known", password_hash=hash_password("right"))
    cache = RecordingCache()
    app = RestApi(handler, cache=cache)
    runs, decoys = ARGON2.runs, ARGON2.decoys
    try:
        assert asyncio.run(app._authenticate(basic("known", "wrong"))) is None
        assert asyncio.run(app._authenticate(basic("nobody", "wrong"))) is None
        assert (ARGON2.runs - runs, ARGON2.decoys - decoys) == (2, 1), "the unknown user cost a decoy check"
        assert asyncio.run(app._authenticate(basic("known", "right"))) == "known"
        assert asyncio.run(app._authenticate(basic("known", "right"))) == "known"
        assert ARGON2.runs - runs == 3, "a remembered credential costs no second argon2 check"
    finally:
        app.close()


def test_a_burst_of_one_new_credential_costs_one_argon2_check(handler: Handler) -> None:
    with db.atomic():
        ApiUser.create(username="app", password_hash=hash_password("right"))
    gate = threading.Event()
    cache = RecordingCache(gate)
    app = RestApi(handler, cache=cache)

    async def burst() -> list[str | None]:
        tasks = [asyncio.create_task(app._authenticate(basic("app", "right"))) for _ in range(MAX_HASH_QUEUE * 3)]
        while not cache.verified:
            await asyncio.sleep(0.01)
        gate.set()
        return await asyncio.gather(*tasks)

    try:
        results = asyncio.run(burst())
    finally:
        gate.set()
        app.close()
    assert results == ["app"] * (MAX_HASH_QUEUE * 3), "none refused as busy, none checked twice"
    assert len(cache.verified) == 1


def test_a_flood_of_new_credentials_is_refused_instead_of_queued(handler: Handler) -> None:
    with db.atomic():
        ApiUser.create(username="app", password_hash=hash_password("right"))
    gate = threading.Event()
    app = RestApi(handler, cache=RecordingCache(gate))

    async def flood() -> list[str | None]:
        tasks = [asyncio.create_task(app._authenticate(basic("app", f"guess {i}"))) for i in range(MAX_HASH_QUEUE + 5)]
        await asyncio.sleep(0)
        while sum(t.done() for t in tasks) < 5:  # the ones past the bound are answered at once
            await asyncio.sleep(0.01)
        gate.set()
        return await asyncio.gather(*tasks)

    try:
        results = asyncio.run(flood())
    finally:
        gate.set()
        app.close()
    assert results.count("") == 5, "past the bound: 'busy' (503), not queued"
    assert results.count(None) == MAX_HASH_QUEUE
