"""The built-in checks: process, HTTP, TCP, command, heartbeat file.

A check is an async callable taking a `Target` and returning an `Outcome`; it may
also raise, which counts as a failure with the exception as evidence. Checks never
time themselves out: the monitor cuts every check at its probe's timeout, so a
check that hangs (a stopped server accepting connections but never answering)
is a failure, not a stuck probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil

from medic.clock import Clock
from medic.health._http import HttpError, http_request

__all__ = [
    "Check",
    "CommandCheck",
    "HeartbeatCheck",
    "HttpCheck",
    "Outcome",
    "ProcessCheck",
    "Target",
    "TcpCheck",
]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One probe result: passed or not, evidence for the timeline, and the failure's kind."""

    ok: bool
    detail: str = ""
    kind: str = "unknown"


@dataclass(frozen=True, slots=True)
class Target:
    """What a check may look at: the service's name, its current pid, the clock."""

    service: str
    pid: Callable[[], int | None]
    clock: Clock


class Check(Protocol):
    """A health check; `type` names it in config, events and the docs."""

    @property
    def type(self) -> str: ...

    async def __call__(self, target: Target) -> Outcome: ...


_BAD_STATUSES = frozenset({psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD})


@dataclass(frozen=True, slots=True)
class ProcessCheck:
    """The service's main process exists and is not stopped (SIGSTOP) or a zombie."""

    type: str = "process"

    async def __call__(self, target: Target) -> Outcome:
        pid = target.pid()
        if pid is None:
            return Outcome(False, "not running")
        try:
            status = psutil.Process(pid).status()
        except psutil.NoSuchProcess:
            return Outcome(False, f"pid {pid} is gone")
        if status in _BAD_STATUSES or status == "tracing-stop":
            return Outcome(False, f"pid {pid} is {status}", "timeout")
        return Outcome(True, f"pid {pid} is {status}")


@dataclass(frozen=True, slots=True)
class HttpCheck:
    """An HTTP request answers with the expected status (and body substring)."""

    url: str
    method: str = "GET"
    expect_status: tuple[int, ...] = (200,)
    body_contains: str | None = None
    type: str = "http"

    async def __call__(self, target: Target) -> Outcome:
        read = 65536 if self.body_contains is not None else 0
        try:
            status, body = await http_request(self.url, self.method, read_body=read)
        except (OSError, HttpError, asyncio.IncompleteReadError, ValueError) as exc:
            reason = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else str(exc)
            return Outcome(
                False, f"{self.method} {self.url}: {reason or type(exc).__name__}", "connection"
            )
        if status not in self.expect_status:
            return Outcome(False, f"{self.method} {self.url} returned {status}", "connection")
        if self.body_contains is not None and self.body_contains not in body.decode(
            "utf-8", "replace"
        ):
            return Outcome(
                False, f"{self.url}: body lacks {self.body_contains!r}", "data-integrity"
            )
        return Outcome(True, f"{self.method} {self.url} → {status}")


@dataclass(frozen=True, slots=True)
class TcpCheck:
    """A TCP connection to host:port is accepted."""

    host: str
    port: int
    type: str = "tcp"

    async def __call__(self, target: Target) -> Outcome:
        try:
            _, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            return Outcome(False, f"tcp {self.host}:{self.port}: {reason}", "connection")
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return Outcome(True, f"tcp {self.host}:{self.port} accepted")


@dataclass(frozen=True, slots=True)
class CommandCheck:
    """A command exits with the expected code; it is killed if the probe times out."""

    argv: tuple[str, ...]
    expect_exit: int = 0
    type: str = "command"

    async def __call__(self, target: Target) -> Outcome:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            return Outcome(False, f"cannot run {self.argv[0]!r}: {exc.strerror or exc}", "config")
        try:
            code = await proc.wait()
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 9)
                await asyncio.shield(proc.wait())
        if code != self.expect_exit:
            return Outcome(False, f"{self.argv[0]} exited {code}, expected {self.expect_exit}")
        return Outcome(True, f"{self.argv[0]} exited {code}")


@dataclass(frozen=True, slots=True)
class HeartbeatCheck:
    """A file the service touches is younger than `max_age` seconds."""

    path: Path
    max_age: float
    type: str = "heartbeat"

    async def __call__(self, target: Target) -> Outcome:
        try:
            mtime = self.path.stat().st_mtime
        except OSError as exc:
            return Outcome(False, f"heartbeat {self.path}: {exc.strerror or exc}", "timeout")
        age = target.clock.now().timestamp() - mtime
        if age > self.max_age:
            return Outcome(
                False, f"heartbeat {self.path} is {age:.1f}s old (max {self.max_age:g}s)", "timeout"
            )
        return Outcome(True, f"heartbeat {age:.1f}s old")
