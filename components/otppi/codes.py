"""The response codes of the one request contract (a string, ``response_code``)."""

SUCCESS = "000"
UNAUTHORIZED = "1100"
NO_MODEM = "1101"
FAILED = "1102"
QUEUED = "1111"
OTP_LIVE = "1201"
OTP_INVALID = "1202"
OTP_EXPIRED = "1203"
OTP_VOID = "1204"
BLOCKED = "1205"
MALFORMED = "1300"

MEANING = {
    SUCCESS: "success",
    UNAUTHORIZED: "unauthorized",
    NO_MODEM: "no modem can take the message, or the modem failed to send it",
    FAILED: "failed",
    QUEUED: "accepted and queued, outcome not known within the wait time",
    OTP_LIVE: "an OTP with this reference is still live",
    OTP_INVALID: "invalid OTP",
    OTP_EXPIRED: "OTP expired",
    OTP_VOID: "too many wrong attempts: the OTP is now void",
    BLOCKED: "receiver is on the block list",
    MALFORMED: "malformed request",
}

ALL = frozenset(MEANING)
