"""Many services: start in dependency order, stop in reverse, restart dependents, fail over.

The supervisor owns one `ServiceRunner` per service and the guard process. It
decides nothing about health: the app tells it to `kill` a hung service, to
`mark_ready` one whose probe passed, or to `failover` a group.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import tempfile
from collections.abc import Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any

from medic.bus import Bus
from medic.clock import Clock, system_clock
from medic.errors import InvalidInput, NotFound
from medic.events import ProcessEvent, ServiceFailover, ServiceFatal, ServiceStarting
from medic.supervisor._guard import Guard
from medic.supervisor._runner import ServiceRunner, ServiceStatus
from medic.supervisor._spec import DependencyRestart, FailoverGroup, ServiceSpec
from medic.supervisor._states import ProcessState

__all__ = ["Supervisor", "dependency_order"]


def dependency_order(specs: Iterable[ServiceSpec]) -> list[str]:
    """Names with every dependency before its dependents; InvalidInput on unknown names or cycles."""
    by_name = {spec.name: spec for spec in specs}
    order: list[str] = []
    marks: dict[str, int] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if marks.get(name) == 2:
            return
        if marks.get(name) == 1:
            raise InvalidInput(f"dependency cycle: {' -> '.join((*path, name))}")
        marks[name] = 1
        for dep in by_name[name].depends_on:
            if dep not in by_name:
                raise InvalidInput(f"service {name} depends on unknown service {dep!r}")
            visit(dep, (*path, name))
        marks[name] = 2
        order.append(name)

    for name in by_name:
        visit(name, ())
    return order


class Supervisor:
    """Keeps a set of services alive; use as ``async with Supervisor(...) as sup``."""

    def __init__(
        self,
        specs: Sequence[ServiceSpec],
        *,
        bus: Bus,
        clock: Clock = system_clock,
        rng: random.Random | None = None,
        groups: Sequence[FailoverGroup] = (),
        runtime_dir: Path | None = None,
        guard: bool = True,
    ) -> None:
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise InvalidInput("service names must be unique")
        self._specs = {spec.name: spec for spec in specs}
        self.order = dependency_order(specs)
        self._groups = {group.name: group for group in groups}
        self._group_of: dict[str, FailoverGroup] = {}
        for group in groups:
            for member in group.members:
                if member not in self._specs:
                    raise InvalidInput(f"group {group.name} names unknown service {member!r}")
                if member in self._group_of:
                    raise InvalidInput(f"service {member} is in two failover groups")
                self._group_of[member] = group
        self.active = {group.name: group.members[0] for group in groups}
        self._bus, self._clock = bus, clock
        self._rng = rng or random.Random()
        self._own_runtime = runtime_dir is None
        self._runtime_dir = runtime_dir
        self._use_guard = guard
        self.guard: Guard | None = None
        self._runners: dict[str, ServiceRunner] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._group_locks = {name: asyncio.Lock() for name in self._groups}

    async def __aenter__(self) -> Supervisor:
        self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def open(self) -> None:
        """Create the runners (idle) and the guard; needs a running loop."""
        if self._runtime_dir is None:
            self._runtime_dir = Path(tempfile.mkdtemp(prefix="medic-"))
        self._runtime_dir.mkdir(parents=True, exist_ok=True)
        if self._use_guard:
            self.guard = Guard()
        for name in self.order:
            runner = ServiceRunner(
                self._specs[name], bus=self._bus, clock=self._clock, rng=self._rng,
                runtime_dir=self._runtime_dir, guard=self.guard, on_event=self._on_event,
            )  # fmt: skip
            self._runners[name] = runner
            runner.run()

    @property
    def names(self) -> list[str]:
        return list(self.order)

    def runner(self, name: str) -> ServiceRunner:
        try:
            return self._runners[name]
        except KeyError:
            raise NotFound(f"no service named {name!r}") from None

    def status(self) -> list[ServiceStatus]:
        return [self._runners[name].status() for name in self.order]

    def group_of(self, service: str) -> FailoverGroup | None:
        return self._group_of.get(service)

    def _standby(self, name: str) -> bool:
        group = self._group_of.get(name)
        return group is not None and self.active[group.name] != name

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- starting and stopping ---------------------------------------------------

    def start_all(self) -> None:
        """Start every service (standbys excepted), each once its dependencies are ready."""
        for name in self.order:
            if not self._standby(name):
                self._spawn(self._start_after_deps(name, operator=False))

    async def _start_after_deps(self, name: str, *, operator: bool) -> None:
        for dep in self._specs[name].depends_on:
            await self._runners[dep].wait_for(ProcessState.RUNNING)
        self._runners[name].start(operator=operator)

    async def wait_running(self, names: Iterable[str] | None = None, *, timeout: float) -> None:
        """Wait until the named services (default: all non-standby) are running."""
        targets = (
            list(names) if names is not None else [n for n in self.order if not self._standby(n)]
        )
        async with asyncio.timeout(timeout):
            for name in targets:
                await self.runner(name).wait_for(ProcessState.RUNNING)

    async def start(self, name: str) -> None:
        """Operator start: waits for nothing but skips any backoff or cooldown."""
        self.runner(name)
        self._spawn(self._start_after_deps(name, operator=True))
        await asyncio.sleep(0)

    async def stop(self, name: str, *, by: str = "operator") -> None:
        await self.runner(name).stop(by=by)

    async def restart(self, name: str) -> None:
        runner = self.runner(name)
        await runner.stop(by="operator")
        runner.start(operator=True)

    def kill(self, name: str, reason: str) -> bool:
        """Kill a hung or unhealthy service so that it restarts (stop signal + SIGCONT, grace, SIGKILL)."""
        return self.runner(name).kill(reason)

    def mark_ready(self, name: str, via: str) -> None:
        self.runner(name).mark_ready(via)

    async def stop_all(self, *, by: str = "shutdown") -> None:
        """Stop every service, dependents before what they depend on."""
        remaining = set(self.order)
        while remaining:
            level = [
                name for name in remaining
                if not any(name in self._specs[other].depends_on for other in remaining)
            ]  # fmt: skip
            await asyncio.gather(*(self._runners[name].stop(by=by) for name in level))
            remaining.difference_update(level)

    async def close(self) -> None:
        """Stop everything gracefully and release the guard and runtime directory."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.stop_all()
        for runner in self._runners.values():
            await runner.close()
        if self.guard is not None:
            self.guard.close()
            self.guard = None
        if self._own_runtime and self._runtime_dir is not None:
            shutil.rmtree(self._runtime_dir, ignore_errors=True)

    async def apply(self, specs: Sequence[ServiceSpec]) -> tuple[list[str], list[str], list[str]]:
        """Reload: stop removed and changed services, start changed and added ones.

        Unchanged services keep running untouched. Returns (added, changed, removed).
        """
        new = {spec.name: spec for spec in specs}
        if len(new) != len(specs):
            raise InvalidInput("service names must be unique")
        order = dependency_order(specs)
        for member in self._group_of:
            if member not in new:
                raise InvalidInput(f"service {member} is in a failover group and cannot be removed")
        removed = [name for name in self.order if name not in new]
        changed = [name for name in self.order if name in new and new[name] != self._specs[name]]
        added = [name for name in order if name not in self._specs]
        for name in reversed([n for n in self.order if n in removed or n in changed]):
            await self._runners.pop(name).close()
        self._specs, self.order = new, order
        runtime_dir = self._runtime_dir or Path(tempfile.gettempdir())
        for name in order:
            if name in changed or name in added:
                runner = ServiceRunner(
                    new[name], bus=self._bus, clock=self._clock, rng=self._rng,
                    runtime_dir=runtime_dir, guard=self.guard, on_event=self._on_event,
                )  # fmt: skip
                self._runners[name] = runner
                runner.run()
                if not self._standby(name):
                    self._spawn(self._start_after_deps(name, operator=True))
        return added, changed, removed

    # -- reactions ---------------------------------------------------------------

    def _on_event(self, event: ProcessEvent) -> None:
        if isinstance(event, ServiceStarting) and not event.operator and event.attempt > 1:
            for name in self.order:
                spec = self._specs[name]
                if (
                    event.service in spec.depends_on
                    and spec.on_dependency_restart is DependencyRestart.RESTART
                    and self._runners[name].state is not ProcessState.STOPPED
                ):
                    self._spawn(self._restart_dependent(event.service, name))
        elif isinstance(event, ServiceFatal):
            group = self._group_of.get(event.service)
            if group is not None and self.active[group.name] == event.service:
                self._spawn(self.failover(group.name, reason=f"{event.service} is fatal"))

    async def _restart_dependent(self, dependency: str, name: str) -> None:
        await self._runners[dependency].wait_for(ProcessState.RUNNING)
        await self.restart(name)

    async def failover(self, group_name: str, *, reason: str) -> str | None:
        """Make the next service of the group active; None when none is left."""
        group = self._groups.get(group_name)
        if group is None:
            raise NotFound(f"no failover group named {group_name!r}")
        async with self._group_locks[group_name]:
            current = self.active[group_name]
            index = group.members.index(current)
            if index + 1 >= len(group.members):
                return None
            target = group.members[index + 1]
            self.active[group_name] = target
            self._bus.publish(
                ServiceFailover(
                    service=group_name, at=self._clock.now(), from_service=current,
                    to_service=target, reason=reason,
                )
            )  # fmt: skip
            self._runners[target].start(operator=False)
            await self._runners[current].stop(by="failover")
            if group.failback and index == 0:
                self._spawn(self._failback(group))
            return target

    async def _failback(self, group: FailoverGroup) -> None:
        primary = group.members[0]
        runner = self._runners[primary]
        budget = runner.spec.start_timeout + runner.spec.start_seconds
        while self.active[group.name] != primary:
            await self._clock.asleep(group.failback_after)
            runner.start(operator=False)
            try:
                await runner.wait_for(ProcessState.RUNNING, timeout=budget)
            except TimeoutError:
                await runner.stop(by="failback")
                continue
            async with self._group_locks[group.name]:
                current = self.active[group.name]
                self.active[group.name] = primary
                self._bus.publish(
                    ServiceFailover(
                        service=group.name, at=self._clock.now(), from_service=current,
                        to_service=primary, reason=f"{primary} is ready again", failback=True,
                    )
                )  # fmt: skip
                await self._runners[current].stop(by="failback")

    def __repr__(self) -> str:
        return f"<Supervisor {len(self._specs)} services>"
