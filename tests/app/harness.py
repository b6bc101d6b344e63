"""Runs a real `MedicApp` inside a test's event loop and talks to it over its socket."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medic.app import ControlClient, MedicApp
from medic.bus import Subscription
from medic.tracker import Tracker

PY = sys.executable

SERVER = """
import http.server, os, signal, sys
port = int(sys.argv[1])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok"
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
"""

SLEEPER = "import time\nwhile True: time.sleep(1)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def toml_str(text: str) -> str:
    """A TOML basic string for `text` (escapes backslashes, quotes and newlines)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@dataclass
class Running:
    app: MedicApp
    client: ControlClient
    store: Path

    async def call(self, **request: Any) -> dict[str, Any]:
        return await asyncio.to_thread(self.client.call, request)

    def tracker(self) -> Tracker:
        return Tracker(str(self.store))


@contextlib.asynccontextmanager
async def running(tmp_path: Path, config: str) -> AsyncIterator[Running]:
    """Start medic on `config` and stop it (gracefully) when the block ends."""
    path = tmp_path / "medic.toml"
    path.write_text(config)
    store = tmp_path / "state" / "medic.db"
    app = MedicApp(config_path=path, store_url=str(store))
    ready = asyncio.Event()
    task = asyncio.create_task(app.run(on_ready=ready.set))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait({task, waiter}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()
    try:
        yield Running(app, ControlClient(app.paths.socket), store)
    finally:
        app.request_stop()
        await asyncio.wait_for(task, 60)


async def wait_event(
    sub: Subscription, match: Callable[[Any], bool], *, timeout: float = 15
) -> Any:
    """The first event on `sub` for which `match` is true."""
    async with asyncio.timeout(timeout):
        async for event in sub:
            if match(event):
                return event
    raise AssertionError("subscription closed")


async def until(predicate: Callable[[], bool], *, timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)
