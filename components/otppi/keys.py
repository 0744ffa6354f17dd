"""Per-device secrets: the OTP key, the session key, the TLS key and certificate, and the setup code.

Made once per device (first boot on the image, ``otppi migrate`` in a dev
root), mode 0600, never regenerated while present: a new OTP key would void
every live OTP, a new session key every admin session. A component that may
not read the secrets folder (the admin web, its own user) gets the keys it
needs from systemd (``LoadCredential=``, ``Paths.credentials``).

The setup code (:mod:`otppi.setup_code`) is a secret of the same kind, made
here while the device has no administrator.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

from .fsutil import atomic_write
from .paths import Paths

KEY_BYTES = 32


def _ensure_random(path: Path) -> bytes:
    if not path.exists():
        atomic_write(path, secrets.token_bytes(KEY_BYTES), mode=0o600)
    data = path.read_bytes()
    if len(data) < KEY_BYTES:
        raise RuntimeError(f"{path} is shorter than {KEY_BYTES} bytes: the device key is damaged")
    return data


def _key(paths: Paths, name: str) -> bytes:
    if paths.credentials is not None and (paths.credentials / name).exists():
        return _ensure_random(paths.credentials / name)
    return _ensure_random(paths.secrets_dir / name)


def otp_key(paths: Paths) -> bytes:
    return _key(paths, "otp.key")


def session_key(paths: Paths) -> bytes:
    return _key(paths, "session.key")


def setup_code_file(paths: Paths) -> Path:
    return paths.secrets_dir / "setup.code"


def write_secret(path: Path, text: str) -> None:
    """A secret made here: mode 0600 in the private secrets folder."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, text.encode(), mode=0o600)


def tls_files(paths: Paths) -> tuple[Path, Path]:
    return paths.secrets_dir / "tls.crt", paths.secrets_dir / "tls.key"


def ensure_tls(paths: Paths, common_name: str = "otppi.local") -> tuple[Path, Path]:
    """A self-signed certificate for the HTTPS listener until the owner installs one."""
    cert, key = tls_files(paths)
    if cert.exists() and key.exists():
        return cert, key
    paths.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp_key, tmp_cert = key.with_suffix(".key.new"), cert.with_suffix(".crt.new")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "3650", "-subj", f"/CN={common_name}",
            "-addext", f"subjectAltName=DNS:{common_name},DNS:localhost,IP:127.0.0.1,IP:192.168.0.11",
            "-keyout", str(tmp_key), "-out", str(tmp_cert),
        ],
        check=True,
        capture_output=True,
    )
    tmp_key.chmod(0o600)
    tmp_key.replace(key)
    tmp_cert.replace(cert)
    return cert, key


def ensure_all(paths: Paths) -> None:
    paths.make_dirs()
    otp_key(paths)
    session_key(paths)
    ensure_tls(paths)
