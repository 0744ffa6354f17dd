"""Reading the project's systemd unit files, so the dev launcher runs what the device runs."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

VENV_ON_DEVICE = "/opt/otppi/venv/bin/"


@dataclass
class Unit:
    name: str
    options: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def get(self, section: str, key: str, default: str = "") -> str:
        values = self.options.get((section, key))
        return values[-1] if values else default

    def get_all(self, section: str, key: str) -> list[str]:
        """Every value of a repeatable key, space-separated lists split."""
        return [item for value in self.options.get((section, key), []) for item in value.split()]

    @property
    def type(self) -> str:
        return self.get("Service", "Type", "simple")

    @property
    def exec_start(self) -> list[str]:
        return shlex.split(self.get("Service", "ExecStart"))

    @property
    def environment(self) -> dict[str, str]:
        env = {}
        for value in self.options.get(("Service", "Environment"), []):
            for item in shlex.split(value):
                key, _, val = item.partition("=")
                env[key] = val
        return env


def parse_unit(path: Path) -> Unit:
    """A small reader for the subset of unit syntax the project uses (sections, repeated keys)."""
    unit = Unit(path.name)
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path.name}: cannot read line {raw!r}")
        unit.options.setdefault((section, key.strip()), []).append(value.strip())
    return unit


def target_units(units_dir: Path, target: str = "otppi.target") -> list[Unit]:
    """The units the target wants, oneshots first, in the order the target names them."""
    wanted = parse_unit(units_dir / target).get_all("Unit", "Wants")
    units = [parse_unit(units_dir / name) for name in wanted]
    return [u for u in units if u.type == "oneshot"] + [u for u in units if u.type != "oneshot"]


def local_command(unit: Unit, python: str) -> list[str]:
    """ExecStart with the device's venv replaced by this interpreter."""
    argv = unit.exec_start
    program = argv[0]
    if not program.startswith(VENV_ON_DEVICE):
        raise ValueError(f"{unit.name}: ExecStart {program} is not in {VENV_ON_DEVICE}")
    tool = program[len(VENV_ON_DEVICE):]
    if tool.startswith("python"):
        return [python, *argv[1:]]
    return [python, "-m", f"otppi.{'cli' if tool == 'otppi' else tool}", *argv[1:]]
