"""The blocking list: numbers that receive no SMS from any modem. Add, remove, search, page through.

A number is stored as MSISDN with the SMS country code (0812… → 62812…), the
form the handler compares receivers in, so "0812 3456 789" and
"+62 812 3456 789" block the same phone.
"""

from __future__ import annotations

import re

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from ...msisdn import normalize
from ...store import blocklist
from ...store.models import BlockedNumber, SmsSettings
from ..forms import Form
from .common import Pager, page_number, when

bp = Blueprint("blocked", __name__, url_prefix="/blocking")

PAGE_SIZE = 50


def _search(query: str, country_code: str):
    """Numbers containing the digits of *query*; a leading 0 also finds the number with the country code."""
    rows = BlockedNumber.select()
    digits = re.sub(r"\D", "", query)
    if query and not digits:
        return rows.where(BlockedNumber.id < 0)  # nothing matches a search without digits
    if digits:
        match = BlockedNumber.msisdn.contains(digits)
        if digits.startswith("0") and not digits.startswith("00") and len(digits) > 1:
            match |= BlockedNumber.msisdn.startswith(country_code + digits[1:])
        rows = rows.where(match)
    return rows


def _back(query: str, page: int):
    return redirect(url_for("lists.blocked.index", **({"q": query} if query else {}),
                            **({"page": page} if page > 1 else {})))


@bp.route("", methods=["GET", "POST"])
def index():
    form = Form(request.form)
    country_code = SmsSettings.load().country_code
    query = request.values.get("q", "").strip()[:40]
    if request.method == "POST":
        number = form.get("number").strip()
        try:
            msisdn = normalize(number, country_code)
        except ValueError:
            form.error("number", "a phone number such as 0812 3456 789 or +62 812 3456 789")
        else:
            added = blocklist.block(msisdn, "admin")
            flash(f"{msisdn} blocked." if added else f"{msisdn} is already on the blocking list.")
            return _back(query, 1)
    rows = _search(query, country_code)
    pager = Pager(page_number(request.args.get("page")), PAGE_SIZE, rows.count()).clamped()
    page = rows.order_by(BlockedNumber.msisdn).paginate(pager.page, PAGE_SIZE)
    return render_template("lists/blocked.html", rows=list(page), pager=pager, query=query, form=form,
                           country_code=country_code, when=when), (200 if form.ok else 400)


@bp.route("/<int:ident>/delete", methods=["POST"])
def delete(ident: int):
    row = BlockedNumber.get_or_none(BlockedNumber.id == ident)
    if row is None or not blocklist.unblock(row.msisdn, "admin"):
        abort(404)
    flash(f"{row.msisdn} removed from the blocking list.")
    return _back(request.form.get("q", "").strip()[:40], page_number(request.form.get("page")))
