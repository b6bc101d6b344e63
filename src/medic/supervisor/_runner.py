"""One service's life: spawn, wait for ready, watch the exit, decide, back off, repeat.

Each service runs one asyncio task that owns its child; commands (start, stop,
kill, mark_ready) only set flags and wake that task, so there is one writer of
the state and every transition goes through `ALLOWED`. Decisions are taken on the
exit reported by the kernel (the child's real lifetime), never on a timer racing
the exit: a child that dies a microsecond before its start time is a failed start
(supervisord counts those as started; research/supervisors.md §3.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medic.bus import Bus
from medic.clock import Clock
from medic.events import (
    ProcessEvent,
    ServiceExited,
    ServiceFatal,
    ServiceKilling,
    ServiceReady,
    ServiceRestarting,
    ServiceStarting,
    ServiceStopped,
)
from medic.supervisor._guard import Guard
from medic.supervisor._logs import LogCapture
from medic.supervisor._notify import NotifySocket
from medic.supervisor._policy import CrashLoopWindow
from medic.supervisor._spawn import Child, group_alive, kill_group, spawn
from medic.supervisor._spec import Readiness, ServiceSpec
from medic.supervisor._states import ProcessState, check_transition

__all__ = ["ServiceRunner", "ServiceStatus"]

S = ProcessState
GROUP_POLL = 0.02


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """A snapshot of one service for `medic status`."""

    name: str
    state: str
    pid: int | None
    uptime: float | None
    restarts: int
    failures: int
    last_exit: str | None
    status_text: str
    fatal_for: float | None


class ServiceRunner:
    """Keeps one service in the state it is asked to be in."""

    def __init__(
        self,
        spec: ServiceSpec,
        *,
        bus: Bus,
        clock: Clock,
        rng: random.Random,
        runtime_dir: Path,
        guard: Guard | None = None,
        on_event: Callable[[ProcessEvent], None] | None = None,
    ) -> None:
        self.spec = spec
        self._bus, self._clock, self._rng, self._guard = bus, clock, rng, guard
        self._runtime_dir = runtime_dir
        self._on_event = on_event
        self.state = S.STOPPED
        self.child: Child | None = None
        self.attempt = 0
        self.restarts = 0
        self.failures = 0
        self.ready_monotonic: float | None = None
        self.last_exit: ServiceExited | None = None
        self.status_text = ""
        self.fatal_until: float | None = None
        self._window = CrashLoopWindow(spec.crash_loop)
        self._wanted = False
        self._stop_requested = False
        self._stopped_by = "operator"
        self._poked = False
        self._operator_start = False
        self._kill_reason: str | None = None
        self._ready_via: str | None = None
        self._wake = asyncio.Event()
        self._ready_signal = asyncio.Event()
        # (states, future) pairs: a waiter is released by the transition itself, so a state
        # that lasts no longer than one loop iteration (STOPPED then STARTING) is not missed.
        self._waiters: list[tuple[frozenset[ProcessState], asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._killer: asyncio.Task[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._notify: NotifySocket | None = None
        self.logs = LogCapture(
            spec.name,
            directory=spec.logs.directory,
            max_bytes=spec.logs.max_bytes,
            keep=spec.logs.keep,
            tail_lines=spec.logs.tail_lines,
        )

    # -- commands -------------------------------------------------------------

    def run(self) -> None:
        """Start the service's task (idle until `start()`)."""
        if self._task is None:
            if self.spec.notify or self.spec.watchdog:
                path = self._runtime_dir / f"{self.spec.name}.notify"
                self._notify = NotifySocket(path, self._on_notify)
            self._task = asyncio.create_task(self._main(), name=f"medic:{self.spec.name}")

    def start(self, *, operator: bool = True) -> None:
        """Want the service running; skips a pending backoff or cooldown."""
        self._wanted = True
        if self.state is not S.STOPPING:  # a stop in progress finishes first, then it starts
            self._stop_requested = False
        self._operator_start = operator
        self._poke()

    async def stop(self, *, by: str = "operator") -> None:
        """Stop gracefully (stop signal + SIGCONT, SIGKILL after the timeout) and wait."""
        self._wanted = False
        if self.state is S.STOPPED and self.child is None:
            return
        self._stop_requested, self._stopped_by = True, by
        child = self.child
        if child is not None and child.alive:
            if self.state in (S.STARTING, S.RUNNING):
                self._set(S.STOPPING)
            if self._killer is None:
                self._killer = asyncio.create_task(
                    self._terminate(child, self.spec.stop.signal, self.spec.stop.timeout, "")
                )
        self._poke()
        await self.wait_for(S.STOPPED)

    def kill(self, reason: str) -> bool:
        """Kill a live but failing child (hung, unhealthy) so that it restarts."""
        child = self.child
        if child is None or not child.alive or self._killer is not None or self._stop_requested:
            return False
        self._kill_reason = reason
        self._killer = asyncio.create_task(
            self._terminate(child, self.spec.stop.signal, self.spec.hang_grace, reason)
        )
        return True

    def mark_ready(self, via: str) -> None:
        """A probe (or READY=1) says the starting child is ready."""
        if self.state is S.STARTING and self._ready_via is None:
            self._ready_via = via
            self._ready_signal.set()

    async def wait_for(self, *states: ProcessState, timeout: float | None = None) -> None:
        """Wait until the service enters one of `states` (TimeoutError after `timeout`)."""
        if self.state in states:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (frozenset(states), waiter)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    async def close(self) -> None:
        """Stop the child and end the task; used when the supervisor shuts down."""
        await self.stop(by="shutdown")
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._notify is not None:
            self._notify.close()
            self._notify = None
        self.logs.close()

    def status(self) -> ServiceStatus:
        now = self._clock.monotonic()
        uptime = None
        if self.state is S.RUNNING and self.ready_monotonic is not None:
            uptime = now - self.ready_monotonic
        return ServiceStatus(
            name=self.spec.name,
            state=self.state.value,
            pid=self.child.pid if self.child is not None and self.child.alive else None,
            uptime=uptime,
            restarts=self.restarts,
            failures=self.failures,
            last_exit=self.last_exit.description if self.last_exit else None,
            status_text=self.status_text,
            fatal_for=max(0.0, self.fatal_until - now) if self.fatal_until else None,
        )

    # -- the task -------------------------------------------------------------

    def _poke(self) -> None:
        self._poked = True
        self._wake.set()

    def _set(self, state: ProcessState) -> None:
        check_transition(self.spec.name, self.state, state)
        self.state = state
        for states, waiter in self._waiters:
            if state in states and not waiter.done():
                waiter.set_result(None)

    def _publish(self, event: ProcessEvent) -> None:
        self._bus.publish(event)
        if self._on_event is not None:
            self._on_event(event)

    async def _main(self) -> None:
        while True:
            if not self._wanted:
                if self._stop_requested:
                    self._stop_requested = False
                    if self.state is not S.STOPPED:
                        self._set(S.STOPPED)
                        self._publish(
                            ServiceStopped(
                                service=self.spec.name, at=self._clock.now(), by=self._stopped_by
                            )
                        )
                self._wake.clear()
                if not self._wanted and not self._stop_requested:
                    await self._wake.wait()
                continue
            await self._run_once()

    async def _sleep(self, seconds: float) -> None:
        """Sleep on the injected clock; a command (start, stop) ends it early."""
        self._wake.clear()
        if self._poked or not self._wanted:
            self._poked = False
            return
        sleeper = asyncio.ensure_future(self._clock.asleep(seconds))
        waker = asyncio.ensure_future(self._wake.wait())
        await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        for task in (sleeper, waker):
            task.cancel()
        self._poked = False

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.spec.env)
        env.pop("NOTIFY_SOCKET", None)
        if self._notify is not None:
            env["NOTIFY_SOCKET"] = str(self._notify.path)
        if self.spec.watchdog:
            env["WATCHDOG_USEC"] = str(int(self.spec.watchdog * 1_000_000))
        return env

    async def _run_once(self) -> None:
        spec = self.spec
        self.attempt += 1
        operator, self._operator_start, self._poked = self._operator_start, False, False
        self._ready_signal.clear()
        self._ready_via, self._kill_reason = None, None
        if self.state is S.FATAL:
            self.fatal_until = None
            self._window.clear()
        self._set(S.STARTING)
        read_fd, write_fd = os.pipe()
        try:
            child = spawn(
                spec.argv, clock=self._clock, cwd=spec.cwd, env=self._env(), output_fd=write_fd
            )
        except OSError as exc:
            os.close(read_fd)
            os.close(write_fd)
            now = self._clock.now()
            self.last_exit = ServiceExited(
                service=spec.name, at=now, pid=0, returncode=127, signal=None, uptime=0.0,
                was_ready=False, expected=False, reason=f"cannot start {spec.argv[0]!r}: {exc.strerror or exc}",
            )  # fmt: skip
            self._publish(self.last_exit)
            await self._after_failure(self.last_exit, self._clock.monotonic(), None)
            return
        os.close(write_fd)
        self.logs.attach(read_fd)
        if self._guard is not None:
            self._guard.watch(child.pgid)
        self.child = child
        self._publish(
            ServiceStarting(
                service=spec.name, at=child.started_at, pid=child.pid,
                attempt=self.attempt, operator=operator,
            )
        )  # fmt: skip
        self._arm_watchdog()
        via = await self._await_ready(child)
        was_ready = False
        if via is not None:
            was_ready = True
            self.ready_monotonic = self._clock.monotonic()
            self._set(S.RUNNING)
            self._publish(
                ServiceReady(
                    service=spec.name, at=self._clock.now(), pid=child.pid, via=via,
                    startup_seconds=self.ready_monotonic - child.started_monotonic,
                )
            )  # fmt: skip
        status = await asyncio.shield(child.exited)
        self._disarm_watchdog()
        expected = self._stop_requested or not self._wanted
        if not expected:
            kill_group(child.pgid, signal.SIGKILL)  # leftovers of a dead leader: no orphans
        exited = ServiceExited(
            service=spec.name, at=status.at, pid=child.pid, returncode=status.returncode,
            signal=status.signal, uptime=status.monotonic - child.started_monotonic,
            was_ready=was_ready, expected=expected, reason=self._kill_reason or "",
        )  # fmt: skip
        self.last_exit = exited
        self._publish(exited)
        if self._killer is not None:
            await asyncio.shield(self._killer)
        elif self._guard is not None:
            self._guard.forget(child.pgid)
        self.child = None
        if expected:
            if self._stop_requested:
                self._stop_requested = False
                self._set(S.STOPPED)
                self._publish(
                    ServiceStopped(service=spec.name, at=self._clock.now(), by=self._stopped_by)
                )
            return
        ready_for = (
            status.monotonic - self.ready_monotonic if was_ready and self.ready_monotonic else 0.0
        )
        await self._after_failure(exited, status.monotonic, ready_for)

    async def _after_failure(
        self, exited: ServiceExited, now: float, ready_for: float | None
    ) -> None:
        spec = self.spec
        if ready_for is not None and ready_for >= spec.backoff.reset_after:
            self.failures = 0
        self.failures += 1
        if not spec.restart.wants_restart(returncode=exited.returncode, signal=exited.signal):
            self._set(S.EXITED)
            self._wanted = False
            return
        reason = exited.reason or exited.description
        if self._window.add(now):
            limit = spec.crash_loop
            self._set(S.FATAL)
            self.fatal_until = now + limit.cooldown
            self._publish(
                ServiceFatal(
                    service=spec.name, at=self._clock.now(), restarts=len(self._window) - 1,
                    within=limit.within, cooldown=limit.cooldown, reason=reason,
                )
            )  # fmt: skip
            await self._sleep(limit.cooldown)
            return
        delay = spec.backoff.delay(self.failures, rng=self._rng)
        self.restarts += 1
        self._set(S.BACKOFF)
        self._publish(
            ServiceRestarting(
                service=spec.name, at=self._clock.now(), delay=delay,
                attempt=self.attempt + 1, failures=self.failures, reason=reason,
            )
        )  # fmt: skip
        if delay > 0:
            await self._sleep(delay)

    async def _await_ready(self, child: Child) -> str | None:
        spec = self.spec
        uptime = spec.readiness is Readiness.UPTIME
        timeout = spec.start_seconds if uptime else spec.start_timeout
        if uptime and timeout == 0:
            return None if child.poll() else "uptime"
        waits: set[asyncio.Future[Any]] = {child.exited}
        sleeper = asyncio.ensure_future(self._clock.asleep(timeout))
        waits.add(sleeper)
        readier = None if uptime else asyncio.ensure_future(self._ready_signal.wait())
        if readier is not None:
            waits.add(readier)
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        sleeper.cancel()
        if readier is not None:
            readier.cancel()
        if child.poll() or self._stop_requested or not self._wanted:
            return None
        if uptime:
            return "uptime"
        if self._ready_via is not None:
            return self._ready_via
        self.kill(f"not ready within {timeout:g}s")
        return None

    async def _terminate(self, child: Child, sig: int, grace: float, reason: str) -> None:
        """Stop signal + SIGCONT to the group, wait `grace`, then SIGKILL what is left."""
        try:
            if reason:
                self._publish(
                    ServiceKilling(
                        service=self.spec.name, at=self._clock.now(), pid=child.pid,
                        reason=reason, stage="stop-signal", signal=sig,
                    )
                )  # fmt: skip
            child.signal_group(sig)
            child.signal_group(signal.SIGCONT)  # a stopped process keeps a SIGTERM pending
            deadline = self._clock.monotonic() + grace
            await self._wait_until(child.exited, deadline)
            while group_alive(child.pgid) and self._clock.monotonic() < deadline:
                await self._clock.asleep(GROUP_POLL)
            if child.alive or group_alive(child.pgid):
                if reason:
                    self._publish(
                        ServiceKilling(
                            service=self.spec.name, at=self._clock.now(), pid=child.pid,
                            reason=reason, stage="sigkill", signal=signal.SIGKILL,
                        )
                    )  # fmt: skip
                child.signal_group(signal.SIGKILL)
            await asyncio.shield(child.exited)
            if self._guard is not None:
                self._guard.forget(child.pgid)
        finally:
            self._killer = None

    async def _wait_until(self, future: asyncio.Future[Any], deadline: float) -> None:
        remaining = deadline - self._clock.monotonic()
        if remaining <= 0:
            return
        waiter: asyncio.Future[Any] = asyncio.ensure_future(asyncio.shield(future))
        sleeper: asyncio.Future[Any] = asyncio.ensure_future(self._clock.asleep(remaining))
        await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        sleeper.cancel()

    # -- sd_notify ------------------------------------------------------------

    def _on_notify(self, fields: dict[str, str]) -> None:
        if fields.get("READY") == "1":
            self.mark_ready("notify")
        if "STATUS" in fields:
            self.status_text = fields["STATUS"]
        if fields.get("WATCHDOG") == "1":
            self._arm_watchdog()
        elif fields.get("WATCHDOG") == "trigger":
            self.kill("watchdog triggered by the service")

    def _arm_watchdog(self) -> None:
        self._disarm_watchdog()
        if self.spec.watchdog and self.child is not None and self.child.alive:
            loop = asyncio.get_running_loop()
            self._watchdog = loop.call_later(self.spec.watchdog, self._watchdog_expired)

    def _disarm_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _watchdog_expired(self) -> None:
        self._watchdog = None
        self.kill(f"no WATCHDOG=1 within {self.spec.watchdog:g}s")

    def __repr__(self) -> str:
        pid = self.child.pid if self.child is not None else None
        return f"<ServiceRunner {self.spec.name} {self.state.value} pid={pid}>"
