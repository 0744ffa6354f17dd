"""The one handler behind every ingress: a validated request in, a response out.

REST and the broker feeders call :meth:`Handler.handle`; what a command means
lives only here.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from peewee import IntegrityError

from . import codes, control, otp
from .contract import Request
from .msisdn import mask, normalize
from .outcome import OutcomeWatcher, wait_for
from .paths import Paths
from .store import blocklist
from .store.models import (ApiUser, EmailOutbox, FeederAmqpSettings, FeederMqttSettings, FeederRedisSettings,
                           FeederWsSettings, GeneralSettings, Modem, SettingsPage, SmsOutbox, SmsSettings)
from .store.outbox import Outbox, enqueue, outcome_code

log = logging.getLogger(__name__)

#: A USSD answer takes the network 2 to 10 s: a caller that waits less (a broker request, wait 0) still
#: gets this long.
USSD_MIN_WAIT = 5.0
#: The feeders' settings pages by the name that starts their requests' source ("mqtt:broker.host").
FEEDER_PAGES = {page.SECTION.removeprefix("feeder_"): page
                for page in (FeederWsSettings, FeederAmqpSettings, FeederRedisSettings, FeederMqttSettings)}

ModemControl = Callable[[dict[str, Any], float], dict[str, Any]]
#: Told about a request whose outcome is not known yet: (outbox table, row id, the answer so far).
Follow = Callable[[Any, int, dict[str, Any]], None]


@dataclass
class Context:
    paths: Paths
    otp_key: bytes
    watcher: OutcomeWatcher | None = None
    #: Sends a request to the modem component's control socket; None when it is unreachable.
    modem_control: ModemControl | None = None
    clock: Callable[[], float] = time.time
    #: Reads a settings page; a long-running process passes a cache it clears on each settings change.
    settings: Callable[[type[SettingsPage]], SettingsPage] = field(default=lambda page: page.load())


class _Live(Exception):
    """The reference already has a live OTP: nothing is queued (1201)."""


def response(req_name: str, code: str, data: dict[str, Any] | None = None, message: str = "") -> dict[str, Any]:
    return {
        "command": req_name,
        "response_code": code,
        "message": message or codes.MEANING[code],
        "data": data or {},
    }


class Handler:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._local = threading.local()  # the follow callback of the request this thread handles
        self._routes = {
            "create-otp": self._create_otp,
            "validate-otp": self._validate_otp,
            "send-sms": self._send_sms,
            "send-email": self._send_email,
            "block-msisdn": self._block,
            "unblock-msisdn": self._unblock,
            "request-ussd": self._ussd,
            "get-modem-list": self._modem_list,
            "echo": self._echo,
        }

    def handle(self, req: Request, *, source: str, wait: float = 0.0, follow: Follow | None = None) -> dict[str, Any]:
        """Answer *req*; waits up to *wait* seconds for a delivery outcome, else 1111.

        With *follow*, an answer that is still 1111 also names its outbox row to *follow*, so a
        broker feeder can publish the final outcome on the request's callback later.
        """
        self._local.follow = follow
        try:
            return self._routes[req.command](req, source, wait)
        finally:
            self._local.follow = None

    # ---------------------------------------------------------------- helpers

    def _msisdn(self, receiver: str) -> str:
        return normalize(receiver, self.ctx.settings(SmsSettings).country_code)

    def _expiry(self, req: Request, now: float) -> tuple[float, bool]:
        """(expires_at, already expired and to be dropped)."""
        general = self.ctx.settings(GeneralSettings)
        expires = req.data.get("expiration")
        if expires is None:
            return now + general.otp_expiration / 1000.0, False
        return expires, bool(general.drop_expire_otp and expires <= now)

    def _await(self, req: Request, table: Outbox, row_id: int, wait: float, data: dict[str, Any]) -> dict[str, Any]:
        state = wait_for(self.ctx.paths, table, row_id, wait, watcher=self.ctx.watcher, name="handler")
        return self.answer(req.name, table, row_id, state, data)

    def answer(self, name: str, table: Outbox, row_id: int, state: str, data: dict[str, Any]) -> dict[str, Any]:
        """The response for an outbox row in *state* (1111 while it is on its way)."""
        code = outcome_code(table, state)
        message = ""
        if code != codes.SUCCESS and code != codes.QUEUED:
            error = table.select(table.last_error).where(table.id == row_id).scalar()
            message = f"{codes.MEANING[code]}: {error}" if error else ""
        result = response(name, code, data, message)
        follow = getattr(self._local, "follow", None)
        if code == codes.QUEUED and follow is not None:
            follow(table, row_id, result)
        return result

    # ---------------------------------------------------------------- commands

    def _create_otp(self, req: Request, source: str, wait: float) -> dict[str, Any]:
        d = req.data
        now = self.ctx.clock()
        receiver = d["receiver"]
        reply = {"date_time": d.get("date_time", int(now)), "receiver": receiver, "reference": d["reference"]}
        email = "@" in receiver
        key_receiver = receiver.strip().lower() if email else self._msisdn(receiver)
        if not email and blocklist.is_blocked(key_receiver):
            return response(req.name, codes.BLOCKED, reply)
        expires_at, drop = self._expiry(req, now)
        if drop:
            return response(req.name, codes.OTP_EXPIRED, reply, "expiration is already past: OTP dropped")
        general = self.ctx.settings(GeneralSettings)
        params = [d.get(f"param{i}", "") for i in range(1, 5)]
        code = otp.generate_code(general.otp_length)
        template = d.get("message") or general.otp_message
        body = template.replace("%s", code, 1)
        mac = otp.compute_mac(self.ctx.otp_key, d["reference"], key_receiver, params, code)
        table: Outbox = EmailOutbox if email else SmsOutbox
        channel = "email" if email else "sms"
        # Empty subject: the mailer takes mail.otp_subject, else "<device name> one-time password".
        fields = {"subject": d.get("subject", "")} if email else {}

        def store_otp(row) -> None:
            if not otp.reserve(source, d["reference"], now):
                raise _Live
            otp.store(source, d["reference"], mac, channel, expires_at, **{channel: row})

        try:
            queued = enqueue(self.ctx.paths, self.ctx.otp_key, table, body, inside=store_otp, kind="otp",
                             source=source, receiver=key_receiver, expires_at=expires_at, **fields)
        except _Live:
            return response(req.name, codes.OTP_LIVE, reply)
        log.info("otp queued ref=%s to=%s via %s", d["reference"][:32], mask(key_receiver), source)
        return self._await(req, table, queued.id, wait, reply)

    def _validate_otp(self, req: Request, source: str, wait: float) -> dict[str, Any]:
        d = req.data
        receiver = d["receiver"]
        key_receiver = receiver.strip().lower() if "@" in receiver else self._msisdn(receiver)
        params = [d.get(f"param{i}", "") for i in range(1, 5)]
        general = self.ctx.settings(GeneralSettings)
        code = otp.validate(self.ctx.otp_key, source, d["reference"], key_receiver, params, d["otp"],
                            now=self.ctx.clock(), max_attempts=general.otp_max_attempts)
        reply = {"date_time": d.get("date_time", int(self.ctx.clock())), "receiver": receiver,
                 "reference": d["reference"]}
        return response(req.name, code, reply)

    def _queue_message(self, req: Request, source: str, wait: float, table: Outbox, receiver: str,
                       reply: dict[str, Any], **fields: Any) -> dict[str, Any]:
        now = self.ctx.clock()
        expires_at = req.data.get("expiration")
        general = self.ctx.settings(GeneralSettings)
        if expires_at is not None and expires_at <= now and general.drop_expire_otp:
            return response(req.name, codes.OTP_EXPIRED, reply, "expiration is already past: message dropped")
        key = req.data.get("id")
        message_key = f"{req.command}:{key}" if key is not None else None
        try:
            row_id = enqueue(self.ctx.paths, self.ctx.otp_key, table, req.data["message"], message_key=message_key,
                             source=source, receiver=receiver, expires_at=expires_at, **fields).id
        except IntegrityError:
            # Seen before (maybe through another broker): answer with the first outcome, never send twice.
            row_id = table.get(table.message_key == message_key).id
        return self._await(req, table, row_id, wait, reply)

    def _send_sms(self, req: Request, source: str, wait: float) -> dict[str, Any]:
        d = req.data
        msisdn = self._msisdn(d["receiver"])
        reply = {"date_time": d.get("date_time", int(self.ctx.clock())), "id": d.get("id"), "receiver": d["receiver"]}
        if blocklist.is_blocked(msisdn):
            return response(req.name, codes.BLOCKED, reply)
        return self._queue_message(req, source, wait, SmsOutbox, msisdn, reply, kind="sms")

    def _send_email(self, req: Request, source: str, wait: float) -> dict[str, Any]:
        d = req.data
        reply = {"date_time": d.get("date_time", int(self.ctx.clock())), "id": d.get("id"), "receiver": d["receiver"]}
        # Empty: the mailer takes mail.default_subject, else the device name.
        return self._queue_message(req, source, wait, EmailOutbox, d["receiver"].strip(), reply,
                                   kind="email", subject=d.get("subject", ""))

    def _block(self, req: Request, source: str, wait: float) -> dict[str, Any]:
        msisdn = self._msisdn(req.data["receiver"])
        blocklist.block(msisdn, source)
        return response(req.name, codes.SUCCESS, {"receiver": req.data["receiver"], "msisdn": msisdn})

    def _unblock(self, req: Request, source: str, wait: float) -> dict[str, Any]:
        msisdn = self._msisdn(req.data["receiver"])
        blocklist.unblock(msisdn, source)
        return response(req.name, codes.SUCCESS, {"receiver": req.data["receiver"], "msisdn": msisdn})

    def _ussd_refusal(self, source: str) -> str:
        """Why *source* may not run USSD codes (they can move credit), or "" when it may.

        REST requests come from an API user (``rest:<name>``), allowed one by one; broker requests
        (``<feeder>:<host>``) from anyone who may publish on the topic, allowed per subscriber.
        """
        if source.startswith("rest:"):
            name = source[len("rest:"):]
            user = ApiUser.get_or_none(ApiUser.username == name)
            if user is not None and user.allow_ussd:
                return ""
            return (f"API user {name[:40]!r} may not use request-ussd (USSD codes can move credit): an administrator "
                    f"allows it on the API users page or with 'otppi api-user set {name[:40]} --allow-ussd'")
        feeder = source.split(":", 1)[0]
        page = FEEDER_PAGES.get(feeder)
        if page is not None and self.ctx.settings(page).allow_ussd:
            return ""
        if page is None:
            return f"request-ussd is not allowed from {source[:40]!r}"
        return (f"request-ussd through the {feeder} subscriber is off (USSD codes can move credit): an "
                f"administrator turns on Allow USSD in its settings ({page.SECTION}.allow_ussd)")

    def _ussd(self, req: Request, source: str, wait: float) -> dict[str, Any]:
        d = req.data
        reply = {"modem": d["modem"], "code": d["code"]}
        refusal = self._ussd_refusal(source)
        if refusal:
            log.warning("request-ussd refused for %s", source[:64])
            return response(req.name, codes.UNAUTHORIZED, reply, refusal)
        if Modem.get_or_none(Modem.name == d["modem"]) is None:
            return response(req.name, codes.MALFORMED, reply, f"data.modem: no modem named {d['modem'][:40]!r}")
        if self.ctx.modem_control is None:
            return response(req.name, codes.FAILED, reply, "the modem component is not reachable")
        page = FEEDER_PAGES.get(source.split(":", 1)[0])
        if wait <= 0 and page is not None:
            wait = self.ctx.settings(page).timeout  # a broker request waits as long as its feeder's Timeout
        deadline = max(wait, USSD_MIN_WAIT)  # the modem skips the call, or stops it, once the caller has gone
        answer = self.ctx.modem_control({"op": "ussd", "modem": d["modem"], "code": d["code"], "timeout": deadline},
                                        deadline + control.MARGIN)
        if not answer.get("ok"):
            return response(req.name, codes.FAILED, reply, str(answer.get("error", "USSD failed"))[:255])
        reply["reply"] = answer.get("reply", "")
        return response(req.name, codes.SUCCESS, reply)

    def _modem_list(self, req: Request, source: str, wait: float) -> dict[str, Any]:
        modems = [
            {"name": m.name, "active": m.active, "default": m.is_default, "send_from_api": m.send_from_api,
             "prefixes": m.prefix_list(), "operator": m.operator, "msisdn": m.msisdn}
            for m in Modem.select().order_by(Modem.name)
        ]
        return response(req.name, codes.SUCCESS, {"modems": modems})

    def _echo(self, req: Request, source: str, wait: float) -> dict[str, Any]:
        return response(req.name, codes.SUCCESS, req.data)
