"""The typed errors of the modem driver, and the numeric CME/CMS codes they carry.

Callers decide on the type, never on message text: a `ModemTimeout` or `ModemClosed` says the port
needs attention, a `CmsError` with a transient code says "try another modem or later", a `CmeError`
11 says "enter the PIN". Modems report errors numerically (AT+CMEE=1) or verbosely (AT+CMEE=2);
`parse_error_line` maps both forms onto the same code so the rest of the driver never has to care.

Code tables: 3GPP TS 27.007 clause 9.2 (+CME ERROR) and TS 27.005 clause 3.2.5 (+CMS ERROR, where
1..127 are TS 24.011 RP causes, 128..255 TS 23.040 TP-FCS values, 512 and up manufacturer specific).
"""

from __future__ import annotations

import re

CME_ERRORS: dict[int, str] = {
    0: "phone failure",
    1: "no connection to phone",
    2: "phone-adaptor link reserved",
    3: "operation not allowed",
    4: "operation not supported",
    5: "PH-SIM PIN required",
    6: "PH-FSIM PIN required",
    7: "PH-FSIM PUK required",
    10: "SIM not inserted",
    11: "SIM PIN required",
    12: "SIM PUK required",
    13: "SIM failure",
    14: "SIM busy",
    15: "SIM wrong",
    16: "incorrect password",
    17: "SIM PIN2 required",
    18: "SIM PUK2 required",
    20: "memory full",
    21: "invalid index",
    22: "not found",
    23: "memory failure",
    24: "text string too long",
    25: "invalid characters in text string",
    26: "dial string too long",
    27: "invalid characters in dial string",
    30: "no network service",
    31: "network timeout",
    32: "network not allowed - emergency calls only",
    40: "network personalization PIN required",
    41: "network personalization PUK required",
    42: "network subset personalization PIN required",
    43: "network subset personalization PUK required",
    44: "service provider personalization PIN required",
    45: "service provider personalization PUK required",
    46: "corporate personalization PIN required",
    47: "corporate personalization PUK required",
    50: "incorrect parameters",
    100: "unknown",
    103: "illegal MS",
    106: "illegal ME",
    107: "GPRS services not allowed",
    111: "PLMN not allowed",
    112: "location area not allowed",
    113: "roaming not allowed in this location area",
    132: "service option not supported",
    133: "requested service option not subscribed",
    134: "service option temporarily out of order",
    148: "unspecified GPRS error",
    149: "PDP authentication failure",
    150: "invalid mobile class",
}

CMS_ERRORS: dict[int, str] = {
    1: "unassigned (unallocated) number",
    8: "operator determined barring",
    10: "call barred",
    21: "short message transfer rejected",
    27: "destination out of service",
    28: "unidentified subscriber",
    29: "facility rejected",
    30: "unknown subscriber",
    38: "network out of order",
    41: "temporary failure",
    42: "congestion",
    47: "resources unavailable, unspecified",
    50: "requested facility not subscribed",
    69: "requested facility not implemented",
    81: "invalid short message transfer reference value",
    95: "invalid message, unspecified",
    96: "invalid mandatory information",
    97: "message type non-existent or not implemented",
    98: "message not compatible with short message protocol state",
    99: "information element non-existent or not implemented",
    111: "protocol error, unspecified",
    127: "interworking, unspecified",
    128: "telematic interworking not supported",
    129: "short message type 0 not supported",
    130: "cannot replace short message",
    143: "unspecified TP-PID error",
    144: "data coding scheme (alphabet) not supported",
    145: "message class not supported",
    159: "unspecified TP-DCS error",
    160: "command cannot be actioned",
    161: "command unsupported",
    175: "unspecified TP-Command error",
    176: "TPDU not supported",
    192: "SC busy",
    193: "no SC subscription",
    194: "SC system failure",
    195: "invalid SME address",
    196: "destination SME barred",
    197: "SM rejected-duplicate SM",
    198: "TP-VPF not supported",
    199: "TP-VP not supported",
    208: "SIM SMS storage full",
    209: "no SMS storage capability in SIM",
    210: "error in MS",
    211: "memory capacity exceeded",
    212: "SIM application toolkit busy",
    213: "SIM data download error",
    255: "unspecified error cause",
    300: "ME failure",
    301: "SMS service of ME reserved",
    302: "operation not allowed",
    303: "operation not supported",
    304: "invalid PDU mode parameter",
    305: "invalid text mode parameter",
    310: "SIM not inserted",
    311: "SIM PIN required",
    312: "PH-SIM PIN required",
    313: "SIM failure",
    314: "SIM busy",
    315: "SIM wrong",
    316: "SIM PUK required",
    317: "SIM PIN2 required",
    318: "SIM PUK2 required",
    320: "memory failure",
    321: "invalid memory index",
    322: "memory full",
    330: "SMSC address unknown",
    331: "no network service",
    332: "network timeout",
    340: "no +CNMA acknowledgement expected",
    500: "unknown error",
}

# Causes after which the same message may well go through a little later or through another
# modem: network-side congestion and outages, and a SIM still starting (24.011 table 8.4).
TRANSIENT_CMS_CODES = frozenset({38, 41, 42, 47, 192, 314, 331, 332})
TRANSIENT_CME_CODES = frozenset({14, 30, 31})

_CME_BY_TEXT = {text.lower(): code for code, text in CME_ERRORS.items()}
_CMS_BY_TEXT = {text.lower(): code for code, text in CMS_ERRORS.items()}

_ERROR_LINE = re.compile(r"^\+(CME|CMS) ERROR:\s*(.*?)\s*$", re.IGNORECASE)


class ModemError(Exception):
    """Anything that went wrong talking to a modem."""


class ModemTimeout(ModemError):
    """The modem did not finish answering in time; the session stays usable."""


class ModemClosed(ModemError):
    """The port is gone (closed, unplugged, or it could not be opened)."""


class ModemUnavailable(ModemError):
    """The modem cannot take interactive work now (not connected, carrying a PPP link, stopping)."""


class ModemBusy(ModemError):
    """Another interactive call already waits for this modem: this one is refused, not queued."""


class CallExpired(ModemTimeout):
    """The caller's deadline passed before the modem got to the call: it was skipped, never run."""


class Unsupported(ModemError):
    """The modem cannot do this at all (its firmware has no such command)."""


class UssdError(ModemError):
    """The network ended a USSD request without a reply (+CUSD: 2..5, TS 27.007 clause 7.15)."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


class CommandError(ModemError):
    """The modem answered a command with a plain ERROR (or another failure result code)."""

    def __init__(self, message: str = "ERROR", *, command: str | None = None,
                 lines: list[str] | None = None) -> None:
        super().__init__(message if command is None else f"{command}: {message}")
        self.command = command
        self.lines = list(lines or [])

    @property
    def transient(self) -> bool:
        """Whether retrying later (or elsewhere) may succeed."""
        return False


class _CodedError(CommandError):
    kind = ""
    table: dict[int, str] = {}
    transient_codes: frozenset[int] = frozenset()

    def __init__(self, code: int | None, text: str | None = None, *, command: str | None = None,
                 lines: list[str] | None = None) -> None:
        if text is None:
            text = describe(self.table, code)
        self.code = code
        self.text = text
        shown = text if code is None else f"{code} ({text})"
        super().__init__(f"+{self.kind} ERROR: {shown}", command=command, lines=lines)

    @property
    def transient(self) -> bool:
        return self.code in self.transient_codes


class CmeError(_CodedError):
    """+CME ERROR: an equipment or SIM failure (TS 27.007 clause 9.2)."""

    kind = "CME"
    table = CME_ERRORS
    transient_codes = TRANSIENT_CME_CODES


class CmsError(_CodedError):
    """+CMS ERROR: a message service failure (TS 27.005 clause 3.2.5)."""

    kind = "CMS"
    table = CMS_ERRORS
    transient_codes = TRANSIENT_CMS_CODES


class DialError(CommandError):
    """A dial or answer command ended with NO CARRIER, BUSY, NO ANSWER or NO DIALTONE."""

    def __init__(self, result: str, *, command: str | None = None,
                 lines: list[str] | None = None) -> None:
        super().__init__(result, command=command, lines=lines)
        self.result = result


def describe(table: dict[int, str], code: int | None) -> str:
    """The text for a numeric code; 512 and up are manufacturer specific by definition."""
    if code is None:
        return "unknown error"
    if code in table:
        return table[code]
    if code >= 512:
        return "manufacturer specific"
    return "unknown error"


def cme_code(text: str) -> int | None:
    """The numeric code of a verbose +CME ERROR text, or None when the text is not a standard one."""
    return _CME_BY_TEXT.get(text.strip().lower())


def cms_code(text: str) -> int | None:
    """The numeric code of a verbose +CMS ERROR text, or None when the text is not a standard one."""
    return _CMS_BY_TEXT.get(text.strip().lower())


def parse_error_line(line: str, *, command: str | None = None,
                     lines: list[str] | None = None) -> CmeError | CmsError | None:
    """The typed error for a "+CME ERROR: ..." or "+CMS ERROR: ..." line, else None.

    Accepts "+CME ERROR: 14" (AT+CMEE=1) and "+CME ERROR: SIM busy" (AT+CMEE=2) alike; a verbose
    text that is not in the standard table keeps its own text and a code of None.
    """
    match = _ERROR_LINE.match(line.strip())
    if match is None:
        return None
    kind, detail = match.group(1).upper(), match.group(2)
    cls = CmeError if kind == "CME" else CmsError
    if detail.isdigit():
        return cls(int(detail), command=command, lines=lines)
    lookup = cme_code if cls is CmeError else cms_code
    code = lookup(detail)
    return cls(code, detail or None, command=command, lines=lines)


_DIAL_FAILURES = frozenset({"NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE"})
# Some ZTE and Huawei firmwares answer an unknown command with these instead of ERROR.
_OTHER_FAILURES = frozenset({"COMMAND NOT SUPPORT", "TOO MANY PARAMETERS"})


def final_outcome(line: str, *, command: str | None = None,
                  lines: list[str] | None = None) -> tuple[bool, ModemError | None]:
    """(is the line a final result code (V.250 clause 5.7.2), the error it means or None)."""
    if line == "OK" or line == "CONNECT" or line.startswith("CONNECT "):
        return True, None
    if line == "ERROR" or line in _OTHER_FAILURES:
        return True, CommandError(line, command=command, lines=lines)
    if line in _DIAL_FAILURES:
        return True, DialError(line, command=command, lines=lines)
    error = parse_error_line(line, command=command, lines=lines)
    if error is not None:
        return True, error
    return False, None
