"""Reading and writing settings pages by ``section.field`` keys, with validation.

Every write bumps the settings generation in the ``meta`` table; components
compare it on each loop turn and re-read their pages, so a change applies live
without a restart.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Callable, Iterator

from peewee import BooleanField, Field, FloatField, IntegerField

from .db import db
from .models import SETTINGS_PAGES, Meta, SettingsPage
from .sealed import clear_moved

GENERATION_KEY = "settings_generation"


class PageCache:
    """Settings pages read once and kept until :meth:`clear`.

    For a process whose loop clears it whenever the settings generation moves,
    so a change still applies live, without a query per page per request.
    """

    def __init__(self) -> None:
        self._pages: dict[type[SettingsPage], SettingsPage] = {}

    def __call__(self, page: type[SettingsPage]) -> SettingsPage:
        row = self._pages.get(page)
        if row is None:
            row = self._pages[page] = page.load()
        return row

    def clear(self) -> None:
        self._pages = {}


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingError(ValueError):
    """A key that does not exist or a value that does not fit it."""


def _port(v: int) -> None:
    if not 1 <= v <= 65535:
        raise SettingError("must be a port number from 1 to 65535")


def _api_path(v: str) -> None:
    if not re.fullmatch(r"/[A-Za-z0-9._~/-]{0,120}", v) or "//" in v:
        raise SettingError("must be a path starting with '/' (letters, digits, . _ ~ - /)")


def _range(lo: float, hi: float) -> Callable[[Any], None]:
    def check(v: Any) -> None:
        if not lo <= v <= hi:
            raise SettingError(f"must be from {lo:g} to {hi:g}")

    return check


def _digits(lo: int, hi: int) -> Callable[[str], None]:
    def check(v: str) -> None:
        if not re.fullmatch(rf"[0-9]{{{lo},{hi}}}", v):
            raise SettingError(f"must be {lo} to {hi} digits")

    return check


def _ip_or_empty(v: str) -> None:
    if v:
        try:
            ipaddress.IPv4Address(v)
        except ValueError:
            raise SettingError("must be an IPv4 address") from None


def _netmask(v: str) -> None:
    try:
        ipaddress.IPv4Network(f"0.0.0.0/{v}")
    except ValueError:
        raise SettingError("must be a netmask such as 255.255.255.0") from None


def _one_of(*choices: str) -> Callable[[str], None]:
    def check(v: str) -> None:
        if v not in choices:
            raise SettingError(f"must be one of: {', '.join(choices)}")

    return check


def _otp_message(v: str) -> None:
    if v.count("%s") != 1:
        raise SettingError("must contain exactly one %s where the code goes")


def _header_text(v: str) -> None:
    # Control characters are refused for every text setting; a header also has a length.
    if len(v) > 200:
        raise SettingError("must be at most 200 characters")


def _https_url(v: str) -> None:
    # A DDNS account's key or password goes to this address: only ever over TLS.
    if not re.fullmatch(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?", v):
        raise SettingError("must be an https:// address (the account's key or password is sent there)")


VALIDATORS: dict[str, Callable[[Any], None]] = {
    "general.otp_expiration": _range(1_000, 86_400_000),
    "general.otp_length": _range(4, 10),
    "general.otp_max_attempts": _range(1, 100),
    "general.otp_message": _otp_message,
    "general.restart_service": _range(0, 8760),
    "general.restart_device": _range(0, 8760),
    "time.update_timer": _range(0, 525_600),
    "api.http_port": _port,
    "admin.port": _port,
    "admin.bind_address": _ip_or_empty,
    "admin.session_minutes": _range(5, 1440),
    "api.https_port": _port,
    "api.bind_address": _ip_or_empty,
    "api.otp_path": _api_path,
    "api.message_path": _api_path,
    "api.blocking_path": _api_path,
    "api.unblocking_path": _api_path,
    "api.wait_timeout": _range(0, 300),
    "sms.country_code": _digits(1, 3),
    "sms.prefix_length": _range(1, 10),
    "sms.min_interval_ms": _range(0, 3_600_000),
    "sms.daily_cap": _range(0, 1_000_000),
    "sms.failures_to_quarantine": _range(1, 1000),
    "sms.quarantine_seconds": _range(1, 86_400),
    "sms.queue_timeout": _range(1, 86_400),
    "sms.send_timeout": _range(1, 600),
    "feeder_ws.port": _port,
    "feeder_ws.path": _api_path,
    "feeder_amqp.port": _port,
    "feeder_amqp.prefetch": _range(1, 65535),
    "feeder_redis.port": _port,
    "feeder_redis.mode": _one_of("pubsub", "streams"),
    "feeder_mqtt.port": _port,
    "mail.from_name": _header_text,
    "mail.default_subject": _header_text,
    "mail.otp_subject": _header_text,
    "mail.reset_subject": _header_text,
    "mail.timeout": _range(1, 300),
    "mail.pool_retries": _range(0, 10),
    "mail.retry_delay": _range(0.1, 86_400),
    "dhcp.router_address": _ip_or_empty,
    "dhcp.netmask": _netmask,
    "dhcp.subnet_mask": _netmask,
    "wlan.ip_address": _ip_or_empty,
    "wlan.netmask": _netmask,
    "wlan.gateway": _ip_or_empty,
    "wlan.prefix": _range(0, 32),
    "ethernet.ip_address": _ip_or_empty,
    "ethernet.netmask": _netmask,
    "ethernet.gateway": _ip_or_empty,
    "ethernet.prefix": _range(0, 32),
}
for _section in ("cloudflare", "noip", "dynu", "afraid"):
    VALIDATORS[f"{_section}.endpoint"] = _https_url
for _section in ("feeder_ws", "feeder_amqp", "feeder_redis", "feeder_mqtt"):
    VALIDATORS[f"{_section}.timeout"] = _range(0.1, 3600)
    VALIDATORS[f"{_section}.reconnect_delay"] = _range(0.1, 3600)
    VALIDATORS[f"{_section}.refresh_connection"] = _range(0, 604_800)

PAGES: dict[str, type[SettingsPage]] = {page.SECTION: page for page in SETTINGS_PAGES}


def _split(key: str) -> tuple[type[SettingsPage], Field]:
    section, _, name = key.partition(".")
    page = PAGES.get(section)
    if page is None:
        raise SettingError(f"unknown settings section {section!r} (one of: {', '.join(PAGES)})")
    field = page._meta.fields.get(name)
    if field is None or name == "id":
        raise SettingError(f"unknown setting {key!r}")
    return page, field


def convert(field: Field, label: str, text: str) -> Any:
    """The command line's (or a form's) text as the field's type; *label* names it in errors."""
    value: Any
    if isinstance(field, BooleanField):
        low = text.strip().lower()
        if low not in _TRUE | _FALSE:
            raise SettingError(f"{label} must be true or false")
        return low in _TRUE
    if isinstance(field, IntegerField):
        try:
            return int(text.strip())
        except ValueError:
            raise SettingError(f"{label} must be a whole number") from None
    if isinstance(field, FloatField):
        try:
            value = float(text.strip())
        except ValueError:
            raise SettingError(f"{label} must be a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise SettingError(f"{label} must be a finite number")
        return value
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise SettingError(f"{label} must not contain control characters")
    if len(text) > 1024:
        raise SettingError(f"{label} is longer than 1024 characters")
    return text


def check(validators: dict[str, Callable[[Any], None]], key: str, value: Any) -> Any:
    validator = validators.get(key)
    if validator is not None:
        try:
            validator(value)
        except SettingError as exc:
            raise SettingError(f"{key} {exc}") from None
    return value


def parse_value(key: str, text: str) -> Any:
    """Turn the command line's text into the field's type, then validate it."""
    _, field = _split(key)
    return check(VALIDATORS, key, convert(field, key, text))


def get(key: str) -> Any:
    page, field = _split(key)
    return getattr(page.load(), field.name)


def is_secret(key: str) -> bool:
    page, field = _split(key)
    return field.name in page.SECRETS


def set_many(section: str, values: dict[str, Any]) -> list[str]:
    """Save already-parsed values of one page in one transaction and bump the generation.

    A secret whose destination the change moves (``DESTINATIONS``: a host, a
    port, TLS, an endpoint) is cleared unless *values* gives it again; the
    names of the secrets cleared are returned, for the caller to say so. The
    stored secrets are never read, so a new one can replace one that cannot
    be unsealed.
    """
    page = PAGES[section]
    values = dict(values)
    with db.atomic():
        cleared = clear_moved(page, page.id == 1, values)
        if not page.select().where(page.id == 1).exists():
            page.create(id=1, **values)
        elif values:
            page.update(**values).where(page.id == 1).execute()
        bump_generation()
    return cleared


def set_text(key: str, text: str) -> Any:
    value = parse_value(key, text)
    section, _, name = key.partition(".")
    set_many(section, {name: value})
    return value


def items(show_secrets: bool = False) -> Iterator[tuple[str, Any]]:
    for section, page in PAGES.items():
        row = page.load()
        for name in page._meta.sorted_field_names:
            if name == "id":
                continue
            value = getattr(row, name)
            if name in page.SECRETS and not show_secrets:
                value = "(set)" if value else ""
            yield f"{section}.{name}", value


def bump_generation() -> None:
    Meta.insert(key=GENERATION_KEY, value=1).on_conflict(
        conflict_target=[Meta.key], update={Meta.value: Meta.value + 1}
    ).execute()


def generation() -> int:
    row = Meta.get_or_none(Meta.key == GENERATION_KEY)
    return row.value if row else 0
