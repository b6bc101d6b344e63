"""The guard: one tiny process that kills medic's process groups if medic is SIGKILLed.

medic writes ``+PGID`` when it creates a process group and ``-PGID`` once the group
is gone. The guard reads those lines from a pipe; EOF means medic died (a clean
shutdown forgets every group first), so it SIGKILLs whatever groups it still
knows. It lives in its own session so a terminal's Ctrl-C cannot take it down
before medic, and it ignores nothing else: `kill` still ends it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

__all__ = ["Guard"]

_SOURCE = r"""
import os, signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
groups, buf = set(), b""
while True:
    data = os.read(0, 65536)
    if not data:
        break
    buf += data
    *lines, buf = buf.split(b"\n")
    for line in lines:
        try:
            if line[:1] == b"+":
                groups.add(int(line[1:]))
            elif line[:1] == b"-":
                groups.discard(int(line[1:]))
        except ValueError:
            pass
for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""


class Guard:
    """Owns the guard process and the write end of its pipe."""

    def __init__(self) -> None:
        read_end, self._write_end = os.pipe()
        try:
            self._popen: subprocess.Popen[bytes] | None = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _SOURCE],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                close_fds=True,
                start_new_session=True,
            )
        finally:
            os.close(read_end)
        self.groups: set[int] = set()

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def _send(self, line: str) -> None:
        if self._popen is None:
            return
        try:
            os.write(self._write_end, line.encode())
        except OSError:  # the guard died; PDEATHSIG still covers direct children
            self._popen = None

    def watch(self, pgid: int) -> None:
        self.groups.add(pgid)
        self._send(f"+{pgid}\n")

    def forget(self, pgid: int) -> None:
        self.groups.discard(pgid)
        self._send(f"-{pgid}\n")

    def close(self) -> None:
        """Clean shutdown: forget every group, then let the guard exit on EOF."""
        for pgid in list(self.groups):
            self.forget(pgid)
        with contextlib.suppress(OSError):
            os.close(self._write_end)
        if self._popen is not None:
            try:
                self._popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait()
            self._popen = None

    def __repr__(self) -> str:
        return f"<Guard pid={self.pid} groups={len(self.groups)}>"
