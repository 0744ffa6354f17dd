"""The simulated modem's wire: a pseudo-terminal, served from its master end.

The slave end is a real tty, so the driver opens it with pyserial exactly as it opens /dev/ttyUSB0.
Raw mode on the slave keeps the line discipline from echoing, or turning CR into LF, before the
driver has configured the port itself. The simulator keeps its own slave descriptor open, so the
master does not see a hangup each time a client closes the port; "unplugging" closes both ends.
"""

from __future__ import annotations

import logging
import os
import tty

log = logging.getLogger(__name__)

# What a modem would buffer for a client that is not reading; past this the bytes are dropped,
# as a UART with nobody listening drops them.
MAX_PENDING_OUTPUT = 256 * 1024


class PtyLink:
    """One pseudo-terminal pair, with an optional stable symlink to the slave."""

    def __init__(self, link_path: str | None = None) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self.master, False)
        self.slave_path = os.ttyname(self._slave)
        self.link_path = link_path
        self._out = bytearray()
        if link_path is not None:
            temporary = f"{link_path}.{os.getpid()}.tmp"
            if os.path.lexists(temporary):
                os.unlink(temporary)
            os.symlink(self.slave_path, temporary)
            os.replace(temporary, link_path)

    @property
    def path(self) -> str:
        """What a client opens: the stable link when there is one."""
        return self.link_path or self.slave_path

    @property
    def has_output(self) -> bool:
        return bool(self._out)

    def read(self) -> bytes:
        """Bytes the client wrote; b"" when none are waiting."""
        try:
            return os.read(self.master, 4096)
        except BlockingIOError:
            return b""
        except OSError as exc:  # EIO: no slave open at all, which our own descriptor prevents
            log.debug("pty master read failed: %s", exc)
            return b""

    def write(self, data: bytes) -> None:
        """Queue bytes for the client and send what the pty takes now."""
        self._out += data
        if len(self._out) > MAX_PENDING_OUTPUT:
            log.warning("%s: nobody is reading, dropping %d bytes", self.path, len(self._out))
            self._out.clear()
        self.flush()

    def flush(self) -> None:
        while self._out:
            try:
                written = os.write(self.master, self._out)
            except BlockingIOError:
                return
            except OSError as exc:
                log.debug("pty master write failed: %s", exc)
                self._out.clear()
                return
            del self._out[:written]

    def close(self) -> None:
        """Unplug: the client's next read or write on the slave fails."""
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.link_path is not None:
            try:
                if os.readlink(self.link_path) == self.slave_path:
                    os.unlink(self.link_path)
            except OSError:
                pass
