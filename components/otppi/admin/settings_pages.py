"""Every settings page of the spec, from its model: one form per page, validated field by field.

The fields, their types and their checks come from ``otppi.store`` (the same
ones ``otppi settings set`` uses), so the web and the command line accept
exactly the same values. Secrets are write-only: the form shows whether one
is set, never its value, and an empty secret field leaves it unchanged, unless
the same change moves where it is sent (a feeder's host, a DDNS endpoint …):
then the store clears it and the page says to enter it again.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from peewee import BooleanField, FloatField, IntegerField

from ..store import settings
from ..store.models import Event, SettingsPage
from ..store.sealed import cleared_note
from .forms import Form
from .toolkit import local_time

bp = Blueprint("settings", __name__)

TITLES = {
    "general": "General settings", "time": "Time settings", "api": "API settings", "sms": "SMS settings",
    "mail": "Email settings", "admin": "Admin web", "bell": "Bell settings",
    "feeder_ws": "WebSocket subscriber (WSMessageBroker)", "feeder_amqp": "RabbitMQ subscriber",
    "feeder_redis": "Redis subscriber", "feeder_mqtt": "Mosquitto (MQTT) subscriber",
    "cloudflare": "Cloudflare account", "noip": "No-IP account", "dynu": "Dynu account",
    "afraid": "Free DNS Afraid account", "dhcp": "DHCP", "wlan": "Wireless LAN", "ethernet": "Ethernet",
}

#: Labels where the field name alone reads badly; others are the name with spaces.
LABELS = {
    "otp_expiration": "OTP expiration (ms)", "drop_expire_otp": "Drop expired OTP", "otp_length": "OTP length",
    "otp_max_attempts": "Wrong attempts before an OTP is void", "otp_message": "OTP message (%s is the code)",
    "restart_service": "Restart service every (hours, 0 never)", "restart_device": "Restart device every (hours, 0 never)",
    "update_timer": "Update timer (minutes, 0 never)", "ntp_server": "NTP server", "http_port": "HTTP port",
    "http_enabled": "Enable HTTP", "https_port": "HTTPS port", "https_enabled": "Enable HTTPS",
    "otp_path": "OTP path", "message_path": "Message path", "blocking_path": "Blocking path",
    "unblocking_path": "Unblocking path", "https_keystore": "HTTPS certificate (keystore name)",
    "https_cert_file": "HTTPS certificate file", "https_key_file": "HTTPS key file",
    "wait_timeout": "Wait for the outcome (s)", "prefix_length": "Recipient prefix length",
    "log_outgoing": "Log outgoing SMS", "monitor_traffic": "Monitor SMS traffic",
    "min_interval_ms": "Least time between two SMS of one modem (ms)", "daily_cap": "Daily cap per modem (0 none)",
    "queue_timeout": "Give up on a queued SMS after (s)", "send_timeout": "Modem send timeout (s)",
    "ssl": "SSL", "ca_file": "CA file", "refresh_connection": "Refresh connection (s, 0 never)",
    "reconnect_delay": "Reconnect delay (s)", "timeout": "Timeout (s)", "client_id": "Client ID",
    "ssid": "SSID name", "ssid_password": "SSID password", "dns": "DNS", "dns1": "DNS 1", "dns2": "DNS 2",
    "ip_address": "IP address", "api_key": "API key", "account_id": "Account ID",
    "allow_ussd": "Allow USSD (request-ussd; its codes can move credit)",
    "allow_plain_login": "Allow the password without TLS (only for a broker that offers no TLS)",
    "domain_name_servers_address": "Domain name servers address", "ranges": "Range(s), e.g. 192.168.0.10-192.168.0.100",
}


def _label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " ").capitalize())


@dataclass
class Field:
    name: str
    label: str
    kind: str  # checkbox | number | text | password
    value: object
    secret_set: bool = False


def _fields(page: type[SettingsPage], row: SettingsPage, form: Form | None) -> list[Field]:
    out = []
    for name in page._meta.sorted_field_names:
        if name == "id":
            continue
        field = page._meta.fields[name]
        label = _label(name)
        if name in page.SECRETS:
            out.append(Field(name, label, "password", "", secret_set=bool(getattr(row, name))))
        elif isinstance(field, BooleanField):
            checked = (name in form.data) if form is not None else bool(getattr(row, name))
            out.append(Field(name, label, "checkbox", checked))
        else:
            kind = "number" if isinstance(field, (IntegerField, FloatField)) else "text"
            out.append(Field(name, label, kind, form.get(name) if form is not None else getattr(row, name)))
    return out


def _page(section: str) -> type[SettingsPage]:
    page = settings.PAGES.get(section)
    if page is None:
        abort(404)
    return page


def feeder_status(section: str) -> Event | None:
    """The last connect or disconnect of a subscriber's feeder: its live connection status."""
    if not section.startswith("feeder_"):
        return None
    return (Event.select().where((Event.kind == "feeder") & (Event.source == section.removeprefix("feeder_")))
            .order_by(Event.id.desc()).first())


@bp.route("/settings/<section>", methods=["GET", "POST"])
def page(section: str):
    model = _page(section)
    row = model.load()
    form = None
    if request.method == "POST":
        form = Form(request.form)
        values = {}
        for name in model._meta.sorted_field_names:
            if name == "id":
                continue
            field = model._meta.fields[name]
            if isinstance(field, BooleanField):
                text = "true" if name in request.form else "false"
            else:
                text = request.form.get(name, "")
                if name in model.SECRETS and not text:
                    if f"clear_{name}" not in request.form:
                        continue  # write-only: empty keeps the current secret
                    text = ""
            try:
                values[name] = settings.parse_value(f"{section}.{name}", text)
            except settings.SettingError as exc:
                form.error(name, str(exc).removeprefix(f"{section}.{name} "))
        if form.ok:
            cleared = settings.set_many(section, values)
            flash(f"{TITLES.get(section, section)} saved; the components apply them now.")
            if cleared:
                flash(cleared_note([_label(name) for name in cleared]) + ".", "error")
            return redirect(url_for("settings.page", section=section))
    status = 400 if form is not None and not form.ok else 200
    connection = feeder_status(section)
    return render_template("settings_page.html", section=section, title=TITLES.get(section, section),
                           fields=_fields(model, row, form), form=form or Form(), enabled=getattr(row, "enabled", None),
                           connection=connection, since=local_time(connection.at) if connection else ""), status


@bp.route("/settings")
def home():
    return redirect(url_for("settings.page", section="general"))
