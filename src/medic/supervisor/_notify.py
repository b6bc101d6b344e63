"""systemd's sd_notify protocol, so daemons written for systemd work unchanged.

Each service that asks for it gets its own datagram socket (path in
NOTIFY_SOCKET); medic reads `KEY=VALUE` lines: READY=1 makes the start count,
WATCHDOG=1 renews the watchdog deadline (WATCHDOG_USEC tells the child how
often), STOPPING=1 and STATUS=… are remembered for `medic status`. Datagrams are
read at most 4 KiB at a time, so a chatty child cannot grow medic's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from pathlib import Path

__all__ = ["NotifySocket", "parse_notify"]

MAX_DATAGRAM = 4096


def parse_notify(data: bytes) -> dict[str, str]:
    """Parse one sd_notify datagram; malformed lines are skipped, not fatal."""
    fields: dict[str, str] = {}
    for raw in data[:MAX_DATAGRAM].decode("utf-8", "replace").splitlines():
        key, sep, value = raw.partition("=")
        if sep and key.isupper() and len(fields) < 64:
            fields[key] = value[:512]
    return fields


class NotifySocket:
    """A bound AF_UNIX datagram socket that hands each parsed message to `on_message`."""

    def __init__(self, path: Path, on_message: Callable[[dict[str, str]], None]) -> None:
        self.path = path
        self._on_message = on_message
        path.unlink(missing_ok=True)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self._sock.bind(str(path))
        except OSError:
            self._sock.close()
            raise
        os.chmod(path, 0o600)
        self._sock.setblocking(False)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._readable)

    def _readable(self) -> None:
        for _ in range(64):  # bounded work per wake-up
            try:
                data = self._sock.recv(MAX_DATAGRAM)
            except BlockingIOError:
                return
            except OSError:
                return
            self._on_message(parse_notify(data))

    def close(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self.path.unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"<NotifySocket {self.path}>"
