"""Every filesystem path the appliance uses, derived from one root.

On the device the root is ``/``; development runs and tests point
``OTPPI_ROOT`` at a throwaway directory and need no privileges.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping


@dataclass(frozen=True)
class Paths:
    root: Path
    #: systemd's $CREDENTIALS_DIRECTORY (LoadCredential=): device keys handed to a component that may not
    #: read the secrets folder itself (the admin web runs as its own user).
    credentials: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Paths":
        env = os.environ if env is None else env
        credentials = env.get("CREDENTIALS_DIRECTORY")
        return cls(Path(env.get("OTPPI_ROOT") or "/").absolute(), Path(credentials) if credentials else None)

    @property
    def state_dir(self) -> Path:
        return self.root / "var/lib/otppi"

    @property
    def database(self) -> Path:
        return self.state_dir / "otppi.db"

    @property
    def secrets_dir(self) -> Path:
        return self.state_dir / "secrets"

    @property
    def runtime_dir(self) -> Path:
        return self.root / "run/otppi"

    @property
    def etc_dir(self) -> Path:
        return self.root / "etc"

    def doorbell(self, owner: str) -> Path:
        """The datagram socket an owner component listens on for work."""
        return self.runtime_dir / f"{owner}.bell"

    def outcome_bells(self) -> Path:
        """Directory of sockets of processes waiting for outbox outcomes."""
        return self.runtime_dir / "outcome"

    def make_dirs(self) -> None:
        """Create the state and runtime directories: shared with the group (the admin web runs as its own
        user in group otppi, and binds its outcome bell beside the others), the secrets private."""
        for d in (self.state_dir, self.runtime_dir, self.outcome_bells()):
            try:
                d.mkdir(parents=True, mode=0o770)
            except FileExistsError:
                continue  # made by systemd (StateDirectory=, RuntimeDirectory=) or an earlier run: left as it is
            d.chmod(0o770)  # mkdir's mode is cut by the umask
        self.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
