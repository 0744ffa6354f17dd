"""Split a command line the way a V.250 modem does: "AT", then basic and extended commands.

"ATQ0 V1 E1 S0=0 &C1 &D2 +FCLASS=0" (a dial-up init string) is seven commands; extended commands
are separated by ";" ("AT+CMGF=0;+CNMI=2,1,0,0,0"); D takes the rest of the line as its dial
string. Names come out upper case, arguments exactly as typed (PINs, USSD codes, IMEIs).
"""

from __future__ import annotations

from dataclasses import dataclass

_EXTENDED_START = "+^$%"
_NAME_STOP = "=?;"


@dataclass(frozen=True)
class AtCommand:
    """One command: `name` ("+CMGS", "E", "&F", "S0", "D"), `op` ("", "?", "=", "=?"), `raw`."""

    name: str
    op: str = ""
    raw: str = ""

    @property
    def args(self) -> list[str]:
        """Comma-separated arguments, quotes removed: '1,"*888#",15' -> ['1', '*888#', '15']."""
        return [_unquote(part) for part in split_args(self.raw)] if self.raw else []

    def arg(self, index: int, default: str = "") -> str:
        args = self.args
        return args[index] if index < len(args) and args[index] != "" else default

    def int_arg(self, index: int, default: int | None = None) -> int:
        text = self.arg(index)
        if text == "":
            if default is None:
                raise ValueError(f"{self.name}: argument {index + 1} missing")
            return default
        return int(text)


def split_args(raw: str) -> list[str]:
    parts, current, quoted = [], [], False
    for char in raw:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return parts


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def parse_line(line: str) -> list[AtCommand]:
    """The commands of one line, or ValueError when it is not a well-formed AT line."""
    text = line.strip()
    if text[:2].upper() != "AT":
        raise ValueError("not an AT command line")
    body = text[2:]
    commands: list[AtCommand] = []
    position = 0
    while position < len(body):
        char = body[position]
        if char in " ;":
            position += 1
        elif char in _EXTENDED_START:
            command, position = _extended(body, position)
            commands.append(command)
        elif char.upper() == "D":
            commands.append(AtCommand("D", "", body[position + 1:].strip()))
            break
        elif char == "&":
            name = "&" + body[position + 1:position + 2].upper()
            digits, position = _digits(body, position + 2)
            commands.append(AtCommand(name, "", digits))
        elif char.upper() == "S" and body[position + 1:position + 2].isdigit():
            register, position = _digits(body, position + 1)
            command, position = _register(body, position, "S" + register)
            commands.append(command)
        elif char.isalpha():
            digits, position = _digits(body, position + 1)
            commands.append(AtCommand(char.upper(), "", digits))
        else:
            raise ValueError(f"unexpected {char!r} in an AT command line")
    return commands or [AtCommand("")]


def _digits(body: str, position: int) -> tuple[str, int]:
    end = position
    while end < len(body) and body[end].isdigit():
        end += 1
    return body[position:end], end


def _register(body: str, position: int, name: str) -> tuple[AtCommand, int]:
    if body.startswith("?", position):
        return AtCommand(name, "?"), position + 1
    if body.startswith("=", position):
        value, end = _digits(body, position + 1)
        return AtCommand(name, "=", value), end
    return AtCommand(name), position


def _extended(body: str, position: int) -> tuple[AtCommand, int]:
    end = position + 1
    while end < len(body) and body[end] not in _NAME_STOP:
        end += 1
    name = body[position:end].strip().upper()
    if body.startswith("=?", end):
        return AtCommand(name, "=?"), end + 2
    if body.startswith("?", end):
        return AtCommand(name, "?"), end + 1
    if body.startswith("=", end):
        raw_end, quoted = end + 1, False
        while raw_end < len(body) and (quoted or body[raw_end] != ";"):
            if body[raw_end] == '"':
                quoted = not quoted
            raw_end += 1
        return AtCommand(name, "=", body[end + 1:raw_end]), raw_end
    return AtCommand(name), end
