"""The control socket: how `medic status|start|stop|restart|logs|reload|down` reach `medic up`.

A Unix stream socket beside the store, mode 0600 in a 0700 directory, and every
connection's peer checked with SO_PEERCRED: only the user running medic (or root)
may drive it. The protocol is one JSON request line, answered by JSON lines;
`logs -f` keeps answering until the client hangs up. Requests are bounded
(64 KiB) so a misbehaving client cannot grow medic's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from medic.errors import EnvironmentFault, UserError

__all__ = ["ControlClient", "ControlServer", "Send"]

MAX_REQUEST = 65536
Send = Callable[[dict[str, Any]], Awaitable[None]]
Handler = Callable[[dict[str, Any], Send], Awaitable[None]]


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class ControlServer:
    """Accepts control connections and hands each request to `handler`."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self._handler = handler
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self.refused = 0

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path.unlink(missing_ok=True)
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.path), limit=MAX_REQUEST
        )
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._clients):
            task.cancel()
        for task in list(self._clients):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            await self._conversation(reader, writer)
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
        ):
            pass
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _conversation(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        async def send(message: dict[str, Any]) -> None:
            writer.write(json.dumps(message, default=str).encode() + b"\n")
            await writer.drain()

        sock = writer.get_extra_info("socket")
        uid = peer_uid(sock) if sock is not None else -1
        if uid not in (os.getuid(), 0):
            self.refused += 1
            await send(
                {"ok": False, "error": "permission denied: this medic belongs to another user"}
            )
            return
        line = await reader.readline()
        try:
            request = json.loads(line)
        except json.JSONDecodeError:
            await send({"ok": False, "error": "bad request: expected one JSON object"})
            return
        if not isinstance(request, dict):
            await send({"ok": False, "error": "bad request: expected one JSON object"})
            return
        await self._handler(request, send)


class ControlClient:
    """The CLI's side: blocking, one request per connection."""

    def __init__(self, path: Path, *, timeout: float = 60.0) -> None:
        self.path = path
        self.timeout = timeout

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            raise UserError(
                f"medic is not running (no control socket at {self.path}); start it with `medic up`"
            ) from exc
        except OSError as exc:
            sock.close()
            raise EnvironmentFault(f"cannot reach medic at {self.path}: {exc}") from exc
        return sock

    def stream(
        self, request: dict[str, Any], *, timeout: float | None = -1.0
    ) -> Iterator[dict[str, Any]]:
        """Send `request` and yield every answer line until medic closes the connection."""
        sock = self._connect()
        if timeout != -1.0:
            sock.settimeout(timeout)
        try:
            sock.sendall(json.dumps(request).encode() + b"\n")
            with sock.makefile("rb") as answers:
                for raw in answers:
                    message = json.loads(raw)
                    if not isinstance(message, dict):
                        raise EnvironmentFault("medic sent a malformed answer")
                    if message.get("ok") is False:
                        raise UserError(str(message.get("error", "request failed")))
                    yield message
        finally:
            sock.close()

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send `request` and return its single answer."""
        for message in self.stream(request):
            return message
        raise EnvironmentFault("medic closed the connection without answering")
