"""The admin web's menu: sections and the pages in them, in the order the spec lists them.

Pages built as blueprints elsewhere register here by name so the menu and the
app factory have one list.
"""

from __future__ import annotations

import importlib

from flask import Blueprint

#: (menu group, [(title, endpoint, endpoint args)]).
NAV: list[tuple[str, list[tuple[str, str, dict]]]] = [
    ("Settings", [
        ("General", "settings.page", {"section": "general"}),
        ("Time", "settings.page", {"section": "time"}),
        ("API", "settings.page", {"section": "api"}),
        ("SMS", "settings.page", {"section": "sms"}),
        ("Email", "settings.page", {"section": "mail"}),
        ("Admin web", "settings.page", {"section": "admin"}),
        ("Bell", "settings.page", {"section": "bell"}),
    ]),
    ("Subscribers", [
        ("WebSocket", "settings.page", {"section": "feeder_ws"}),
        ("RabbitMQ", "settings.page", {"section": "feeder_amqp"}),
        ("Redis", "settings.page", {"section": "feeder_redis"}),
        ("Mosquitto", "settings.page", {"section": "feeder_mqtt"}),
    ]),
    ("DDNS accounts", [
        ("Cloudflare", "settings.page", {"section": "cloudflare"}),
        ("No-IP", "settings.page", {"section": "noip"}),
        ("Dynu", "settings.page", {"section": "dynu"}),
        ("Afraid", "settings.page", {"section": "afraid"}),
    ]),
    ("Network", [
        ("DHCP", "settings.page", {"section": "dhcp"}),
        ("Wireless LAN", "settings.page", {"section": "wlan"}),
        ("Ethernet", "settings.page", {"section": "ethernet"}),
    ]),
    ("Account", [
        ("Change password", "auth.password", {}),
    ]),
]

HOME = "monitor.page"

#: Modules under otppi.admin that define ``bp`` and ``MENU`` (group, [(title, endpoint, args)]).
EXTRA_PAGES: tuple[str, ...] = ("monitor", "inbox", "tools", "system", "lists")


def build() -> tuple[list[tuple[str, list[tuple[str, str, dict]]]], list[Blueprint]]:
    """The menu of one app, with the pages of EXTRA_PAGES added to it, and their blueprints."""
    menu = [(group, list(items)) for group, items in NAV]
    blueprints = []
    for name in EXTRA_PAGES:
        module = importlib.import_module(f"otppi.admin.{name}")
        blueprints.append(module.bp)
        group, items = module.MENU
        for existing_group, existing_items in menu:
            if existing_group == group:
                existing_items.extend(items)
                break
        else:
            menu.insert(0 if group == "Overview" else len(menu) - 1, (group, list(items)))
    return menu, blueprints
