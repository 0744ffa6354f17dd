"""The one error type of the ``otppi`` command line.

Every command module raises :class:`CliError` for an error its user can act on,
and ``otppi.cli.main`` prints it as ``otppi: <reason>`` on one line and exits
with status 1. It lives in a module of its own because ``python -m otppi.cli``
runs the command line as ``__main__``: a class defined there would be another
class than the one the command modules import, and their errors would escape.
"""

from __future__ import annotations

import re

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")


class CliError(Exception):
    """An error the user can act on: printed as one line, exit status 1."""


def one_line(text: str) -> str:
    """*text* as one printable line: control characters and newlines become single spaces."""
    return " ".join(_CONTROL_CHARS.sub(" ", text).split())
