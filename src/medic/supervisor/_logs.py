"""Bounded capture of a child's output: rotated files plus an in-memory tail.

Memory is bounded whatever the child writes: medic reads at most one pipe buffer
at a time, keeps only the last `tail_lines` lines (each cut at `MAX_LINE` bytes),
and a follower that falls behind loses lines instead of growing a queue. A child
that writes faster than medic can store is slowed by its full pipe, never the
other way round. Files rotate at `max_bytes`: no file ever exceeds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from pathlib import Path

__all__ = ["LogCapture", "LogFollower"]

MAX_LINE = 4096
READ_CHUNK = 65536


class LogFollower:
    """A bounded queue of new lines for `medic logs -f`; drops the oldest when full."""

    def __init__(self, capture: LogCapture, *, maxsize: int = 1000) -> None:
        self._capture = capture
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def _push(self, line: str) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(line)

    def close(self) -> None:
        self._capture._followers.discard(self)


class LogCapture:
    """One service's output: a pipe medic reads, a rotated file, a tail in memory."""

    def __init__(
        self,
        name: str,
        *,
        directory: Path | None,
        max_bytes: int,
        keep: int,
        tail_lines: int,
    ) -> None:
        if max_bytes < 1 or keep < 0 or tail_lines < 1:
            raise ValueError("log bounds must be positive")
        self.name = name
        self.max_bytes = max_bytes
        self.keep = keep
        self._tail: deque[bytes] = deque(maxlen=tail_lines)
        self._partial = b""
        self._followers: set[LogFollower] = set()
        self._pipes: set[int] = set()
        self.path = directory / f"{name}.log" if directory is not None else None
        self._file_size = 0
        self._fd: int | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._open()
        self.bytes_seen = 0

    def _open(self) -> None:
        if self.path is None:
            return
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._file_size = os.fstat(self._fd).st_size

    def _rotate(self) -> None:
        if self.path is None:
            return
        if self._fd is not None:
            os.close(self._fd)
        if self.keep == 0:
            self.path.unlink(missing_ok=True)
        else:
            for index in range(self.keep - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{index}")
                if older.exists():
                    older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        self._open()

    def _write_file(self, data: bytes) -> None:
        if self._fd is None:
            return
        if len(data) > self.max_bytes:
            data = data[-self.max_bytes :]
        if self._file_size and self._file_size + len(data) > self.max_bytes:
            self._rotate()
        os.write(self._fd, data)
        self._file_size += len(data)

    def feed(self, data: bytes) -> None:
        """Take one chunk of output: file first, then the bounded tail and followers."""
        self.bytes_seen += len(data)
        self._write_file(data)
        parts = (self._partial + data).split(b"\n")
        self._partial = parts.pop()[-MAX_LINE:]
        keep = self._tail.maxlen or 1
        lines = parts[-keep:] if not self._followers else parts
        for line in lines:
            cut = line[-MAX_LINE:]
            self._tail.append(cut)
            if self._followers:
                text = cut.decode("utf-8", "replace")
                for follower in tuple(self._followers):
                    follower._push(text)

    def attach(self, fd: int) -> None:
        """Read `fd` (a pipe's read end) from the running loop until EOF, then close it."""
        os.set_blocking(fd, False)
        loop = asyncio.get_running_loop()
        self._pipes.add(fd)

        def readable() -> None:
            try:
                data = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if data:
                self.feed(data)
                return
            self._detach(fd)

        loop.add_reader(fd, readable)

    def _detach(self, fd: int) -> None:
        if fd in self._pipes:
            self._pipes.discard(fd)
            with contextlib.suppress(RuntimeError, ValueError, OSError):
                asyncio.get_running_loop().remove_reader(fd)
            with contextlib.suppress(OSError):
                os.close(fd)

    def tail(self, n: int) -> list[str]:
        """The last `n` complete lines (fewer if fewer were kept)."""
        lines = list(self._tail)[-n:] if n > 0 else []
        return [line.decode("utf-8", "replace") for line in lines]

    def follow(self, *, maxsize: int = 1000) -> LogFollower:
        follower = LogFollower(self, maxsize=maxsize)
        self._followers.add(follower)
        return follower

    def close(self) -> None:
        """Stop reading (a grandchild may still hold a pipe open) and close the file."""
        for fd in list(self._pipes):
            self._detach(fd)
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def __repr__(self) -> str:
        return f"<LogCapture {self.name} tail={len(self._tail)} seen={self.bytes_seen}B>"
