"""Log lines that journald files under their priority, and that stay plain text everywhere else.

Under systemd a component's stderr is a stream to the journal, and journald
reads a ``<N>`` prefix on each line as that line's syslog priority
(sd-daemon(3)), so ``journalctl -p warning -u otppi-modem`` shows warnings and
worse. systemd says the stream is the journal by setting ``JOURNAL_STREAM`` to
the device and inode of that stream (systemd.exec(5)); only when stderr is
that very stream do lines get the prefix, so the dev launcher, the tests and a
component started by hand in a unit's shell stay readable.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import IO

#: sd-daemon(3) priorities: SD_CRIT 2, SD_ERR 3, SD_WARNING 4, SD_INFO 6, SD_DEBUG 7.
_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))


def priority(level: int) -> int:
    return next((p for threshold, p in _PRIORITIES if level >= threshold), 7)


def is_journal(stream: IO[str], environ: dict[str, str] | None = None) -> bool:
    """Whether *stream* is the journal stream systemd named in ``JOURNAL_STREAM`` (``<dev>:<inode>``)."""
    dev, _, inode = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "").partition(":")
    if not (dev.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):  # no file descriptor behind it (a test's StringIO)
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(inode))


class JournalFormatter(logging.Formatter):
    """``<N>`` before every line of a record, a traceback's included, so none falls to the default priority."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).split("\n"))


def setup(plain_format: str, level: int = logging.INFO, stream: IO[str] | None = None) -> None:
    """Log to stderr: priority-prefixed ``logger: message`` lines to the journal, else *plain_format*.

    journald adds the time, the unit and the unit's ``SyslogIdentifier`` itself.
    """
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    if is_journal(stream):
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter(plain_format))
    logging.basicConfig(level=level, handlers=[handler])
