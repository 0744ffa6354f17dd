"""What differs between real modems, one small table each, and the SIM cards put in them.

Strings are what the modems answer (AT+CGMI, +CGMM, +CGMR); the quirks are the ones the driver has
to live with in the field: which command reads the ICCID and how it is printed, whether AT+EGMR can
write the IMEI, where SIM storage indexes start, what the modem says while it boots, and Huawei's
USSD strings travelling as packed GSM 7-bit hex.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ...luhn import luhn_digit


@dataclass(frozen=True)
class Profile:
    name: str
    manufacturer: str
    model: str
    revision: str
    tac: str  # the first eight IMEI digits (type allocation code) of this model
    echo: bool = True  # echo state after power-up (V.250 says E1)
    iccid_command: str = "+CCID"  # the command after "AT", as the parser names it
    iccid_format: str = "{iccid}"  # {iccid}, or {swapped} for the raw nibble-swapped EF_ICCID
    has_egmr: bool = False  # AT+EGMR=1,7,"<imei>" writes the IMEI (MediaTek and Qualcomm parts)
    first_index: int = 1  # first SIM storage index in +CMTI/+CMGL
    storage_slots: int = 30
    cpin_urc: bool = True  # announces the SIM state with +CPIN: after power-up
    boot_urcs: tuple[str, ...] = ()
    ready_urcs: tuple[str, ...] = ()
    cops_act: int | None = None  # access technology appended to +COPS?
    connect_line: str = "CONNECT"
    ussd_packed_gsm7: bool = False  # USSD strings as packed GSM 7-bit hex, both ways


PROFILES: Mapping[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile(
            name="sim800",
            manufacturer="SIMCOM_Ltd",
            model="SIMCOM_SIM800L",
            revision="Revision:1418B04SIM800L24",
            tac="86547703",
            has_egmr=True,
            boot_urcs=("RDY", "+CFUN: 1"),
            ready_urcs=("Call Ready", "SMS Ready"),
            storage_slots=50,
        ),
        Profile(
            name="ec25",
            manufacturer="Quectel",
            model="EC25",
            revision="EC25EFAR06A06M4G",
            tac="86767504",
            iccid_command="+QCCID",
            iccid_format="+QCCID: {iccid}",
            has_egmr=True,
            first_index=0,
            boot_urcs=("RDY",),
            ready_urcs=("+QUSIM: 1", "+QIND: SMS DONE", "+QIND: PB DONE"),
            cops_act=7,
            connect_line="CONNECT 150000000",
        ),
        Profile(
            name="huawei-e173",
            manufacturer="huawei",
            model="E173",
            revision="11.126.85.00.209",
            tac="35271205",
            iccid_command="^ICCID",
            iccid_format="^ICCID: {swapped}",
            first_index=0,
            cpin_urc=False,
            boot_urcs=("^BOOT:20979969,0,0,0,72",),
            ready_urcs=("^SIMST: 1", "^SRVST: 2", "^RSSI: 20"),
            cops_act=2,
            connect_line="CONNECT 7200000",
            ussd_packed_gsm7=True,
        ),
        Profile(
            name="wavecom",
            manufacturer="WAVECOM MODEM",
            model="MULTIBAND  900E  1800",
            revision="R7.46.0.201108091034.FXT002 2086424 080911 17:34",
            tac="35218000",
            iccid_format='+CCID: "{iccid}"',
            cpin_urc=False,
            storage_slots=20,
            connect_line="CONNECT 9600",
        ),
    )
}

PROFILE_ALIASES = {
    "simcom": "sim800",
    "quectel": "ec25",
    "huawei": "huawei-e173",
    "e173": "huawei-e173",
}


def get_profile(name: str | Profile) -> Profile:
    if isinstance(name, Profile):
        return name
    key = PROFILE_ALIASES.get(name.lower(), name.lower())
    try:
        return PROFILES[key]
    except KeyError:
        raise ValueError(f"unknown modem profile {name!r}; known: {', '.join(PROFILES)}") from None


@dataclass(frozen=True)
class UssdMenu:
    """A USSD reply that keeps the session open (+CUSD: 1) and answers the options sent next."""

    text: str
    options: Mapping[str, str | UssdMenu] = field(default_factory=dict)


UssdReply = str | UssdMenu

DEFAULT_USSD: Mapping[str, UssdReply] = {
    "*888#": "Sisa pulsa Anda Rp 25.000. Aktif s/d 31-12-2026.",
    "*123#": UssdMenu(
        "1 Paket Internet\n2 Info Pulsa",
        {
            "1": UssdMenu("1 10GB 30hr Rp50rb\n2 25GB 30hr Rp100rb",
                          {"1": "Paket 10GB aktif.", "2": "Paket 25GB aktif."}),
            "2": "Sisa pulsa Anda Rp 25.000.",
        },
    ),
}


def ussd_from_json(value: object) -> UssdReply:
    """A reply from its JSON form: a string, or {"text": ..., "options": {key: reply}}."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        options = value.get("options") or {}
        if not isinstance(options, dict):
            raise ValueError("USSD menu options must be an object")
        return UssdMenu(value["text"], {str(k): ussd_from_json(v) for k, v in options.items()})
    raise ValueError(f"a USSD reply is a string or a menu object, not {value!r}")


@dataclass
class SimCard:
    """The SIM: identity, PIN state and message centre. Mutable, as the SIM tool changes it."""

    imsi: str
    iccid: str
    msisdn: str  # international digits without "+", "" when the SIM does not store it
    operator: str
    smsc: str = "+6281100000"
    pin: str = "1234"
    puk: str = "12345678"
    pin_enabled: bool = False
    pin_attempts: int = 3


# (operator, MCC+MNC, MSISDN prefix, SMSC) for the default SIMs: the Indonesian operators the
# original product was built around.
_OPERATORS = (
    ("TELKOMSEL", "51010", "62811", "+6281100000"),
    ("XL", "51011", "62817", "+62818445009"),
    ("INDOSAT", "51001", "62815", "+62816124"),
    ("3", "51089", "62896", "+6289644000001"),
)


def default_sim(index: int) -> SimCard:
    operator, plmn, prefix, smsc = _OPERATORS[index % len(_OPERATORS)]
    serial = f"{index:07d}"
    return SimCard(
        imsi=f"{plmn}{serial:0>10}",
        iccid=with_luhn(f"896210{plmn[3:]}{serial:0>10}"),
        msisdn=f"{prefix}{serial}",
        operator=operator,
        smsc=smsc,
    )


def with_luhn(digits: str) -> str:
    return digits + luhn_digit(digits)


def default_imei(profile: Profile, index: int) -> str:
    return with_luhn(f"{profile.tac}{index:06d}")


def swapped_iccid(iccid: str) -> str:
    """EF_ICCID as stored on the card, nibbles swapped ("8962..." reads "9826..."), as Huawei prints."""
    padded = iccid + "F" * (len(iccid) % 2)
    return "".join(padded[i + 1] + padded[i] for i in range(0, len(padded), 2))
