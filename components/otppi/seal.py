"""Sealing outbox bodies so the database never holds a clear OTP or message.

A queued body must survive a restart, yet the database file (and its WAL,
which keeps old page images) must never contain the clear text. Bodies are
sealed with keys derived from the device's OTP key: an HMAC-SHA256 keystream
(counter mode over a random nonce) and an HMAC-SHA256 tag over nonce and
ciphertext, encrypt-then-MAC. Standard library only; bodies are short.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "s1:"
NONCE = 16
TAG = 32


class SealError(ValueError):
    """A sealed body that was altered, truncated or sealed under another key."""


def _subkey(key: bytes, label: bytes) -> bytes:
    return hmac.new(key, b"otppi-seal\0" + label, hashlib.sha256).digest()


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = []
    for counter in range((length + 31) // 32):
        blocks.append(hmac.new(key, nonce + counter.to_bytes(4, "big"), hashlib.sha256).digest())
    return b"".join(blocks)[:length]


def seal(key: bytes, text: str) -> str:
    plain = text.encode("utf-8")
    nonce = secrets.token_bytes(NONCE)
    stream = _keystream(_subkey(key, b"enc"), nonce, len(plain))
    cipher = bytes(a ^ b for a, b in zip(plain, stream))
    tag = hmac.new(_subkey(key, b"mac"), nonce + cipher, hashlib.sha256).digest()
    return PREFIX + base64.b64encode(nonce + cipher + tag).decode("ascii")


def unseal(key: bytes, token: str) -> str:
    if not token.startswith(PREFIX):
        raise SealError("not a sealed body")
    try:
        raw = base64.b64decode(token[len(PREFIX):], validate=True)
    except ValueError:
        raise SealError("sealed body is not base64") from None
    if len(raw) < NONCE + TAG:
        raise SealError("sealed body is truncated")
    nonce, cipher, tag = raw[:NONCE], raw[NONCE:-TAG], raw[-TAG:]
    expected = hmac.new(_subkey(key, b"mac"), nonce + cipher, hashlib.sha256).digest()
    if not hmac.compare_digest(tag, expected):
        raise SealError("sealed body failed its integrity check")
    stream = _keystream(_subkey(key, b"enc"), nonce, len(cipher))
    return bytes(a ^ b for a, b in zip(cipher, stream)).decode("utf-8")
