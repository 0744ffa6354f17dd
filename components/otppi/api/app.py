"""The REST application: every configured API path takes every command.

The paths (message, blocking, unblocking and OTP) come from API Settings and
exist for firewalls and proxies; the command in the body decides what
happens, as in the seed. Answers are always the contract's JSON.

A request runs on the event loop of :mod:`otppi.api.http` and leaves it only
for blocking work: the store on a small pool of threads, argon2 on one thread
of its own (so a flood of wrong passwords cannot take the store's threads),
USSD on two more (a USSD call blocks until the operator answers). A request
waiting for its SMS to be sent waits as a coroutine on the process's
:class:`~otppi.outcome.OutcomeWatcher`, never on a thread, and its deadline
(Wait Timeout) runs from the moment its head arrived.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from .. import codes
from ..auth import DUMMY_HASH, CredentialCache, verify_decoy
from ..contract import MAX_BODY, ContractError, Request, command_of, parse
from ..handler import Handler, response
from ..store.models import ApiSettings, ApiUser
from ..store.outbox import FINAL, Outbox
from . import http

log = logging.getLogger(__name__)

T = TypeVar("T")

STORE_THREADS = 4
INTERACTIVE_THREADS = 2
#: Distinct new credentials waiting for argon2 beyond this are refused (503) rather than queued for
#: minutes: a flood of wrong passwords must not grow memory or delay the clients it does not slow down.
MAX_HASH_QUEUE = 64

CHALLENGE = [("WWW-Authenticate", 'Basic realm="OTP-Pi", charset="UTF-8"')]


def error(status: int, message: str, command: str = "", headers: list[tuple[str, str]] | None = None) -> http.Response:
    code = codes.FAILED if status >= 500 else codes.UNAUTHORIZED if status == 401 else codes.MALFORMED
    return json_response(response(command, code, None, message), status, headers)


def json_response(body: dict[str, Any], status: int = 200, headers: list[tuple[str, str]] | None = None) -> http.Response:
    return http.Response(status, json.dumps(body).encode(), headers or [])


def api_paths(settings: ApiSettings) -> set[str]:
    return {settings.otp_path, settings.message_path, settings.blocking_path, settings.unblocking_path}


def credentials(header: str) -> tuple[str, str] | None:
    """(username, password) of a Basic Authorization header, or None."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    if not sep or not username or len(username) > 255:
        return None
    return username, password


class RestApi:
    """The application :class:`~otppi.api.http.HttpServer` calls for each request."""

    def __init__(self, handler: Handler, *, cache: CredentialCache | None = None):
        if handler.ctx.watcher is None:
            raise ValueError("the REST API waits for outcomes: its handler needs a watcher")
        self.handler = handler
        self.watcher = handler.ctx.watcher
        self.cache = cache or CredentialCache()
        self._store = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="api-store")
        self._interactive = ThreadPoolExecutor(INTERACTIVE_THREADS, thread_name_prefix="api-modem")
        self._hashing = ThreadPoolExecutor(1, thread_name_prefix="api-argon2")
        self._checking: dict[bytes, asyncio.Future[bool]] = {}  # argon2 verifications under way

    def close(self) -> None:
        for pool in (self._store, self._interactive, self._hashing):
            pool.shutdown(wait=False, cancel_futures=True)

    async def _run(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    # ---------------------------------------------------------------- the request

    async def __call__(self, req: http.Request) -> http.Response:
        settings = self.handler.ctx.settings(ApiSettings)
        if req.path not in api_paths(settings):
            return error(404, "no such API path")
        if req.method != "POST":
            return error(405, f"method {req.method} is not allowed: use POST", headers=[("Allow", "POST")])
        user = await self._authenticate(req.headers.get("authorization", ""))
        if user is None:
            return error(401, codes.MEANING[codes.UNAUTHORIZED], headers=CHALLENGE)
        if user == "":
            return error(503, "too many new credentials to check at once: try again", headers=[("Retry-After", "1")])
        try:
            body = await req.body(MAX_BODY)
        except http.BodyTooLarge:
            return error(413, f"request body is over {MAX_BODY // 1024} KiB")
        try:
            return await self._handle(req, body, user, settings.wait_timeout)
        except Exception:
            log.exception("request failed")
            return error(500, "internal error", command_of(body) or "")

    async def _handle(self, req: http.Request, body: bytes, user: str, wait_timeout: float) -> http.Response:
        def remaining() -> float:
            return max(0.0, wait_timeout - (time.monotonic() - req.arrived))

        source = f"rest:{user}"
        entered = await self._run(self._store, self._enter, body, source)
        if isinstance(entered, http.Response):
            return entered
        if isinstance(entered, Request):
            # USSD blocks until the operator answers: on its own threads, with what is left of the wait.
            return json_response(await self._run(self._interactive, self._ussd, entered, source, remaining()))
        answer, followed = entered
        if followed is not None:
            table, row_id = followed
            state = await self.watcher.until_final(table, row_id, remaining())
            if state in FINAL:
                answer = await self._run(self._store, self.handler.answer, answer["command"], table, row_id,
                                         state, answer["data"])
        return json_response(answer)

    def _enter(self, body: bytes, source: str) -> http.Response | Request | tuple[dict[str, Any], tuple[Outbox, int] | None]:
        """On a store thread: parse, then handle without waiting; the row to wait for, if any.

        A USSD request is only parsed: it is handled on the interactive threads.
        """
        try:
            request = parse(body)
        except ContractError as exc:
            return error(400, exc.message, exc.command or command_of(body) or "")
        if request.command == "request-ussd":
            return request
        followed: list[tuple[Outbox, int]] = []
        answer = self.handler.handle(request, source=source, wait=0.0,
                                     follow=lambda table, row_id, _answer: followed.append((table, row_id)))
        return answer, (followed[0] if followed else None)

    def _ussd(self, request: Request, source: str, wait: float) -> dict[str, Any]:
        return self.handler.handle(request, source=source, wait=wait)

    # ---------------------------------------------------------------- authentication

    async def _authenticate(self, header: str) -> str | None:
        """The API user's name; None when refused; "" when too many new credentials wait for argon2."""
        creds = credentials(header)
        if creds is None:
            return None
        username, password = creds
        stored = await self._run(self._store, self._stored_hash, username)
        if stored is not None and self.cache.remembered(stored, password):
            return username
        # A burst of new connections with one credential waits for one verification, not one each.
        key = self.cache.digest(stored or DUMMY_HASH, f"{username}\0{password}")
        check = self._checking.get(key)
        if check is None:
            if len(self._checking) >= MAX_HASH_QUEUE:
                return ""
            check = self._checking[key] = asyncio.ensure_future(
                self._run(self._hashing, self._check, stored, password))
            check.add_done_callback(lambda _: self._checking.pop(key, None))
        good = await asyncio.shield(check)
        return username if good and stored is not None else None

    def _check(self, stored: str | None, password: str) -> bool:
        """On the argon2 thread: a known user's password, or a decoy check that costs the same (False)."""
        return verify_decoy(password) if stored is None else self.cache.verify(stored, password)

    @staticmethod
    def _stored_hash(username: str) -> str | None:
        user = ApiUser.get_or_none((ApiUser.username == username) & (ApiUser.active == True))  # noqa: E712
        return None if user is None else user.password_hash
