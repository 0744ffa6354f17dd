"""Every table of the appliance: settings pages, lists, queues and logs.

A settings page of the spec is a single-row model (``id`` 1) whose columns are
the page's fields; lists (modems, API users, email accounts …) are ordinary
tables. ``SECTION`` names a page on the command line (``sms.country_code``),
``SECRETS`` lists write-only fields that are never shown back; they are
:class:`~otppi.store.sealed.SecretField` columns, sealed in the database, and
``DESTINATIONS`` names, for each secret sent somewhere, the fields that say
where (changing one clears the secret: ``otppi.store.sealed.clear_moved``).
"""

from __future__ import annotations

import time

from peewee import (
    BooleanField,
    CharField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from .db import db
from .sealed import SecretField


def now() -> float:
    return time.time()


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False


# ---------------------------------------------------------------- settings pages


class SettingsPage(BaseModel):
    """A page of the spec's settings: one row, created with defaults on first read."""

    SECTION = ""
    SECRETS: frozenset[str] = frozenset()
    DESTINATIONS: dict[str, frozenset[str]] = {}

    @classmethod
    def load(cls) -> "SettingsPage":
        row = cls.get_or_none(cls.id == 1)
        return row if row is not None else cls(id=1)


class GeneralSettings(SettingsPage):
    SECTION = "general"
    device_name = CharField(default="OTP-Pi")
    # The spec gives OTP Expiration in milliseconds; used when a request has no expiration.
    otp_expiration = IntegerField(default=300_000)
    drop_expire_otp = BooleanField(default=True)
    otp_length = IntegerField(default=6)
    otp_max_attempts = IntegerField(default=5)
    otp_message = CharField(default="Your OTP is %s")
    # Periodic restarts, in hours; 0 means Never.
    restart_service = IntegerField(default=0)
    restart_device = IntegerField(default=0)


class TimeSettings(SettingsPage):
    """Device Time Zone, NTP Server and Update Timer (shown on the General page too)."""

    SECTION = "time"
    time_zone = CharField(default="Asia/Jakarta")
    ntp_server = CharField(default="pool.ntp.org")
    # Minutes between NTP updates; 0 means Never (an offline device).
    update_timer = IntegerField(default=0)


class ApiSettings(SettingsPage):
    SECTION = "api"
    http_port = IntegerField(default=8080)
    http_enabled = BooleanField(default=True)
    https_port = IntegerField(default=8443)
    https_enabled = BooleanField(default=False)
    # Address the listeners bind to; the device binds every interface.
    bind_address = CharField(default="0.0.0.0")
    otp_path = CharField(default="/api/otp")
    message_path = CharField(default="/api/sms")
    blocking_path = CharField(default="/api/block")
    unblocking_path = CharField(default="/api/unblock")
    # HTTPS certificate: a keystore entry by name, else these files, else the device's own.
    https_keystore = CharField(default="")
    https_cert_file = CharField(default="")
    https_key_file = CharField(default="")
    # How long a REST request waits for the delivery outcome before answering 1111.
    wait_timeout = FloatField(default=20.0)


class SmsSettings(SettingsPage):
    SECTION = "sms"
    country_code = CharField(default="62")
    prefix_length = IntegerField(default=5)
    log_outgoing = BooleanField(default=True)
    monitor_traffic = BooleanField(default=True)
    # Pacing, per modem: the least time between two messages, and an optional daily cap (0: none).
    min_interval_ms = IntegerField(default=0)
    daily_cap = IntegerField(default=0)
    # A modem failing this many sends in a row rests (quarantine), is reopened, then retried.
    failures_to_quarantine = IntegerField(default=3)
    quarantine_seconds = IntegerField(default=60)
    # How long a message may wait for a usable modem before it fails with 1101.
    queue_timeout = IntegerField(default=300)
    # Ask the network for delivery reports (SMS-STATUS-REPORT) on every message.
    status_report = BooleanField(default=True)
    # Seconds a modem may take to accept one part (AT+CMGS) before it counts as failed.
    send_timeout = IntegerField(default=60)


#: Where a feeder's password goes: the broker's address and whether the link to it is encrypted.
_BROKER = frozenset({"host", "port", "ssl", "allow_plain_login"})


class _FeederSettings(SettingsPage):
    SECRETS = frozenset({"password"})
    DESTINATIONS = {"password": _BROKER}
    enabled = BooleanField(default=False)
    ssl = BooleanField(default=False)
    ca_file = CharField(default="")
    host = CharField(default="localhost")
    username = CharField(default="")
    password = SecretField(default="")
    # Every broker protocol here carries the password in clear without TLS: refused unless this says so.
    allow_plain_login = BooleanField(default=False)
    topic = CharField(default="sms")
    # Seconds.
    timeout = FloatField(default=10.0)
    reconnect_delay = FloatField(default=5.0)
    # Seconds between forced reconnects; 0 keeps a connection as long as it lives.
    refresh_connection = IntegerField(default=0)
    # request-ussd from this broker: anyone who may publish on the topic could move credit with it.
    allow_ussd = BooleanField(default=False)


class FeederWsSettings(_FeederSettings):
    SECTION = "feeder_ws"
    DESTINATIONS = {"password": _BROKER | {"path"}}
    port = IntegerField(default=8000)
    path = CharField(default="/ws")


class FeederAmqpSettings(_FeederSettings):
    SECTION = "feeder_amqp"
    port = IntegerField(default=5672)
    virtual_host = CharField(default="/")
    prefetch = IntegerField(default=16)


class FeederRedisSettings(_FeederSettings):
    SECTION = "feeder_redis"
    port = IntegerField(default=6379)
    # "pubsub" (the spec's channel) or "streams" (consumer group, nothing lost).
    mode = CharField(default="pubsub")
    group = CharField(default="otppi")


class FeederMqttSettings(_FeederSettings):
    SECTION = "feeder_mqtt"
    port = IntegerField(default=1883)
    client_id = CharField(default="otppi")
    # An MQTT 5 shared subscription group for fleet mode; empty for a plain subscription.
    share_group = CharField(default="")


class MailSettings(SettingsPage):
    """How the mailer writes and sends email; the accounts themselves are EmailAccount rows."""

    SECTION = "mail"
    # Display name in From; empty: the device name.
    from_name = CharField(default="")
    # Subjects used when a request names none; empty: built from the device name.
    default_subject = CharField(default="")
    otp_subject = CharField(default="")
    reset_subject = CharField(default="")
    # Seconds for the connection and for each SMTP command.
    timeout = FloatField(default=30.0)
    # After every account failed a message and one of them for a reason that may pass (server down,
    # a 4xx reply), the pool is tried again this many times, the first after retry_delay seconds,
    # each wait twice the one before; then the message fails (1102).
    pool_retries = IntegerField(default=2)
    retry_delay = FloatField(default=30.0)


class AdminSettings(SettingsPage):
    """Where the admin web listens: the device's own page, never on the public API ports."""

    SECTION = "admin"
    port = IntegerField(default=8888)
    bind_address = CharField(default="0.0.0.0")
    # Minutes of inactivity after which an administrator must log in again.
    session_minutes = IntegerField(default=60)


class BellSettings(SettingsPage):
    SECTION = "bell"
    fail_send_sms = BooleanField(default=True)
    amqp_disconnected = BooleanField(default=False)
    mqtt_disconnected = BooleanField(default=False)
    redis_disconnected = BooleanField(default=False)
    ws_disconnected = BooleanField(default=False)


class CloudflareAccount(SettingsPage):
    SECTION = "cloudflare"
    SECRETS = frozenset({"api_key", "token"})
    DESTINATIONS = {"api_key": frozenset({"endpoint"}), "token": frozenset({"endpoint"})}
    endpoint = CharField(default="https://api.cloudflare.com/client/v4")
    account_id = CharField(default="")
    email = CharField(default="")
    api_key = SecretField(default="")
    token = SecretField(default="")
    active = BooleanField(default=False)


class NoipAccount(SettingsPage):
    SECTION = "noip"
    SECRETS = frozenset({"password"})
    DESTINATIONS = {"password": frozenset({"endpoint"})}
    endpoint = CharField(default="https://dynupdate.no-ip.com/nic/update")
    username = CharField(default="")
    password = SecretField(default="")
    company_name = CharField(default="")
    maintainer_email = CharField(default="")
    active = BooleanField(default=False)


class DynuAccount(SettingsPage):
    SECTION = "dynu"
    SECRETS = frozenset({"api_key", "password"})
    DESTINATIONS = {"api_key": frozenset({"endpoint"}), "password": frozenset({"endpoint"})}
    api_version = CharField(default="v2")
    endpoint = CharField(default="https://api.dynu.com/v2")
    api_key = SecretField(default="")
    username = CharField(default="")
    password = SecretField(default="")
    company_name = CharField(default="")
    maintainer_email = CharField(default="")
    active = BooleanField(default=False)


class AfraidAccount(SettingsPage):
    SECTION = "afraid"
    SECRETS = frozenset({"password"})
    DESTINATIONS = {"password": frozenset({"endpoint"})}
    endpoint = CharField(default="https://freedns.afraid.org/dynamic/update.php")
    username = CharField(default="")
    password = SecretField(default="")
    company_name = CharField(default="")
    maintainer_email = CharField(default="")
    active = BooleanField(default=False)


class DhcpSettings(SettingsPage):
    SECTION = "dhcp"
    domain_name = CharField(default="otppi.lan")
    domain_name_servers = CharField(default="ns1.otppi.lan, ns2.otppi.lan")
    router_address = CharField(default="192.168.0.1")
    netmask = CharField(default="255.255.255.0")
    subnet_mask = CharField(default="255.255.255.0")
    domain_name_servers_address = CharField(default="192.168.0.11")
    default_lease_time = IntegerField(default=3600)
    max_lease_time = IntegerField(default=7200)
    ranges = CharField(default="192.168.0.20-192.168.0.100")


class WlanSettings(SettingsPage):
    SECTION = "wlan"
    # The access point's own password: sealed, but sent nowhere.
    SECRETS = frozenset({"ssid_password"})
    ssid = CharField(default="OTP-Pi")
    ssid_password = SecretField(default="")
    key_management = CharField(default="WPA-PSK")
    ip_address = CharField(default="192.168.0.11")
    prefix = IntegerField(default=24)
    netmask = CharField(default="255.255.255.0")
    gateway = CharField(default="192.168.0.1")
    dns = CharField(default="192.168.0.1")


class EthernetSettings(SettingsPage):
    SECTION = "ethernet"
    # Empty address means DHCP client on the wired port.
    ip_address = CharField(default="")
    prefix = IntegerField(default=24)
    netmask = CharField(default="255.255.255.0")
    gateway = CharField(default="")
    dns1 = CharField(default="")
    dns2 = CharField(default="")


SETTINGS_PAGES: tuple[type[SettingsPage], ...] = (
    GeneralSettings,
    TimeSettings,
    ApiSettings,
    SmsSettings,
    FeederWsSettings,
    FeederAmqpSettings,
    FeederRedisSettings,
    FeederMqttSettings,
    MailSettings,
    AdminSettings,
    BellSettings,
    CloudflareAccount,
    NoipAccount,
    DynuAccount,
    AfraidAccount,
    DhcpSettings,
    WlanSettings,
    EthernetSettings,
)


class Meta(BaseModel):
    """Small store-wide counters, e.g. the settings generation components watch."""

    key = CharField(primary_key=True)
    value = IntegerField(default=0)


# ---------------------------------------------------------------- accounts


class Administrator(BaseModel):
    username = CharField(unique=True)
    password_hash = CharField()
    phone = CharField(default="")
    email = CharField(default="")
    created_at = FloatField(default=now)
    last_login_at = FloatField(null=True)


class AdminSession(BaseModel):
    """A logged-in admin web session, so that logging out ends it on the server, and every session ends
    after an absolute lifetime. The cookie carries a random token, the store only its SHA-256."""

    token_hash = CharField(unique=True)
    admin = ForeignKeyField(Administrator, on_delete="CASCADE")
    created_at = FloatField(default=now)
    expires_at = FloatField()


class SetupCode(BaseModel):
    """The first-run setup code's HMAC (``otppi.setup_code``); the row is deleted with the first administrator."""

    digest = CharField()
    created_at = FloatField(default=now)


class ApiUser(BaseModel):
    username = CharField(unique=True)
    password_hash = CharField()
    phone = CharField(default="")
    email = CharField(default="")
    active = BooleanField(default=True)
    created_at = FloatField(default=now)
    # request-ussd: USSD codes can move credit (buy packages, transfer balance), so only users allowed to.
    allow_ussd = BooleanField(default=False)


# ---------------------------------------------------------------- lists


class Modem(BaseModel):
    """A modem of the Modem Settings table; identity fields are filled by the modem component."""

    SECRETS = frozenset({"sim_pin", "apn_password"})
    # The PIN goes to the SIM behind the port; the APN password over a data call through it to that APN.
    DESTINATIONS = {"sim_pin": frozenset({"port"}), "apn_password": frozenset({"port", "apn"})}

    name = CharField(unique=True)
    port = CharField()
    manufacturer = CharField(default="")
    model = CharField(default="")
    revision = CharField(default="")
    imei = CharField(default="")
    imsi = CharField(default="")
    operator = CharField(default="")
    msisdn = CharField(default="")
    sms_center = CharField(default="")
    # Comma-separated MSISDN prefixes ("62871,62872").
    prefixes = TextField(default="")
    sim_pin = SecretField(default="")
    baud_rate = IntegerField(default=115200)
    parity = CharField(default="N")
    start_bits = IntegerField(default=1)
    data_bits = IntegerField(default=8)
    stop_bits = FloatField(default=1)
    internet_access = BooleanField(default=False)
    apn = CharField(default="")
    apn_username = CharField(default="")
    apn_password = SecretField(default="")
    dial_number = CharField(default="*99#")
    init_dial_1 = CharField(default="")
    init_dial_2 = CharField(default="")
    init_dial_3 = CharField(default="")
    init_dial_4 = CharField(default="")
    init_dial_5 = CharField(default="")
    dial_command = CharField(default="ATD")
    send_from_api = BooleanField(default=True)
    is_default = BooleanField(default=False)
    active = BooleanField(default=True)
    created_at = FloatField(default=now)
    updated_at = FloatField(default=now)

    def prefix_list(self) -> list[str]:
        return [p for p in (s.strip() for s in self.prefixes.split(",")) if p]


class BlockedNumber(BaseModel):
    msisdn = CharField(unique=True)
    created_at = FloatField(default=now)
    source = CharField(default="")


class EmailAccount(BaseModel):
    SECRETS = frozenset({"sender_password"})
    DESTINATIONS = {"sender_password": frozenset({"smtp_host", "smtp_port", "ssl", "starttls", "allow_plain_login"})}

    smtp_host = CharField()
    smtp_port = IntegerField(default=587)
    ssl = BooleanField(default=False)
    starttls = BooleanField(default=True)
    authentication = BooleanField(default=True)
    sender_account = CharField()
    sender_password = SecretField(default="")
    # A password goes only over SSL or STARTTLS unless this is set (a server that offers nothing else).
    allow_plain_login = BooleanField(default=False)
    active = BooleanField(default=True)
    # 0 means no daily quota.
    daily_quota = IntegerField(default=0)
    sent_today = IntegerField(default=0)
    quota_day = CharField(default="")
    # A CA file that alone is trusted for this server's certificate; empty: the system's CAs.
    ca_file = CharField(default="")
    created_at = FloatField(default=now)


class DdnsRecord(BaseModel):
    provider = CharField()  # cloudflare | noip | dynu | afraid
    record_type = CharField(default="A")
    zone = CharField()
    record_name = CharField()
    ttl = IntegerField(default=300)
    proxied = BooleanField(default=False)
    # Minutes between updates.
    update_interval = IntegerField(default=10)
    force_create_zone = BooleanField(default=False)
    active = BooleanField(default=True)
    last_address = CharField(default="")
    last_update_at = FloatField(null=True)


class FirewallPort(BaseModel):
    port = IntegerField()
    protocol = CharField(default="tcp")
    is_open = BooleanField(default=True)
    comment = CharField(default="")

    class Meta:
        indexes = ((("port", "protocol"), True),)


class KeystoreEntry(BaseModel):
    """A TLS certificate and key the HTTPS listener can use (the key is sealed, and sent nowhere)."""

    SECRETS = frozenset({"private_key"})

    name = CharField(unique=True)
    certificate = TextField()
    private_key = SecretField()
    active = BooleanField(default=True)
    created_at = FloatField(default=now)


# ---------------------------------------------------------------- queues and logs


class SmsOutbox(BaseModel):
    """An SMS to send: queued → sending → sent | failed | expired.

    ``body`` holds the clear OTP for OTP messages and is erased once the
    message leaves (sent, failed or expired).
    """

    message_key = CharField(null=True, unique=True)  # the request's idempotency key
    kind = CharField(default="sms")  # sms | otp | manual
    source = CharField(default="")
    receiver = CharField()
    body = TextField(null=True)
    state = CharField(default="queued", index=True)
    attempts = IntegerField(default=0)
    last_error = CharField(default="")
    modem = CharField(default="")
    created_at = FloatField(default=now)
    updated_at = FloatField(default=now)
    sent_at = FloatField(null=True)
    expires_at = FloatField(null=True)
    parts = IntegerField(default=0)
    delivery_state = CharField(default="")
    # The modem's TP-MR of each part, "12,13": status reports are matched on (modem, reference).
    message_refs = CharField(default="")
    # Modems that already failed this message, "modem1,modem3": failover skips them.
    tried = CharField(default="")
    # The one modem a manual SMS must leave through (empty: routed like any other).
    via = CharField(default="")


class EmailOutbox(BaseModel):
    message_key = CharField(null=True, unique=True)
    kind = CharField(default="email")  # email | otp | reset
    source = CharField(default="")
    receiver = CharField()
    subject = CharField(default="")
    body = TextField(null=True)
    state = CharField(default="queued", index=True)
    attempts = IntegerField(default=0)
    last_error = CharField(default="")
    account = CharField(default="")
    created_at = FloatField(default=now)
    updated_at = FloatField(default=now)
    sent_at = FloatField(null=True)
    expires_at = FloatField(null=True)
    # Ids of the accounts that failed it in this pass over the pool, "3,5": failover skips them.
    tried = CharField(default="")
    # Whether one of them failed for a reason that may pass (server down, a 4xx reply).
    retryable = BooleanField(default=False)
    # Passes over the pool already retried, and when the next may start.
    rounds = IntegerField(default=0)
    retry_at = FloatField(null=True)


class Otp(BaseModel):
    """A one-time password: only a keyed hash of the code and its context is kept.

    A reference is unique per owner, the source that created it (``rest:<API user>``, a feeder's name):
    only that source may validate it.
    """

    owner = CharField(default="")
    reference = CharField()
    mac = CharField()
    channel = CharField(default="sms")  # sms | email
    state = CharField(default="live")  # live | used | void
    attempts = IntegerField(default=0)
    created_at = FloatField(default=now)
    expires_at = FloatField()
    sms = ForeignKeyField(SmsOutbox, null=True, on_delete="SET NULL")
    email = ForeignKeyField(EmailOutbox, null=True, on_delete="SET NULL")

    class Meta:
        indexes = ((("owner", "reference"), True),)


class ResetCode(BaseModel):
    """An administrator's password-reset code, kept apart from API OTPs (no API request can name it).

    One row per administrator: only an HMAC of the live code (``mac``, empty when there is none), when the
    last message was queued (the cooldown runs from it), and the wrong codes tried across codes.
    """

    admin = ForeignKeyField(Administrator, unique=True, on_delete="CASCADE")
    mac = CharField(default="")
    expires_at = FloatField(default=0.0)
    sent_at = FloatField(default=0.0)
    failures = IntegerField(default=0)
    failed_at = FloatField(default=0.0)
    sms = ForeignKeyField(SmsOutbox, null=True, on_delete="SET NULL")
    email = ForeignKeyField(EmailOutbox, null=True, on_delete="SET NULL")


class InboxMessage(BaseModel):
    modem = CharField()
    sender = CharField()
    body = TextField()
    sent_at = FloatField(null=True)  # the SMSC timestamp
    received_at = FloatField(default=now)
    is_read = BooleanField(default=False)
    parts = IntegerField(default=1)  # parts received
    # Some parts never arrived (otppi.modem.inbox.INCOMPLETE_AFTER): the body marks where they belong.
    incomplete = BooleanField(default=False)


class ModemStatus(BaseModel):
    """What the modem component knows of each modem right now, for the monitor, CLI and admin."""

    name = CharField(unique=True)
    state = CharField(default="starting")  # starting | ready | quarantined | disconnected | internet
    connected = BooleanField(default=False)
    signal_dbm = IntegerField(null=True)
    registration = CharField(default="")
    operator = CharField(default="")
    last_error = CharField(default="")
    failures = IntegerField(default=0)
    quarantined_until = FloatField(null=True)
    sent_day = CharField(default="")
    sent_today = IntegerField(default=0)
    last_sent_at = FloatField(null=True)
    updated_at = FloatField(default=now)


class InboxPart(BaseModel):
    """One part of an incoming multipart SMS, kept until every part is in (survives restarts)."""

    modem = CharField()
    sender = CharField()
    reference = IntegerField()
    total = IntegerField()
    sequence = IntegerField()
    text = TextField()
    sent_at = FloatField(null=True)
    received_at = FloatField(default=now)

    class Meta:
        indexes = ((("modem", "sender", "reference", "total", "sequence"), True),)


class Event(BaseModel):
    """What the monitor and the buzzer watch: one row per outcome or connection change."""

    at = FloatField(default=now, index=True)
    kind = CharField()  # sms | email | feeder | inbox | block
    source = CharField(default="")
    modem = CharField(default="")
    receiver = CharField(default="")  # always masked
    result = CharField(default="")
    cause = CharField(default="")


LIST_MODELS: tuple[type[BaseModel], ...] = (
    Administrator,
    ApiUser,
    Modem,
    BlockedNumber,
    EmailAccount,
    DdnsRecord,
    FirewallPort,
    KeystoreEntry,
)

QUEUE_MODELS: tuple[type[BaseModel], ...] = (SmsOutbox, EmailOutbox, Otp, ResetCode, AdminSession, SetupCode,
                                              InboxMessage, InboxPart, ModemStatus, Event)

ALL_MODELS: tuple[type[BaseModel], ...] = (Meta,) + SETTINGS_PAGES + LIST_MODELS + QUEUE_MODELS
