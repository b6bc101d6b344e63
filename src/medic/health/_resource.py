"""The resource check: RSS, CPU over a window, open fds, threads, free disk.

Measured on the service's whole process tree (the main pid and its descendants),
because a leak in a worker child is still the service's leak. CPU is averaged
over the samples of the last `cpu_window` seconds, so one busy second does not
restart a service whose budget is an average.
"""

from __future__ import annotations

import resource
import shutil
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from medic.health._checks import Outcome, Target

__all__ = ["ResourceCheck"]


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return [root]


@dataclass(slots=True)
class ResourceCheck:
    """Thresholds on what the service uses; any one breached fails the probe."""

    rss_max: int | None = None
    cpu_max_percent: float | None = None
    cpu_window: float = 60.0
    fds_max_percent: float | None = None
    threads_max: int | None = None
    disk_free_min: int | None = None
    disk_path: Path = Path("/")
    type: str = "resource"
    _samples: deque[tuple[int, float, float]] = field(
        default_factory=lambda: deque(maxlen=512), compare=False, repr=False
    )

    async def __call__(self, target: Target) -> Outcome:
        problems: list[str] = []
        seen: list[str] = []
        if self.disk_free_min is not None:
            free = shutil.disk_usage(self.disk_path).free
            seen.append(f"disk free {free}B")
            if free < self.disk_free_min:
                problems.append(f"{self.disk_path} has {free}B free < {self.disk_free_min}B")
        pid = target.pid()
        if pid is None:
            return Outcome(not problems, "; ".join(problems or seen or ["not running"]), "resource")
        try:
            procs = _tree(pid)
            rss = sum(p.memory_info().rss for p in procs)
            cpu = sum(sum(p.cpu_times()[:2]) for p in procs)
            threads = sum(p.num_threads() for p in procs)
            fds = procs[0].num_fds()
            soft = procs[0].rlimit(resource.RLIMIT_NOFILE)[0]
        except psutil.NoSuchProcess:
            return Outcome(False, f"pid {pid} is gone", "resource")
        seen.append(f"rss {rss}B, threads {threads}, fds {fds}")
        if self.rss_max is not None and rss > self.rss_max:
            problems.append(f"rss {rss}B > {self.rss_max}B")
        if self.threads_max is not None and threads > self.threads_max:
            problems.append(f"{threads} threads > {self.threads_max}")
        if self.fds_max_percent is not None and soft > 0:
            percent = 100.0 * fds / soft
            if percent > self.fds_max_percent:
                problems.append(f"{fds} fds = {percent:.0f}% of {soft} > {self.fds_max_percent:g}%")
        if self.cpu_max_percent is not None:
            now = target.clock.monotonic()
            self._samples.append((pid, now, cpu))
            while self._samples and (
                self._samples[0][0] != pid or now - self._samples[0][1] > self.cpu_window
            ):
                self._samples.popleft()
            first_pid, first_t, first_cpu = self._samples[0]
            if now > first_t and first_pid == pid:
                percent = 100.0 * (cpu - first_cpu) / (now - first_t)
                seen.append(f"cpu {percent:.0f}%")
                if percent > self.cpu_max_percent:
                    problems.append(f"cpu {percent:.0f}% > {self.cpu_max_percent:g}%")
        if problems:
            return Outcome(False, "; ".join(problems), "resource")
        return Outcome(True, "; ".join(seen))
