from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otppi.seal import SealError, seal, unseal

KEY = bytes(range(32))


@given(st.text(max_size=400))
def test_round_trip(text: str) -> None:
    assert unseal(KEY, seal(KEY, text)) == text


def test_sealing_twice_differs_and_hides_the_text() -> None:
    a, b = seal(KEY, "Your OTP is 123456"), seal(KEY, "Your OTP is 123456")
    assert a != b
    assert "123456" not in a


@pytest.mark.parametrize("mutate", [
    lambda t: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"),
    lambda t: t[:10],
    lambda t: "x" + t,
    lambda t: t.replace("s1:", "s1:!"),
])
def test_tampering_is_detected(mutate) -> None:
    with pytest.raises(SealError):
        unseal(KEY, mutate(seal(KEY, "Your OTP is 123456")))


def test_another_key_cannot_open() -> None:
    with pytest.raises(SealError):
        unseal(bytes(32), seal(KEY, "secret"))
