"""A minimal HTTP/1.1 client for probes, on asyncio streams.

A probe needs one request on a fresh connection, the status and at most a bounded
piece of the body. A general client (httpx) spends ~1–2 ms of CPU per request on
that; fifty services probed every second made medic burn 10 % of a core, so
probes use this instead (research/supervisors.md asks for a quiet daemon).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from urllib.parse import urlsplit

__all__ = ["HttpError", "http_request"]

MAX_HEADERS = 100


class HttpError(Exception):
    """The server's answer was not HTTP we can read."""


async def _read_chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    body = b""
    while len(body) < limit:
        size_line = await reader.readline()
        try:
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
        except ValueError as exc:
            raise HttpError(f"bad chunk size {size_line[:20]!r}") from exc
        if size == 0:
            break
        body += await reader.readexactly(min(size, limit - len(body)))
        if len(body) >= limit:
            break
        await reader.readline()
    return body[:limit]


async def http_request(url: str, method: str = "GET", *, read_body: int = 0) -> tuple[int, bytes]:
    """Send one request with `Connection: close`; return the status and up to `read_body` bytes."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpError(f"not an http(s) URL: {url!r}")
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    context = ssl.create_default_context() if secure else None
    reader, writer = await asyncio.open_connection(parts.hostname, port, ssl=context)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        writer.write(
            f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: medic-probe\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n".encode("latin-1")
        )
        await writer.drain()
        status_line = await reader.readline()
        fields = status_line.split(None, 2)
        if len(fields) < 2 or not fields[0].startswith(b"HTTP/"):
            raise HttpError(f"not an HTTP answer: {status_line[:40]!r}")
        try:
            status = int(fields[1])
        except ValueError as exc:
            raise HttpError(f"bad status line {status_line[:40]!r}") from exc
        length: int | None = None
        chunked = False
        for _ in range(MAX_HEADERS):
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                with contextlib.suppress(ValueError):
                    length = int(value.strip())
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        body = b""
        if read_body > 0 and method != "HEAD":
            if chunked:
                body = await _read_chunked(reader, read_body)
            elif length is not None:
                body = await reader.readexactly(min(length, read_body))
            else:
                body = await reader.read(read_body)
        return status, body
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
