"""The SMS Inbox: messages the modems received, newest first; read, delete, reply, and a look at the SIMs.

The modem component moves every SMS from the SIMs into the store (``otppi.modem.inbox``); this page
reads the store, so it works while the modem component is down. A reply is a manual SMS to the sender
through the modem the message came in on.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from .. import modem_tools
from ..modem_tools import ToolError, printable
from ..store.db import db
from ..store.models import InboxMessage
from .forms import Form
from .toolkit import active_modems, app_paths, component_error, local_time, queue_manual_sms

bp = Blueprint("inbox", __name__, url_prefix="/inbox")

MENU = ("Modem tools", [("SMS inbox", "inbox.index", {})])

PAGE_SIZE = 20
PREVIEW = 80


def _row(m: InboxMessage) -> dict:
    text = printable(m.body)
    return {"id": m.id, "time": local_time(m.sent_at if m.sent_at is not None else m.received_at),
            "received": local_time(m.received_at), "modem": m.modem, "sender": printable(m.sender),
            "body": text, "preview": " ⏎ ".join(text.splitlines())[:PREVIEW], "read": m.is_read, "parts": m.parts,
            "incomplete": m.incomplete}


@bp.route("")
def index():
    total = InboxMessage.select().count()
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), pages)
    query = (InboxMessage.select().order_by(InboxMessage.received_at.desc(), InboxMessage.id.desc())
             .paginate(page, PAGE_SIZE))
    unread = InboxMessage.select().where(InboxMessage.is_read == False).count()  # noqa: E712
    return render_template("tools/inbox.html", messages=[_row(m) for m in query], page=page, pages=pages,
                           total=total, unread=unread)


def _message(message_id: int) -> InboxMessage:
    message = InboxMessage.get_or_none(InboxMessage.id == message_id)
    if message is None:
        abort(404, description="this message is not in the inbox (deleted?)")
    return message


@bp.route("/<int:message_id>")
def read(message_id: int):
    message = _message(message_id)
    if not message.is_read:
        with db.atomic():
            InboxMessage.update(is_read=True).where(InboxMessage.id == message_id).execute()
    return render_template("tools/inbox_read.html", m=_row(message), form=Form())


@bp.route("/<int:message_id>/reply", methods=["POST"])
def reply(message_id: int):
    message = _message(message_id)
    form = Form(request.form)
    try:
        outcome = queue_manual_sms(message.sender, form.get("text"), message.modem)
    except ToolError as exc:
        field = "text" if exc.field == "text" else "_page"
        message_text = str(exc)
        if exc.field == "receiver":
            message_text = f"cannot reply to {message.sender[:40]}: {exc}"
        elif exc.field == "modem":
            message_text = f"cannot reply through {message.modem}: {exc}"
        form.error(field, message_text)
    else:
        if outcome.state not in ("failed", "expired"):
            flash(outcome.describe(message.modem))
            return redirect(url_for("inbox.read", message_id=message_id))
        form.error("_page", outcome.describe(message.modem))
    return render_template("tools/inbox_read.html", m=_row(message), form=form), 400 if "text" in form.errors else 200


@bp.route("/<int:message_id>/delete", methods=["POST"])
def delete(message_id: int):
    with db.atomic():
        deleted = InboxMessage.delete().where(InboxMessage.id == message_id).execute()
    if not deleted:
        abort(404, description="this message is not in the inbox (deleted already?)")
    flash(f"Message {message_id} deleted.")
    return redirect(url_for("inbox.index"))


@bp.route("/refresh", methods=["POST"])
def refresh():
    """Move every SMS waiting on the SIMs into the inbox now (a modem may store some without telling)."""
    down = component_error()
    if down:
        flash(f"{down}: the SIMs were not read.", "error")
        return redirect(url_for("inbox.index"))
    notes, failed = [], False
    for name in active_modems():
        try:
            stored = modem_tools.refresh_inbox(app_paths(), name)
            notes.append(f"{name}: {stored} new")
        except ToolError as exc:
            notes.append(f"{name}: {exc}")
            failed = True
    flash("SIMs read. " + ("; ".join(notes) if notes else "No active modem") + ".", "error" if failed else "message")
    return redirect(url_for("inbox.index"))
