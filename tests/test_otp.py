"""The OTP engine through the one handler: keyed hashes only, single use, expiry, attempt limit."""

from __future__ import annotations

import re
import time

import pytest

from otppi import codes, keys
from otppi.contract import validate as build
from otppi.handler import Handler
from otppi.paths import Paths
from otppi.seal import unseal
from otppi.store import outbox
from otppi.store.models import Otp, SmsOutbox

from .helpers import store_bytes

RECEIVER = "08126666666"
PARAMS = {"param1": "100000", "param2": "1234567890", "param3": "987654", "param4": "674527846556468254"}


def create(handler: Handler, reference: str = "ref-alpha", receiver: str = RECEIVER, source: str = "test",
           **extra) -> dict:
    data = {"receiver": receiver, "reference": reference, "message": "Your OTP is %s", **PARAMS, **extra}
    return handler.handle(build({"command": "create-otp", "data": data}), source=source)


def check(handler: Handler, code: str, reference: str = "ref-alpha", receiver: str = RECEIVER, source: str = "test",
          **params) -> str:
    data = {"receiver": receiver, "reference": reference, "otp": code, **PARAMS, **params}
    return handler.handle(build({"command": "validate-otp", "data": data}), source=source)["response_code"]


def deliver(paths: Paths, state: str = "sent") -> list[str]:
    """Do what the modem does: take each queued message, read its body, finish it."""
    bodies = []
    for row in SmsOutbox.select().where(SmsOutbox.state == "queued"):
        assert outbox.claim(SmsOutbox, row.id)
        bodies.append(unseal(keys.otp_key(paths), row.body))
        outbox.finish(paths, SmsOutbox, row.id, state, modem="sim0", error="" if state == "sent" else "CMS 38")
    return bodies


def code_of(body: str) -> str:
    return re.fullmatch(r"Your OTP is (\d+)", body).group(1)


def test_create_then_validate_once(handler: Handler, paths: Paths) -> None:
    assert create(handler)["response_code"] == codes.QUEUED
    code = code_of(deliver(paths)[0])
    assert len(code) == 6
    assert check(handler, code) == codes.SUCCESS
    assert check(handler, code) == codes.OTP_INVALID, "an OTP is single use"


def test_receiver_forms_are_the_same_number(handler: Handler, paths: Paths) -> None:
    create(handler, receiver="+62 812-6666-666")
    code = code_of(deliver(paths)[0])
    assert check(handler, code, receiver="08126666666") == codes.SUCCESS


def test_database_never_holds_the_clear_code(handler: Handler, paths: Paths) -> None:
    found_codes = []
    for i in range(20):
        create(handler, reference=f"ref-{chr(97 + i)}")
        queued = store_bytes(paths.database)
        body = unseal(keys.otp_key(paths), SmsOutbox.select().order_by(SmsOutbox.id.desc()).get().body)
        assert body.encode() not in queued, "the queued body must be sealed"
        found_codes.append(code_of(body))
    deliver(paths)
    raw = store_bytes(paths.database)
    assert b"Your OTP is" not in raw
    assert [c for c in found_codes if c.encode() in raw and c not in "628126666666"] == []
    # The scan itself works: a clear value written through the same store is found.
    SmsOutbox.create(receiver="628", body="Your OTP is 999999")
    assert b"Your OTP is 999999" in store_bytes(paths.database)


def test_only_a_keyed_hash_is_stored(handler: Handler, paths: Paths) -> None:
    create(handler)
    row = Otp.get()
    assert re.fullmatch(r"[0-9a-f]{64}", row.mac)
    assert set(Otp._meta.fields) == {"id", "owner", "reference", "mac", "channel", "state", "attempts", "created_at",
                                     "expires_at", "sms", "email"}


def test_expiry(handler: Handler, paths: Paths) -> None:
    create(handler, expiration=time.time() + 1)
    code = code_of(deliver(paths)[0])
    Otp.update(expires_at=time.time() - 1).execute()
    assert check(handler, code) == codes.OTP_EXPIRED


def test_default_expiry_comes_from_the_setting(handler: Handler, paths: Paths) -> None:
    from otppi.store.settings import set_text

    set_text("general.otp_expiration", "60000")
    before = time.time()
    create(handler)
    assert before + 59 <= Otp.get().expires_at <= time.time() + 61


def test_fifth_wrong_attempt_voids(handler: Handler, paths: Paths) -> None:
    create(handler)
    code = code_of(deliver(paths)[0])
    wrong = "000000" if code != "000000" else "111111"
    assert [check(handler, wrong) for _ in range(4)] == [codes.OTP_INVALID] * 4
    assert check(handler, wrong) == codes.OTP_VOID
    assert check(handler, code) == codes.OTP_VOID, "the right code no longer works once void"


def test_wrong_code_and_unknown_reference_answer_alike(handler: Handler, paths: Paths) -> None:
    create(handler)
    code = code_of(deliver(paths)[0])
    wrong = "000000" if code != "000000" else "111111"
    a = handler.handle(build({"command": "validate-otp", "data": {
        "receiver": RECEIVER, "reference": "ref-alpha", "otp": wrong, **PARAMS}}), source="test")
    b = handler.handle(build({"command": "validate-otp", "data": {
        "receiver": RECEIVER, "reference": "ref-unknown", "otp": wrong, **PARAMS}}), source="test")
    a["data"].pop("reference"), b["data"].pop("reference")
    assert a == b


@pytest.mark.parametrize("field", ["param1", "param2", "param3", "param4"])
def test_every_param_must_match(handler: Handler, paths: Paths, field: str) -> None:
    create(handler)
    code = code_of(deliver(paths)[0])
    assert check(handler, code, **{field: "tampered"}) == codes.OTP_INVALID
    assert check(handler, code, receiver="08120000000") == codes.OTP_INVALID
    assert check(handler, code) == codes.SUCCESS


def test_live_duplicate_reference_is_refused(handler: Handler, paths: Paths) -> None:
    assert create(handler)["response_code"] == codes.QUEUED
    assert create(handler)["response_code"] == codes.OTP_LIVE
    assert SmsOutbox.select().count() == 1, "nothing is queued for the refused duplicate"


def test_another_source_cannot_validate_probe_or_void_a_reference(handler: Handler, paths: Paths) -> None:
    create(handler, source="rest:alice")
    code = code_of(deliver(paths)[0])
    # Bob, another API user, knows the reference (and even the code): to him it is an unknown reference.
    assert [check(handler, code, source="rest:bob") for _ in range(6)] == [codes.OTP_INVALID] * 6
    assert check(handler, code, source="amqp") == codes.OTP_INVALID
    row = Otp.get()
    assert (row.owner, row.state, row.attempts) == ("rest:alice", "live", 0), "no attempt burnt, not void"
    assert check(handler, code, source="rest:alice") == codes.SUCCESS


def test_two_sources_may_hold_the_same_reference_at_once(handler: Handler, paths: Paths) -> None:
    assert create(handler, source="rest:alice")["response_code"] == codes.QUEUED
    assert create(handler, source="rest:bob")["response_code"] == codes.QUEUED, "not 1201: Bob's own reference"
    assert create(handler, source="rest:bob")["response_code"] == codes.OTP_LIVE
    alice, bob = (code_of(body) for body in deliver(paths))
    if alice != bob:
        assert check(handler, alice, source="rest:bob") == codes.OTP_INVALID
    assert check(handler, bob, source="rest:bob") == codes.SUCCESS
    assert check(handler, alice, source="rest:alice") == codes.SUCCESS


def test_used_or_expired_reference_can_be_reused(handler: Handler, paths: Paths) -> None:
    create(handler)
    assert check(handler, code_of(deliver(paths)[0])) == codes.SUCCESS
    assert create(handler)["response_code"] == codes.QUEUED
    Otp.update(expires_at=time.time() - 1).execute()
    assert create(handler)["response_code"] == codes.QUEUED


def test_failed_send_frees_the_reference(handler: Handler, paths: Paths) -> None:
    create(handler)
    code = code_of(deliver(paths, state="failed")[0])
    assert check(handler, code) == codes.OTP_VOID, "a code that never left cannot be used"
    assert create(handler)["response_code"] == codes.QUEUED, "the reference is free for a retry"
    assert check(handler, code_of(deliver(paths)[0])) == codes.SUCCESS


def test_waiting_request_gets_the_outcome(handler: Handler, paths: Paths) -> None:
    import threading

    answers = []
    t = threading.Thread(target=lambda: answers.append(
        handler.handle(build({"command": "create-otp", "data": {"receiver": RECEIVER, "reference": "w"}}),
                       source="test", wait=10)))
    t.start()
    from .helpers import wait_until

    wait_until(lambda: SmsOutbox.select().where(SmsOutbox.state == "queued").exists(), what="queued row")
    deliver(paths)
    t.join(10)
    assert answers[0]["response_code"] == codes.SUCCESS


def test_drop_expire_otp(handler: Handler, paths: Paths) -> None:
    from otppi.store.settings import set_text

    past = time.time() - 5
    assert create(handler, expiration=past)["response_code"] == codes.OTP_EXPIRED
    assert SmsOutbox.select().count() == 0
    set_text("general.drop_expire_otp", "false")
    assert create(handler, expiration=past)["response_code"] == codes.QUEUED


def test_codes_are_uniform_digits() -> None:
    from otppi.otp import generate_code

    seen = [generate_code(6) for _ in range(2000)]
    assert all(len(c) == 6 and c.isdigit() for c in seen)
    assert len(set(seen)) > 1900
    assert {c[0] for c in seen} == set("0123456789"), "a leading zero must be possible"
