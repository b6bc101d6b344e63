"""The three ways a runbook step touches the world: a child process, an HTTP request, a TCP connect.

A child runs in its own session so that a timeout kills everything it started
(its process group, grandchildren included), and so do leftovers once it exits:
a step that wants a long-lived process asks medic to `restart` a service instead.
Captured output keeps only its tail, so a chatty command cannot fill memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass

import httpx

__all__ = ["Probe", "http_request", "run_argv", "tcp_connect"]

CHUNK = 4096
POLL = 0.02


@dataclass(frozen=True, slots=True)
class Probe:
    """What one action or verification did: ok, timed out, and the evidence for either."""

    ok: bool
    timed_out: bool = False
    exit_code: int | None = None
    status: int | None = None
    output: str = ""
    detail: str = ""


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def run_argv(
    argv: tuple[str, ...], *, timeout: float, limit: int, expect_exit: int = 0
) -> Probe:
    """Run argv (never through a shell); its whole process group dies on timeout."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return Probe(ok=False, detail=f"cannot start {argv[0]!r}: {exc.strerror or exc}")
    tail = bytearray()

    async def read() -> None:
        stream = proc.stdout
        while stream is not None and (chunk := await stream.read(CHUNK)):
            tail.extend(chunk)
            if len(tail) > limit:
                del tail[: len(tail) - limit]

    async def exited() -> None:
        # Not proc.wait(): it also waits for the pipe to close, which a leftover holds open.
        while proc.returncode is None:
            await asyncio.sleep(POLL)

    reader = asyncio.create_task(read())
    timed_out = False
    try:
        await asyncio.wait_for(exited(), timeout)
    except TimeoutError:
        timed_out = True
    finally:
        # On timeout, cancellation or a normal exit alike: nothing of the step outlives it.
        _kill_group(proc.pid)
        await proc.wait()
        try:
            await asyncio.wait_for(reader, 5.0)
        except TimeoutError:
            reader.cancel()
    text = tail.decode("utf-8", "replace")
    if timed_out:
        return Probe(ok=False, timed_out=True, output=text, detail=f"timed out after {timeout:g}s")
    code = proc.returncode
    ok = code == expect_exit
    detail = f"exit {code}" + ("" if ok else f", expected {expect_exit}")
    return Probe(ok=ok, exit_code=code, output=text, detail=detail)


async def http_request(
    *,
    method: str,
    url: str,
    body: str | None,
    content_type: str | None = None,
    expect: tuple[int, ...],
    expect_body: str | None,
    timeout: float,
    limit: int,
) -> Probe:
    """One request; ok when the status is expected (any 2xx by default) and the body fits."""
    try:
        # httpx's timeout is per read; asyncio.timeout bounds the whole exchange.
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
        ):
            headers = {"content-type": content_type} if content_type else None
            response = await client.request(method, url, content=body, headers=headers)
    except (httpx.TimeoutException, TimeoutError):
        return Probe(
            ok=False, timed_out=True, detail=f"{method} {url} timed out after {timeout:g}s"
        )
    except httpx.HTTPError as exc:
        return Probe(ok=False, detail=f"{method} {url}: {type(exc).__name__}: {exc}")
    status = response.status_code
    text = response.text[-limit:]
    ok = status in expect if expect else 200 <= status < 300
    detail = f"HTTP {status}"
    if not ok:
        detail += f", expected {', '.join(map(str, expect)) or '2xx'}"
    elif expect_body is not None and expect_body not in response.text:
        ok, detail = False, f"HTTP {status} but the body lacks {expect_body!r}"
    return Probe(ok=ok, status=status, output=text, detail=detail)


async def tcp_connect(*, host: str, port: int, timeout: float) -> Probe:
    """Ok when a TCP connection opens within the timeout."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return Probe(ok=False, timed_out=True, detail=f"tcp {host}:{port} timed out")
    except OSError as exc:
        return Probe(ok=False, detail=f"tcp {host}:{port}: {exc.strerror or exc}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return Probe(ok=True, detail=f"tcp {host}:{port} open")
