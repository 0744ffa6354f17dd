"""The REST application: every configured API path takes every command.

The paths (message, blocking, unblocking and OTP) come from API Settings and
exist for firewalls and proxies; the command in the body decides what
happens, as in the seed. Answers are always the contract's JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .. import codes
from ..auth import CredentialCache
from ..contract import MAX_BODY, ContractError, command_of, parse
from ..handler import Handler, response
from ..store.models import ApiSettings, ApiUser

log = logging.getLogger(__name__)

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


def _error(code: str, message: str, status: int, command: str | None = None,
           headers: dict[str, str] | None = None) -> Response:
    return _json(response(command or "", code, None, message), status, headers)


def api_paths(settings: ApiSettings) -> set[str]:
    return {settings.otp_path, settings.message_path, settings.blocking_path, settings.unblocking_path}


def _credentials() -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
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


def _authenticate(cache: CredentialCache) -> str | None:
    creds = _credentials()
    if creds is None:
        return None
    username, password = creds
    user = ApiUser.get_or_none((ApiUser.username == username) & (ApiUser.active == True))  # noqa: E712
    if user is None or not cache.verify(user.password_hash, password):
        return None
    return user.username


def create_app(handler: Handler, *, cache: CredentialCache | None = None, test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY)
    if test_config:
        app.config.update(test_config)
    cache = cache or CredentialCache()

    @app.route("/", defaults={"path": ""}, methods=METHODS)
    @app.route("/<path:path>", methods=METHODS)
    def endpoint(path: str) -> Response:
        settings = handler.ctx.settings(ApiSettings)
        if "/" + path not in api_paths(settings):
            return _error(codes.MALFORMED, "no such API path", 404)
        if request.method != "POST":
            return _error(codes.MALFORMED, f"method {request.method} is not allowed: use POST", 405,
                          headers={"Allow": "POST"})
        user = _authenticate(cache)
        if user is None:
            return _error(codes.UNAUTHORIZED, codes.MEANING[codes.UNAUTHORIZED], 401,
                          headers={"WWW-Authenticate": 'Basic realm="OTP-Pi", charset="UTF-8"'})
        # Read one byte past the limit from the server's own stream: a chunked body has no
        # Content-Length, and werkzeug's limited stream would cut it short silently.
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise RequestEntityTooLarge()
        body = request.environ["wsgi.input"].read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            raise RequestEntityTooLarge()
        try:
            req = parse(body)
        except ContractError as exc:
            return _error(codes.MALFORMED, exc.message, 400, exc.command or command_of(body))
        answer = handler.handle(req, source=f"rest:{user}", wait=settings.wait_timeout)
        return _json(answer)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: HTTPException) -> Response:
        return _error(codes.MALFORMED, f"request body is over {MAX_BODY // 1024} KiB", 413)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return _error(codes.MALFORMED, exc.description or exc.name, exc.code or 400)

    @app.errorhandler(Exception)
    def internal(exc: Exception) -> Response:
        log.exception("request failed")
        return _error(codes.FAILED, "internal error", 500)

    return app
