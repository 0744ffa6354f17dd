"""The list pages of the spec: administrators, API users, modems, the blocking list, email accounts,
DDNS records and firewall ports.

One blueprint under /lists with a child blueprint per page. Every change is one
short transaction that also bumps the settings generation, so the component
that owns the list applies it without a restart.
"""

from __future__ import annotations

from flask import Blueprint

from . import accounts, blocked, ddns, email, firewall, modems

bp = Blueprint("lists", __name__, url_prefix="/lists")
for _child in (accounts.admins, accounts.api_users, modems.bp, blocked.bp, email.bp, ddns.bp, firewall.bp):
    bp.register_blueprint(_child)

MENU = ("Lists", [
    ("Administrators", "lists.admins.index", {}),
    ("API users", "lists.api_users.index", {}),
    ("Modems", "lists.modems.index", {}),
    ("Blocking list", "lists.blocked.index", {}),
    ("Email accounts", "lists.email.index", {}),
    ("DDNS records", "lists.ddns.index", {}),
    ("Firewall", "lists.firewall.index", {}),
])
