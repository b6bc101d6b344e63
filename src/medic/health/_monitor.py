"""The monitor: runs every probe when it is due, cuts it at its timeout, applies thresholds.

One scheduler task sleeps until the earliest due probe (a deadline, not a tick),
so a monitor with nothing due does not wake up at all. Each probe run is its own
task, cut at the probe's timeout; a probe still running when it is due again is
not started twice. Crossing a threshold publishes one event: `ServiceUnhealthy`
after `failures` consecutive misses (carrying the time of the first miss, the
true start of the failure), `ServiceHealthy` after `successes` passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from medic.bus import Bus
from medic.clock import Clock, system_clock
from medic.errors import IllegalTransition, NotFound
from medic.events import ServiceHealthy, ServiceUnhealthy
from medic.health._checks import Check, Outcome, Target

__all__ = ["ALLOWED", "HealthMonitor", "HealthState", "ProbeAction", "ProbeSpec", "ProbeStatus"]


class HealthState(enum.StrEnum):
    """A probe's verdict on its service."""

    UNKNOWN = "unknown"  # not enough results since the service (re)started
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


ALLOWED: dict[HealthState, frozenset[HealthState]] = {
    HealthState.UNKNOWN: frozenset({HealthState.HEALTHY, HealthState.UNHEALTHY}),
    HealthState.HEALTHY: frozenset({HealthState.UNHEALTHY, HealthState.UNKNOWN}),
    HealthState.UNHEALTHY: frozenset({HealthState.HEALTHY, HealthState.UNKNOWN}),
}


class ProbeAction(enum.StrEnum):
    """What the app should do when the probe says unhealthy."""

    RESTART = "restart"
    ALERT = "alert"
    FAILOVER = "failover"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeSpec:
    """One probe of one service, with Kubernetes-style thresholds."""

    service: str
    name: str
    check: Check
    interval: float = 1.0
    timeout: float = 1.0
    failures: int = 3
    successes: int = 1
    action: ProbeAction = ProbeAction.RESTART
    initial_delay: float = 0.0

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.timeout <= 0 or self.initial_delay < 0:
            raise ValueError(f"probe {self.service}.{self.name}: interval and timeout must be > 0")
        if self.failures < 1 or self.successes < 1:
            raise ValueError(f"probe {self.service}.{self.name}: thresholds must be at least 1")


@dataclass(frozen=True, slots=True)
class ProbeStatus:
    """The last known state of one probe, for `medic status`."""

    service: str
    name: str
    type: str
    state: str
    ok: bool | None
    detail: str
    at: datetime | None
    duration: float | None


@dataclass(slots=True)
class _Probe:
    spec: ProbeSpec
    state: HealthState = HealthState.UNKNOWN
    enabled: bool = False
    due: float = 0.0
    failures: int = 0
    successes: int = 0
    first_failure_at: datetime | None = None
    first_success_at: datetime | None = None
    last: Outcome | None = None
    last_at: datetime | None = None
    last_duration: float | None = None
    generation: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def move(self, target: HealthState) -> None:
        if target not in ALLOWED[self.state]:
            raise IllegalTransition(f"probe {self.spec.name}", self.state.value, target.value)
        self.state = target


class HealthMonitor:
    """Runs probes for the services that are enabled; publishes threshold crossings."""

    def __init__(
        self,
        probes: Sequence[ProbeSpec],
        *,
        bus: Bus,
        pid_of: Callable[[str], int | None],
        clock: Clock = system_clock,
    ) -> None:
        self._probes = [_Probe(spec) for spec in probes]
        self._bus, self._clock, self._pid_of = bus, clock, pid_of
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.runs = 0
        self.wakeups = 0

    async def __aenter__(self) -> HealthMonitor:
        self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def open(self) -> None:
        self._task = asyncio.create_task(self._schedule(), name="medic:health")

    async def close(self) -> None:
        tasks = [p.task for p in self._probes if p.task is not None]
        if self._task is not None:
            tasks.append(self._task)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None

    def services(self) -> set[str]:
        return {p.spec.service for p in self._probes}

    def has_probes(self, service: str) -> bool:
        return any(p.spec.service == service for p in self._probes)

    def enable(self, service: str) -> None:
        """(Re)start probing `service` from UNKNOWN, e.g. because it was just (re)started."""
        now = self._clock.monotonic()
        for probe in self._probes:
            if probe.spec.service == service:
                self._reset(probe)
                probe.enabled = True
                probe.due = now + probe.spec.initial_delay
        self._wake.set()

    def disable(self, service: str) -> None:
        """Stop probing `service` (it is stopped, or being restarted)."""
        for probe in self._probes:
            if probe.spec.service == service:
                self._reset(probe)
                probe.enabled = False
        self._wake.set()

    def replace(self, probes: Sequence[ProbeSpec], *, running: set[str]) -> list[str]:
        """Reload: keep unchanged probes as they are; new or changed ones start from UNKNOWN.

        Returns the services whose probes changed. New probes of `running` services
        are enabled at once.
        """
        old = {(p.spec.service, p.spec.name): p for p in self._probes}
        kept: list[_Probe] = []
        changed: set[str] = set()
        now = self._clock.monotonic()
        for spec in probes:
            current = old.pop((spec.service, spec.name), None)
            if current is not None and current.spec == spec:
                kept.append(current)
                continue
            changed.add(spec.service)
            if current is not None:
                self._reset(current)
            fresh = _Probe(spec)
            if spec.service in running:
                fresh.enabled, fresh.due = True, now + spec.initial_delay
            kept.append(fresh)
        for gone in old.values():
            changed.add(gone.spec.service)
            self._reset(gone)
        self._probes = kept
        self._wake.set()
        return sorted(changed)

    def _reset(self, probe: _Probe) -> None:
        probe.generation += 1
        if probe.task is not None:
            probe.task.cancel()
            probe.task = None
        if probe.state is not HealthState.UNKNOWN:
            probe.move(HealthState.UNKNOWN)
        probe.failures = probe.successes = 0
        probe.first_failure_at = probe.first_success_at = None

    def status(self, service: str | None = None) -> list[ProbeStatus]:
        if service is not None and not any(p.spec.service == service for p in self._probes):
            return []
        return [
            ProbeStatus(
                service=p.spec.service, name=p.spec.name, type=p.spec.check.type,
                state=p.state.value, ok=p.last.ok if p.last else None,
                detail=p.last.detail if p.last else "", at=p.last_at, duration=p.last_duration,
            )
            for p in self._probes
            if service is None or p.spec.service == service
        ]  # fmt: skip

    def probe(self, service: str, name: str) -> ProbeStatus:
        for status in self.status(service):
            if status.name == name:
                return status
        raise NotFound(f"no probe {name!r} on service {service!r}")

    async def _schedule(self) -> None:
        while True:
            self.wakeups += 1
            now = self._clock.monotonic()
            for probe in self._probes:
                if probe.enabled and probe.due <= now:
                    probe.due = now + probe.spec.interval
                    if probe.task is None:
                        probe.task = asyncio.create_task(self._run(probe, probe.generation))
            due = [p.due for p in self._probes if p.enabled]
            self._wake.clear()
            if not due:
                await self._wake.wait()
                continue
            delay = min(due) - self._clock.monotonic()
            if delay > 0:
                sleeper: asyncio.Future[Any] = asyncio.ensure_future(self._clock.asleep(delay))
                waker: asyncio.Future[Any] = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
                sleeper.cancel()
                waker.cancel()

    async def _run(self, probe: _Probe, generation: int) -> None:
        spec = probe.spec
        started_at, started = self._clock.now(), self._clock.monotonic()
        target = Target(
            service=spec.service, pid=lambda: self._pid_of(spec.service), clock=self._clock
        )
        try:
            async with asyncio.timeout(spec.timeout):
                outcome = await spec.check(target)
        except TimeoutError:
            outcome = Outcome(
                False, f"{spec.check.type} probe timed out after {spec.timeout:g}s", "timeout"
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken check is a failed probe, with evidence
            outcome = Outcome(False, f"{type(exc).__name__}: {exc}")
        finally:
            if probe.generation == generation:
                probe.task = None
        if probe.generation != generation:
            return
        self.runs += 1
        probe.last, probe.last_at = outcome, started_at
        probe.last_duration = self._clock.monotonic() - started
        self._judge(probe, outcome, started_at)

    def _judge(self, probe: _Probe, outcome: Outcome, at: datetime) -> None:
        spec = probe.spec
        if outcome.ok:
            probe.failures = 0
            if probe.successes == 0:
                probe.first_success_at = at
            probe.successes += 1
            if probe.state is not HealthState.HEALTHY and probe.successes >= spec.successes:
                recovered = probe.state is HealthState.UNHEALTHY
                probe.move(HealthState.HEALTHY)
                self._bus.publish(
                    ServiceHealthy(
                        service=spec.service, probe=spec.name, probe_type=spec.check.type,
                        at=self._clock.now(), first_success_at=probe.first_success_at or at,
                        recovered=recovered,
                    )
                )  # fmt: skip
            return
        probe.successes = 0
        if probe.failures == 0:
            probe.first_failure_at = at
        probe.failures += 1
        if probe.state is not HealthState.UNHEALTHY and probe.failures >= spec.failures:
            probe.move(HealthState.UNHEALTHY)
            self._bus.publish(
                ServiceUnhealthy(
                    service=spec.service, probe=spec.name, probe_type=spec.check.type,
                    at=self._clock.now(), action=spec.action.value, evidence=outcome.detail,
                    failures=probe.failures, first_failure_at=probe.first_failure_at or at,
                    kind=outcome.kind,
                )
            )  # fmt: skip

    def __repr__(self) -> str:
        enabled = sum(p.enabled for p in self._probes)
        return f"<HealthMonitor {len(self._probes)} probes, {enabled} enabled>"
