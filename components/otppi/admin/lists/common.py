"""What every list page shares: form inputs built from a row or a posted form, parsing through the
store's own validators, write-only secrets, times in the device's zone, and pagination.

A page describes its fields once as :class:`Spec` rows; the same rows render the
form (value, or the posted text after an error, with the message beside the
field) and parse the submission through the ``parse_field`` the command line
uses, so the web and the CLI accept exactly the same values.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from math import ceil
from typing import Any, Callable, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ...store import settings
from ...store.models import TimeSettings
from ..forms import Form

@dataclass(frozen=True)
class Spec:
    """One field of a form: its column, label, and how it is entered."""

    name: str
    label: str
    kind: str = "text"  # text | number | password | checkbox | select | readonly
    choices: Sequence[tuple[str, str]] = ()  # (value, label) for a select
    help: str = ""


@dataclass
class Input:
    """A field as rendered: never the value of a secret, only whether one is set."""

    name: str
    label: str
    kind: str
    value: str | bool
    choices: Sequence[tuple[str, str]] = ()
    help: str = ""
    secret_set: bool = False
    error: str = ""


@dataclass
class Group:
    title: str
    inputs: list[Input] = field(default_factory=list)
    note: str = ""


def as_text(value: Any) -> str:
    """A stored value as a form shows it: 1.0 → "1", None → ""."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def submitted(form: Form) -> bool:
    return bool(form.data)


def inputs(specs: Sequence[Spec], row: Any, form: Form) -> list[Input]:
    """The inputs of *specs*: the posted text after a failed submission, else the row's values."""
    out = []
    posted = submitted(form)
    for spec in specs:
        stored = getattr(row, spec.name, None) if row is not None else None
        if spec.kind == "password":
            value: str | bool = ""
        elif spec.kind == "checkbox":
            value = (spec.name in form.data) if posted else bool(stored)
        elif posted and spec.kind != "readonly":
            value = form.get(spec.name)
        else:
            value = as_text(stored)
        out.append(Input(spec.name, spec.label, spec.kind, value, spec.choices, spec.help,
                         secret_set=spec.kind == "password" and bool(stored),
                         error=form.errors.get(spec.name, "")))
    return out


def groups(layout: Sequence[tuple[str, Sequence[Spec]]], row: Any, form: Form) -> list[Group]:
    return [Group(title, inputs(specs, row, form)) for title, specs in layout]


def message(exc: Exception, name: str) -> str:
    """The store's "port must be …" as "must be …" beside the Port field."""
    return str(exc).removeprefix(f"{name} ")


def submitted_texts(form: Form, specs: Sequence[Spec]) -> dict[str, str]:
    """Each editable field's text as the store's parsers take it.

    Checkboxes become "true"/"false"; an empty secret is left out (write-only:
    empty keeps the stored one) unless its "clear" box is ticked.
    """
    texts = {}
    for spec in specs:
        if spec.kind == "readonly":
            continue
        if spec.kind == "checkbox":
            texts[spec.name] = "true" if spec.name in form.data else "false"
        elif spec.kind == "password":
            text = form.get(spec.name)
            if text or f"clear_{spec.name}" in form.data:
                texts[spec.name] = text
        else:
            texts[spec.name] = form.get(spec.name)
    return texts


def parse_all(form: Form, texts: dict[str, str], parse_field: Callable[[str, str], Any]) -> dict[str, Any]:
    """Every text through *parse_field*; a failure becomes the message beside its field."""
    values = {}
    for name, text in texts.items():
        try:
            values[name] = parse_field(name, text)
        except settings.SettingError as exc:
            form.error(name, message(exc, name))
    return values


def zone() -> ZoneInfo:
    try:
        return ZoneInfo(TimeSettings.load().time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def when(seconds: float | None, tz: ZoneInfo | None = None) -> str:
    """A timestamp for people, in the device's time zone; "-" when there is none."""
    if not seconds:
        return "-"
    return datetime.fromtimestamp(seconds, tz or zone()).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class Pager:
    page: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, ceil(self.total / self.size))

    def clamped(self) -> "Pager":
        """The last page when the asked one is past the end (after a removal, say)."""
        return replace(self, page=min(self.page, self.pages))

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def page_number(text: str | None) -> int:
    try:
        return max(1, min(int(text or 1), 1_000_000))
    except ValueError:
        return 1
