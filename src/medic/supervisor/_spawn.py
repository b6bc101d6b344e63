"""Starting a child in its own process group, and noticing its exit at once.

Exit detection uses a pidfd per child registered with the event loop: the
kernel wakes medic the instant the child dies, with no tick anywhere on the crash
path (supervisord reaps on a 1-second poll; research/supervisors.md §3.1). The
exit time is taken in that wake-up, so it is the true failure time.

No child may outlive a SIGKILLed medic for long. The guard
(`medic.supervisor._guard`) does it: one small process per medic that holds the
read end of a pipe and knows every process group medic created. When medic dies
the pipe reaches EOF and the guard SIGKILLs those groups, grandchildren included.

`PR_SET_PDEATHSIG` was measured and rejected for the hot path: it can only be set
between fork and exec, which forces Python's `preexec_fn`, which forces a full
fork() of medic's ~60 MB heap instead of vfork(): 16 ms per spawn instead of
0.25 ms here, four times the whole restart budget (≤ 5 ms). A wrapper per child
would cost an extra exec on every restart; one guard for all children costs a
`write()` per spawn.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from medic.clock import Clock

__all__ = ["Child", "ExitStatus", "kill_group", "spawn"]


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """How and when a child ended (`at`/`monotonic` taken when the kernel told medic)."""

    returncode: int | None
    signal: int | None
    at: datetime
    monotonic: float


class Child:
    """One spawned process: its pid, its group, and a future resolved at its exit."""

    def __init__(self, popen: subprocess.Popen[bytes], *, clock: Clock) -> None:
        self._popen = popen
        self._clock = clock
        self.pid = popen.pid
        self.pgid = popen.pid  # process_group=0 makes the child its group's leader
        self.started_at = clock.now()
        self.started_monotonic = clock.monotonic()
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.exited: asyncio.Future[ExitStatus] = loop.create_future()
        try:
            self._pidfd: int | None = os.pidfd_open(self.pid)
        except OSError:  # pragma: no cover - kernels before 5.3
            self._pidfd = None
            loop.run_in_executor(None, self._wait_blocking)
        else:
            loop.add_reader(self._pidfd, self._reap)

    @property
    def alive(self) -> bool:
        return not self.exited.done()

    def poll(self) -> bool:
        """Reap now if the child has already exited (checks before trusting a timer)."""
        if self.exited.done():
            return True
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return self.exited.done()
        if pid == 0:
            return False
        self._finish(status)
        return True

    def _reap(self) -> None:
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            status = 0
        self._finish(status)

    def _wait_blocking(self) -> None:  # pragma: no cover - kernels before 5.3
        _, status = os.waitpid(self.pid, 0)
        self._loop.call_soon_threadsafe(self._finish, status)

    def _finish(self, status: int) -> None:
        if self.exited.done():
            return
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        if os.WIFSIGNALED(status):
            code, sig = None, os.WTERMSIG(status)
            self._popen.returncode = -sig
        else:
            code, sig = os.waitstatus_to_exitcode(status), None
            self._popen.returncode = code
        self.exited.set_result(ExitStatus(code, sig, self._clock.now(), self._clock.monotonic()))

    def signal_group(self, sig: int) -> bool:
        """Send `sig` to the whole process group; false when the group is gone."""
        return kill_group(self.pgid, sig)

    def __repr__(self) -> str:
        state = "alive" if self.alive else "exited"
        return f"<Child pid={self.pid} {state}>"


def kill_group(pgid: int, sig: int) -> bool:
    """`killpg` that treats a vanished group as done instead of an error."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def group_alive(pgid: int) -> bool:
    """Whether any process is still in the group (signal 0 probes without sending)."""
    return kill_group(pgid, 0)


def spawn(
    argv: Sequence[str],
    *,
    clock: Clock,
    cwd: Path | None,
    env: Mapping[str, str],
    output_fd: int,
) -> Child:
    """Start `argv` as the leader of a new process group, output to `output_fd`.

    Raises OSError when the program cannot be started (missing, not executable).
    """
    popen = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=output_fd,
        stderr=output_fd,
        close_fds=True,
        process_group=0,  # no preexec_fn: it would turn vfork into a slow fork
    )
    return Child(popen, clock=clock)
