"""A command channel: run an argv (never a shell) with the notification as JSON on stdin.

The command runs in its own session so a timeout kills its children too; only
the last few KB of its stderr are kept, because a chatty script must not cost
unbounded memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections import deque
from collections.abc import Sequence

from medic.alerts._notifier import DeliveryFailed, attempt
from medic.alerts._templates import one_line
from medic.clock import Clock, system_clock
from medic.errors import ConfigError, MedicInternalError
from medic.events import Delivery, Notification

__all__ = ["CommandNotifier"]

_STDERR_KEEP = 4096
EX_TEMPFAIL = 75  # sysexits.h: "try again later"


class CommandNotifier:
    """Succeeds on exit status 0; a timeout, a signal or exit 75 may be retried, other codes not."""

    kind = "command"

    def __init__(
        self,
        *,
        argv: Sequence[str],
        name: str = "command",
        timeout: float = 10.0,
        clock: Clock = system_clock,
    ) -> None:
        if isinstance(argv, str) or not argv or not all(isinstance(a, str) and a for a in argv):
            raise ConfigError(f"command {name!r}: argv must be a non-empty list of strings")
        if not 0 < timeout <= 3600:
            raise ConfigError(f"command {name!r}: timeout must be within (0, 3600] seconds")
        self.name = name
        self.argv = tuple(argv)
        self.timeout = timeout
        self.target = one_line(" ".join(self.argv), 500)
        self._clock = clock

    async def _run(self, payload: bytes) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise DeliveryFailed(
                f"cannot run {self.argv[0]!r}: {exc.strerror}", retryable=False
            ) from None
        stdin, stderr = proc.stdin, proc.stderr
        if stdin is None or stderr is None:
            raise MedicInternalError("subprocess pipes were not created")
        tail: deque[bytes] = deque()
        kept = 0

        async def feed() -> None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                stdin.write(payload)
                await stdin.drain()
            stdin.close()

        async def drain_stderr() -> None:
            nonlocal kept
            while chunk := await stderr.read(1024):
                tail.append(chunk)
                kept += len(chunk)
                while kept - len(tail[0]) >= _STDERR_KEEP:
                    kept -= len(tail.popleft())

        try:
            async with asyncio.timeout(self.timeout):
                await asyncio.gather(feed(), drain_stderr())
                code = await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise DeliveryFailed(f"timed out after {self.timeout:g}s", retryable=True) from None
        if code != 0:
            err = one_line(b"".join(tail)[-_STDERR_KEEP:].decode("utf-8", "replace"), 500)
            how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            raise DeliveryFailed(
                f"{how}" + (f": {err}" if err else ""), retryable=code < 0 or code == EX_TEMPFAIL
            )

    async def send(self, notification: Notification) -> Delivery:
        payload = json.dumps(notification.as_dict(), ensure_ascii=False).encode() + b"\n"
        return await attempt(self, notification, lambda: self._run(payload), clock=self._clock)

    def __repr__(self) -> str:
        return (
            f"CommandNotifier(name={self.name!r}, argv={list(self.argv)!r}, timeout={self.timeout})"
        )
