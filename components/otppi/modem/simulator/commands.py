"""The simulated modems' general AT commands: V.250 basics, identity, SIM, network, USSD, dial.

A handler takes the modem and the parsed command and returns its answer lines (the caller adds
OK), raises `Failure` for an error result, or returns `Deferred` when the final result comes
later (the AT+CMGS prompt, CONNECT). Handlers run on the modem's own thread.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..gsm7 import decode_gsm7, encode_gsm7, pack_septets, unpack_septets
from .base import Deferred, Failure, Handler, SimState, require_sim
from .parser import AtCommand
from .profiles import UssdMenu, swapped_iccid
from .sms import SMS_COMMANDS

if TYPE_CHECKING:
    from .device import SimulatedModem


_PIN = re.compile(r"\d{4,8}")


def _accept(modem: SimulatedModem, command: AtCommand) -> list[str]:
    """Settings the simulator does not model (V1, &C1, +FCLASS=0 ...): accepted, as a modem would."""
    return []


def _echo(modem: SimulatedModem, command: AtCommand) -> list[str]:
    if command.raw not in ("", "0", "1"):
        raise Failure()
    modem.settings.echo = command.raw == "1"
    return []


def _reset(modem: SimulatedModem, command: AtCommand) -> list[str]:
    modem.reset_settings()
    return []


def _identify(modem: SimulatedModem, command: AtCommand) -> list[str]:
    profile = modem.profile
    return [f"Manufacturer: {profile.manufacturer}", f"Model: {profile.model}",
            f"Revision: {profile.revision}", f"IMEI: {modem.imei}"]


def _constant(attribute: str) -> Handler:
    def handler(modem: SimulatedModem, command: AtCommand) -> list[str]:
        if command.op == "=?":
            return []
        return [getattr(modem.profile, attribute)]
    return handler


def _imei(modem: SimulatedModem, command: AtCommand) -> list[str]:
    return [] if command.op == "=?" else [modem.imei]


def _imsi(modem: SimulatedModem, command: AtCommand) -> list[str]:
    require_sim(modem)
    return [modem.sim.imsi]


def _iccid(modem: SimulatedModem, command: AtCommand) -> list[str]:
    if modem.sim_state is SimState.BUSY:
        raise Failure("CME", 14)
    iccid = modem.sim.iccid
    return [modem.profile.iccid_format.format(iccid=iccid, swapped=swapped_iccid(iccid))]


def _cmee(modem: SimulatedModem, command: AtCommand) -> list[str]:
    if command.op == "?":
        return [f"+CMEE: {modem.settings.cmee}"]
    if command.op == "=?":
        return ["+CMEE: (0-2)"]
    value = command.int_arg(0, 0)
    if value not in (0, 1, 2):
        raise Failure()
    modem.settings.cmee = value
    return []


def _cpin(modem: SimulatedModem, command: AtCommand) -> list[str]:
    if modem.sim_state is SimState.BUSY:
        raise Failure("CME", 14)
    if command.op == "?":
        return [f"+CPIN: {modem.sim_state.value}"]
    if command.op != "=":
        return []
    sim = modem.sim
    if modem.sim_state is SimState.READY:
        raise Failure("CME", 3)
    if modem.sim_state is SimState.PUK:
        if command.arg(0) != sim.puk or not _PIN.fullmatch(command.arg(1)):
            raise Failure("CME", 16)
        sim.pin, sim.pin_enabled = command.arg(1), True
    else:
        _check_pin(modem, command.arg(0))
    sim.pin_attempts = 3
    modem.sim_state = SimState.READY
    modem.schedule(0, modem.announce_ready)  # after the OK, as modems do
    return []


def _check_pin(modem: SimulatedModem, pin: str) -> None:
    sim = modem.sim
    if pin == sim.pin:
        sim.pin_attempts = 3
        return
    sim.pin_attempts -= 1
    if sim.pin_attempts <= 0:
        modem.sim_state = SimState.PUK
        raise Failure("CME", 12)
    raise Failure("CME", 16)


def _clck(modem: SimulatedModem, command: AtCommand) -> list[str]:
    if command.op == "=?":
        return ['+CLCK: ("SC")']
    if command.arg(0).upper() != "SC":
        raise Failure("CME", 4)
    mode = command.int_arg(1)
    require_sim(modem)
    if mode == 2:
        return [f"+CLCK: {int(modem.sim.pin_enabled)}"]
    if mode not in (0, 1):
        raise Failure("CME", 50)
    _check_pin(modem, command.arg(2))
    modem.sim.pin_enabled = mode == 1
    return []


def _cpwd(modem: SimulatedModem, command: AtCommand) -> list[str]:
    if command.op == "=?":
        return ['+CPWD: ("SC",8)']
    if command.arg(0).upper() != "SC":
        raise Failure("CME", 4)
    require_sim(modem)
    if not modem.sim.pin_enabled:
        raise Failure("CME", 3)  # the PIN can only be changed while the lock is on
    _check_pin(modem, command.arg(1))
    if not _PIN.fullmatch(command.arg(2)):
        raise Failure("CME", 50)
    modem.sim.pin = command.arg(2)
    return []


def _egmr(modem: SimulatedModem, command: AtCommand) -> list[str]:
    if not modem.profile.has_egmr:
        raise Failure()
    if command.op != "=" or command.arg(1) != "7":
        raise Failure()
    if command.arg(0) == "0":
        return [f'+EGMR: "{modem.imei}"']
    imei = command.arg(2)
    if command.arg(0) != "1" or not re.fullmatch(r"\d{15}", imei):
        raise Failure()
    modem.imei = imei
    return []


def _registered(modem: SimulatedModem) -> bool:
    return modem.sim_state is SimState.READY and modem.registration in (1, 5)


def _cops(modem: SimulatedModem, command: AtCommand) -> list[str]:
    plmn, name = modem.sim.imsi[:5], modem.sim.operator
    act = modem.profile.cops_act
    if command.op == "?":
        if not _registered(modem):
            return ["+COPS: 0"]
        fmt = modem.settings.cops_format
        suffix = "" if act is None else f",{act}"
        return [f'+COPS: 0,{fmt},"{plmn if fmt == 2 else name}"{suffix}']
    if command.op == "=?":
        return [f'+COPS: (2,"{name}","{name}","{plmn}",{act or 0}),,(0-4),(0-2)']
    if command.op == "=" and command.arg(0) == "3":
        modem.settings.cops_format = command.int_arg(1, 0)
    return []


def _cnum(modem: SimulatedModem, command: AtCommand) -> list[str]:
    require_sim(modem)
    return [f'+CNUM: "","+{modem.sim.msisdn}",145'] if modem.sim.msisdn else []


def _csq(modem: SimulatedModem, command: AtCommand) -> list[str]:
    return ["+CSQ: (0-31,99),(0-7,99)"] if command.op == "=?" else [f"+CSQ: {modem.rssi},99"]


def _registration(name: str) -> Handler:
    def handler(modem: SimulatedModem, command: AtCommand) -> list[str]:
        key = name[1:].lower()
        if command.op == "=":
            value = command.int_arg(0, 0)
            if value not in (0, 1, 2):
                raise Failure()
            setattr(modem.settings, key, value)
            return []
        if command.op == "?":
            stat = modem.registration if modem.sim_state is SimState.READY else 0
            return [f"{name}: {getattr(modem.settings, key)},{stat}"]
        return [f"{name}: (0-2)"] if command.op == "=?" else []
    return handler


def _cfun(modem: SimulatedModem, command: AtCommand) -> list[str]:
    if command.op == "?":
        return ["+CFUN: 1"]
    if command.op == "=" and command.arg(1) == "1":
        modem.schedule(0, lambda: modem.power_cycle())  # AT+CFUN=1,1: reset after the OK
    return []


def _cscs(modem: SimulatedModem, command: AtCommand) -> list[str]:
    if command.op == "?":
        return [f'+CSCS: "{modem.settings.cscs}"']
    if command.op == "=?":
        return ['+CSCS: ("IRA","GSM","UCS2")']
    if command.arg(0).upper() not in ("IRA", "GSM", "UCS2"):
        raise Failure("CME", 4)
    modem.settings.cscs = command.arg(0).upper()
    return []


def _cusd(modem: SimulatedModem, command: AtCommand) -> list[str]:
    if command.op == "?":
        return [f"+CUSD: {modem.settings.cusd}"]
    if command.op != "=":
        return ["+CUSD: (0-2)"] if command.op == "=?" else []
    mode = command.int_arg(0, 0)
    if mode == 2:
        modem.ussd_session = None
        return []
    if mode not in (0, 1):
        raise Failure()
    modem.settings.cusd = mode
    if command.arg(1):
        require_sim(modem)
        code = command.arg(1)
        if modem.profile.ussd_packed_gsm7:
            code = _unpack_ussd(code)
        delay = modem.network_delay if modem.ussd_delay is None else modem.ussd_delay
        modem.schedule(delay, lambda: _answer_ussd(modem, code))
    return []


def _answer_ussd(modem: SimulatedModem, code: str) -> None:
    session = modem.ussd_session
    reply = session.options.get(code) if session is not None else None
    if reply is None:
        reply = modem.ussd.get(code)
    if reply is None:
        modem.ussd_session = None
        modem.urc("+CUSD: 4")  # operation not supported (TS 27.007 clause 7.15)
        return
    menu = reply if isinstance(reply, UssdMenu) else None
    modem.ussd_session = menu
    text = menu.text if menu is not None else str(reply)
    if modem.profile.ussd_packed_gsm7:
        text = pack_septets(encode_gsm7(text)).hex().upper()
    # Newlines stay raw inside the quotes, as real modems print menus over several lines.
    modem.urc(f'+CUSD: {1 if menu is not None else 0},"{text}",15')


def _unpack_ussd(code: str) -> str:
    """Huawei takes USSD strings as packed GSM 7-bit hex; 7 spare bits read as a trailing '@'."""
    try:
        data = bytes.fromhex(code)
    except ValueError:
        raise Failure() from None
    return decode_gsm7(unpack_septets(data, len(data) * 8 // 7)).rstrip("@\r")


def _dial(modem: SimulatedModem, command: AtCommand) -> list[str] | Deferred:
    if command.raw.endswith(";"):
        return []  # a voice call: OK, and nothing else is simulated
    if modem.dial_result is not None:
        raise Failure(result=modem.dial_result)
    if not _registered(modem):
        raise Failure(result="NO CARRIER")
    return _connect(modem)


def _connect(modem: SimulatedModem) -> Deferred:
    def start() -> None:
        modem.write_lines([modem.profile.connect_line])
        modem.enter_data_mode()
    return Deferred(start)


def _answer(modem: SimulatedModem, command: AtCommand) -> list[str]:
    raise Failure(result="NO CARRIER")  # nobody is calling


def _register(modem: SimulatedModem, command: AtCommand) -> list[str]:
    if command.op == "?":
        return ["000"]
    return []


def _build_commands() -> dict[str, Handler]:
    commands: dict[str, Handler] = {
        "": _accept, "E": _echo, "Z": _reset, "&F": _reset, "I": _identify,
        "H": _accept, "A": _answer, "D": _dial, "O": lambda m, c: _connect(m),
        "+CGMI": _constant("manufacturer"), "+GMI": _constant("manufacturer"),
        "+CGMM": _constant("model"), "+GMM": _constant("model"),
        "+CGMR": _constant("revision"), "+GMR": _constant("revision"),
        "+CGSN": _imei, "+GSN": _imei, "+CIMI": _imsi,
        "+CMEE": _cmee, "+CPIN": _cpin, "+CLCK": _clck, "+CPWD": _cpwd, "+EGMR": _egmr,
        "+COPS": _cops, "+CNUM": _cnum, "+CSQ": _csq, "+CREG": _registration("+CREG"),
        "+CGREG": _registration("+CGREG"), "+CFUN": _cfun, "+CSCS": _cscs, "+CUSD": _cusd,
        "+GCAP": lambda m, c: ["+GCAP: +CGSM,+DS"],
    }
    for name in ("V", "Q", "X", "L", "M", "&C", "&D", "&K", "&W", "+FCLASS", "+CLIP", "+CRC",
                 "+CLIR", "+IFC", "+IPR", "+ICF", "+CGDCONT", "+CVHU", "+CSMS"):
        commands[name] = _accept
    commands.update(SMS_COMMANDS)
    return commands


COMMANDS = _build_commands()


def handler_for(modem: SimulatedModem, name: str) -> Handler | None:
    """The handler for a command name on this modem's profile; None means ERROR."""
    if name == modem.profile.iccid_command:
        return _iccid
    if name[:1] == "S" and name[1:].isdigit():
        return _register
    return COMMANDS.get(name)
