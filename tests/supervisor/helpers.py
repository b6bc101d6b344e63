"""Small helpers shared by the supervisor tests: child programs and bounded waits."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from collections.abc import Callable
from typing import Any

from medic.supervisor import Backoff, CrashLoopLimit, ServiceSpec, StopSpec


def py(code: str) -> tuple[str, ...]:
    """argv running `code` in this interpreter."""
    return (sys.executable, "-c", textwrap.dedent(code))


def spec(name: str, code: str, **overrides: Any) -> ServiceSpec:
    """A service with test-sized timings: quick starts, short backoff, a loose crash-loop limit."""
    values: dict[str, Any] = {
        "start_seconds": 0.1,
        "backoff": Backoff(initial=0.05, factor=2, max=1, jitter=0, reset_after=0.5),
        "crash_loop": CrashLoopLimit(max_restarts=50, within=60, cooldown=1),
        "stop": StopSpec(timeout=2),
        "hang_grace": 0.5,
    }
    values.update(overrides)
    return ServiceSpec(name=name, argv=py(code), **values)


SLEEPER = "import time\nwhile True: time.sleep(1)"


async def until(predicate: Callable[[], bool], *, timeout: float = 10.0) -> None:
    """Poll `predicate` every 10 ms until true; TimeoutError after `timeout`."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def alive(pid: int) -> bool:
    """True when `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in {"Z", "X"}


def wait_gone(pids: list[int], *, timeout: float = 5.0) -> list[int]:
    """Block until the pids are gone; returns the ones still alive after `timeout`."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [pid for pid in pids if alive(pid)]
        if not left:
            return []
        time.sleep(0.02)
    return [pid for pid in pids if alive(pid)]


def kill(pid: int, sig: int) -> None:
    os.kill(pid, sig)
