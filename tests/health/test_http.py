"""The probes' HTTP client reads status and a bounded body from real, sometimes rude, servers."""

from __future__ import annotations

import asyncio

import pytest

from medic.health._http import HttpError, http_request


async def _serve(answer: bytes, url_path: str = "/x", **kw: object) -> tuple[int, bytes]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await http_request(f"http://127.0.0.1:{port}{url_path}", **kw)  # type: ignore[arg-type]
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", (200, b"hello")),
        (
            b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            (503, b"abcde"),
        ),
        (b"HTTP/1.0 200 OK\r\n\r\nuntil close", (200, b"until close")),
        (b"HTTP/1.1 204 No Content\r\n\r\n", (204, b"")),
    ],
)
def test_status_and_body_are_read(answer: bytes, expected: tuple[int, bytes]) -> None:
    """Content-Length, chunked and read-until-close bodies all come back whole."""
    assert asyncio.run(_serve(answer, read_body=1000)) == expected


def test_the_body_is_bounded() -> None:
    """A huge body is read only up to the bound."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"z" * 1_000_000
    status, body = asyncio.run(_serve(answer, read_body=100))
    assert (status, len(body)) == (200, 100)


@pytest.mark.parametrize("answer", [b"SSH-2.0-OpenSSH\r\n", b"HTTP/1.1 abc\r\n\r\n", b""])
def test_garbage_is_an_http_error(answer: bytes) -> None:
    """A non-HTTP answer raises HttpError rather than passing the probe."""
    with pytest.raises(HttpError):
        asyncio.run(_serve(answer))


def test_non_http_urls_are_refused() -> None:
    """Only http and https URLs are probed."""
    with pytest.raises(HttpError, match="not an http"):
        asyncio.run(http_request("ftp://example.org/"))
