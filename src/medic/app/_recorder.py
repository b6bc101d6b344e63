"""The recorder: turns supervisor and health events into tracker records.

Each service's incident is keyed `service:NAME`: the first failure (an unexpected
exit, a probe past its threshold, a crash loop) triggers it with `occurred_at` =
the true failure time and `detected_at` = when medic decided; the restart lands
on the timeline; a ready start mitigates it (with the recovery attempt and its
timings), and passing probes resolve it (auto_recovery). A service without
probes is resolved once it is ready again, since readiness is all medic can know.

Cascades: a failure of a service whose dependency has an open incident joins
that root incident (and says so on its timeline) instead of opening its own; a
dependent's incident opened shortly before its dependency failed is merged
into the root's. Flapping: a service that fails again within `flap_window` of
its incident resolving reopens that incident, and every `flap_raise_after`
reopenings raise its severity one level.

Deliveries of notifications land in the tracker as sent or failed.

Writes run on one worker thread, in event order, so the event loop (and with it
the restart path) never waits for the database.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from medic.app._backup_records import BACKUP_EVENTS, BackupRecords
from medic.bus import Bus, Subscription
from medic.errors import IllegalTransition
from medic.events import (
    Action,
    Delivery,
    DeliveryStatus,
    HealthEvent,
    ProcessEvent,
    ServiceExited,
    ServiceFailover,
    ServiceFatal,
    ServiceHealthy,
    ServiceKilling,
    ServiceReady,
    ServiceRestarting,
    ServiceStarting,
    ServiceStopped,
    ServiceUnhealthy,
    Signal,
    SupervisorUncleanStop,
)
from medic.taxonomy import Kind, Severity
from medic.tracker import TimelineKind, Tracker

__all__ = ["Correlation", "Recorder"]

log = logging.getLogger("medic.app")


@dataclass(slots=True)
class _Open:
    incident_id: int
    failed_at: datetime
    attempts: int = 0
    mitigated: bool = False
    healthy: bool = False


@dataclass(slots=True)
class _Resolved:
    incident_id: int
    at: datetime
    flaps: int = 0


@dataclass(frozen=True, slots=True)
class Correlation:
    """How failures are tied together: dependencies (cascades) and flapping windows."""

    depends_on: Mapping[str, tuple[str, ...]]
    flap_window: float = 600.0
    flap_raise_after: int = 3
    cascade_window: float = 60.0

    def roots(self, service: str) -> list[str]:
        """Every service `service` depends on, nearest first."""
        seen: list[str] = []
        todo = list(self.depends_on.get(service, ()))
        while todo:
            dep = todo.pop(0)
            if dep not in seen and dep != service:
                seen.append(dep)
                todo.extend(self.depends_on.get(dep, ()))
        return seen

    def dependents(self, service: str) -> list[str]:
        return [s for s in self.depends_on if service in self.roots(s)]


def _kind(value: str) -> Kind:
    try:
        return Kind.parse(value)
    except ValueError:
        return Kind.UNKNOWN


class Recorder:
    """Consumes the bus and writes to the tracker on a dedicated thread."""

    def __init__(
        self,
        tracker: Tracker,
        *,
        bus: Bus,
        severities: Mapping[str, Severity],
        probed: set[str],
        correlation: Correlation | None = None,
        on_incident: Callable[[str, int | None], object] | None = None,
        engine_attempts: bool = False,
        maxsize: int = 10_000,
    ) -> None:
        self.tracker = tracker
        self._severities = dict(severities)
        self._probed = set(probed)
        self._corr = correlation or Correlation({})
        self._on_incident = on_incident
        # With the engine on, it records restart and failover attempts itself.
        self._engine_attempts = engine_attempts
        self._open: dict[str, _Open] = {}
        self._resolved: dict[str, _Resolved] = {}  # one per service: bounded by the config
        self._cascaded: dict[str, str] = {}  # dependent → the root whose incident it joined
        self._starting: set[str] = set()
        self._covering: dict[str, str] = {}  # failover target → the service it replaces
        self._sub: Subscription = bus.subscribe(
            ProcessEvent, HealthEvent, Delivery, *BACKUP_EVENTS, maxsize=maxsize
        )
        self._backups = BackupRecords(tracker, self._severity)
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="medic-recorder")
        self._task: asyncio.Task[None] | None = None
        self.recorded = 0
        self.errors = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._consume(), name="medic:recorder")

    async def close(self) -> None:
        """Record what is still buffered, then stop."""
        self._sub.close()
        if self._task is not None:
            await self._task
        self._pool.shutdown(wait=True)

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        async for event in self._sub:
            await loop.run_in_executor(self._pool, self.handle, event)

    def configure(
        self,
        *,
        severities: Mapping[str, Severity],
        probed: set[str],
        correlation: Correlation | None = None,
    ) -> None:
        self._severities, self._probed = dict(severities), set(probed)
        if correlation is not None:
            self._corr = correlation

    def handle(self, event: object) -> None:
        """Record one event; a store failure is logged and counted, never raised into the loop."""
        try:
            self._handle(event)
            self.recorded += 1
        except Exception:  # the recorder must outlive a store hiccup
            self.errors += 1
            log.exception("could not record %r", event)

    def _severity(self, service: str) -> Severity:
        return self._severities.get(service, Severity.SEV3)

    def _trigger(
        self, service: str, message: str, *, occurred: datetime, detected: datetime,
        kind: Kind = Kind.UNKNOWN, severity: Severity | None = None, probe: str | None = None,
        reason: str | None = None, tags: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        tags = dict(tags or {})
        key = f"service:{service}"
        root = None if service in self._open else self._down_root(service)
        first_of_cascade = False
        if root is not None:
            # A cascade: the dependent's failure is part of the root's outage.
            key, tags["cascade_of"] = f"service:{root}", root
            message = f"{service}: {message} (its dependency {root} is down)"
            first_of_cascade = self._cascaded.get(service) != root
            self._cascaded[service] = root
        elif service not in self._open:
            self._reopen_if_flapping(service, occurred)
        result = self.tracker.record(
            Signal(
                service=service if root is None else root, message=message, kind=kind,
                severity=severity or self._severity(service), source="supervisor",
                occurred_at=occurred, detected_at=detected, dedup_key=key,
                probe=probe, reason=reason, tags=tags,
            )
        )  # fmt: skip
        if result.incident_id is not None and first_of_cascade:
            self.tracker.add_timeline(
                result.incident_id, kind=TimelineKind.SIGNAL_RECEIVED, actor="supervisor",
                at=detected, message=message, details={"service": service, "cascade_of": root},
            )  # fmt: skip
        if result.incident_id is None or root is not None:
            return
        if service not in self._open:
            self._open[service] = _Open(result.incident_id, occurred)
            self._absorb_dependents(service, result.incident_id, occurred)
        self._tell(service, result.incident_id)

    def _tell(self, service: str, incident_id: int | None) -> None:
        if self._on_incident is not None:
            self._on_incident(service, incident_id)

    def _down_root(self, service: str) -> str | None:
        """The nearest dependency of `service` with an open, unmitigated incident."""
        for dep in self._corr.roots(service):
            opened = self._open.get(dep)
            if opened is not None and not opened.mitigated:
                return dep
        return None

    def _reopen_if_flapping(self, service: str, at: datetime) -> None:
        last = self._resolved.get(service)
        window = timedelta(seconds=self._corr.flap_window)
        if last is None or at - last.at > window:
            return
        last.flaps += 1
        gap = (at - last.at).total_seconds()
        note = f"{service} failed again {gap:.1f}s after recovering (flap {last.flaps})"
        try:
            view = self.tracker.reopen(last.incident_id, actor="supervisor", note=note)
        except IllegalTransition:
            return  # closed, merged or cancelled since: a new incident it is
        every = self._corr.flap_raise_after
        if every and last.flaps % every == 0 and view.severity > 1:
            self.tracker.set_severity(
                last.incident_id, Severity(view.severity - 1), actor="supervisor"
            )

    def _absorb_dependents(self, root: str, incident_id: int, at: datetime) -> None:
        """Dependents that failed just before their dependency did: merge theirs into the root's."""
        window = timedelta(seconds=self._corr.cascade_window)
        for dependent in self._corr.dependents(root):
            opened = self._open.get(dependent)
            if opened is None or opened.mitigated or at - opened.failed_at > window:
                continue
            try:
                self.tracker.merge(opened.incident_id, into=incident_id, actor="supervisor")
            except IllegalTransition:
                continue
            self.tracker.add_timeline(
                incident_id, kind=TimelineKind.COMMENT, actor="supervisor", at=at,
                message=f"{dependent} failed first, but depends on {root}: its incident "
                f"{opened.incident_id} is part of this one",
            )  # fmt: skip
            del self._open[dependent]
            self._cascaded[dependent] = root
            self._tell(dependent, None)

    def _move(self, service: str, action: Action, at: datetime, message: str) -> None:
        self.tracker.record(
            Signal(
                service=service, message=message, source="supervisor", action=action,
                occurred_at=at, detected_at=at, dedup_key=f"service:{service}",
                severity=self._severity(service),
            )
        )  # fmt: skip

    def _note(
        self, service: str, kind: TimelineKind, message: str, at: datetime, **details: object
    ) -> None:
        opened = self._open.get(service) or self._open.get(self._cascaded.get(service, ""))
        if opened is not None:
            self.tracker.add_timeline(
                opened.incident_id, kind=kind, message=message, actor="supervisor",
                details=details, at=at,
            )  # fmt: skip

    def _handle(self, event: object) -> None:
        if isinstance(event, ServiceExited | ServiceStopped):
            self._starting.discard(event.service)
        match event:
            case ServiceExited(expected=False):
                why = f" ({event.reason})" if event.reason else ""
                self._trigger(
                    event.service, f"{event.description}{why}",
                    occurred=event.at, detected=event.at,
                    kind=Kind.TIMEOUT if event.reason else Kind.UNKNOWN, reason="exit",
                    tags={"pid": str(event.pid), "uptime": f"{event.uptime:.3f}"},
                )  # fmt: skip
            # A starting service is judged by its start timeout, not by its probes.
            case ServiceUnhealthy() if event.service not in self._starting:
                self._trigger(
                    event.service,
                    f"{event.probe} probe failed {event.failures}× ({event.evidence})",
                    occurred=event.first_failure_at, detected=event.at, kind=_kind(event.kind),
                    probe=event.probe, reason=f"{event.probe_type}:{event.kind}",
                    tags={"action": event.action},
                )  # fmt: skip
            case ServiceKilling():
                self._note(
                    event.service, TimelineKind.RECOVERY_STARTED,
                    f"sent {'SIGKILL' if event.stage == 'sigkill' else f'signal {event.signal} + SIGCONT'}"
                    f" to pid {event.pid}: {event.reason}", event.at, stage=event.stage, pid=event.pid,
                )  # fmt: skip
            case ServiceRestarting():
                self._note(
                    event.service, TimelineKind.RECOVERY_STARTED,
                    f"restarting after {event.delay * 1000:.0f} ms backoff "
                    f"(failure {event.failures}: {event.reason})", event.at,
                    delay=event.delay, attempt=event.attempt,
                )  # fmt: skip
            case ServiceFatal():
                self._trigger(
                    event.service,
                    f"crash loop: fatal after {event.restarts} restarts within "
                    f"{event.within:g}s; retrying after {event.cooldown:g}s",
                    occurred=event.at, detected=event.at,
                    severity=Severity(max(1, self._severity(event.service) - 1)), reason="crash-loop",
                )  # fmt: skip
                self._note(
                    event.service, TimelineKind.ESCALATED,
                    f"crash-loop limit reached; cooldown {event.cooldown:g}s", event.at,
                )  # fmt: skip
            case ServiceReady():
                self._starting.discard(event.service)
                self._ready(event)
            case ServiceStarting():
                self._starting.add(event.service)
                if (opened := self._open.get(event.service)) is not None:
                    opened.healthy = False
            case ServiceHealthy():
                opened = self._open.get(event.service)
                if opened is not None and opened.mitigated:
                    self._resolve(event.service, event.at, f"{event.probe} probe passes again")
                elif opened is not None:
                    opened.healthy = True  # passed before the start counted: resolve at ready
            case ServiceFailover():
                failed = event.from_service if not event.failback else event.to_service
                self._note(
                    failed, TimelineKind.RECOVERY_STARTED,
                    f"group {event.service}: {'failback' if event.failback else 'failover'} from "
                    f"{event.from_service} to {event.to_service} ({event.reason})", event.at,
                )  # fmt: skip
                if not event.failback:
                    self._covering[event.to_service] = event.from_service
            case Delivery():
                self._delivered(event)
            case SupervisorUncleanStop():
                since = event.previous_started_at.isoformat() if event.previous_started_at else "?"
                message = (
                    f"medic (pid {event.previous_pid}, up since {since}) stopped without stopping "
                    f"its services; {len(event.leftover_pids)} leftover processes killed"
                )
                self._trigger(
                    "medic", message, occurred=event.at, detected=event.at, reason="unclean-stop"
                )
                self._move("medic", Action.RESOLVE, event.at, "medic is running again")
                self._open.pop("medic", None)
            case _ if isinstance(event, BACKUP_EVENTS):
                self._backups.handle(event)

    def _ready(self, event: ServiceReady) -> None:
        replaced = self._covering.pop(event.service, None)
        if replaced is not None and (covered := self._open.get(replaced)) is not None:
            covered.attempts += 1
            if not self._engine_attempts:
                self.tracker.record_recovery(
                    covered.incident_id, action="failover", attempt=covered.attempts,
                    started_at=covered.failed_at, ended_at=event.at, outcome="success",
                    evidence={"to": event.service, "pid": event.pid},
                )  # fmt: skip
            self._move(replaced, Action.MITIGATE, event.at, f"{event.service} took over")
            covered.mitigated = True
        opened = self._open.get(event.service)
        if opened is None:
            return
        opened.attempts += 1
        if not self._engine_attempts:
            self.tracker.record_recovery(
                opened.incident_id, action="restart", attempt=opened.attempts,
                started_at=opened.failed_at, ended_at=event.at, outcome="success",
                evidence={"pid": event.pid, "ready_via": event.via, "startup_s": round(event.startup_seconds, 4)},
            )  # fmt: skip
        self._move(event.service, Action.MITIGATE, event.at, f"{event.service} is running again")
        opened.mitigated = True
        if event.service not in self._probed or opened.healthy:
            self._resolve(event.service, event.at, f"{event.service} ready again")

    def _resolve(self, service: str, at: datetime, message: str) -> None:
        opened = self._open.pop(service)
        self._move(service, Action.RESOLVE, at, message)
        last = self._resolved.get(service)
        flaps = last.flaps if last is not None and last.incident_id == opened.incident_id else 0
        self._resolved[service] = _Resolved(opened.incident_id, at, flaps)
        for dependent in [d for d, root in self._cascaded.items() if root == service]:
            del self._cascaded[dependent]
        self._tell(service, None)

    def _delivered(self, d: Delivery) -> None:
        if d.status is DeliveryStatus.DUPLICATE:
            return  # the first delivery is on record already
        self.tracker.record_notification(
            d.incident_id, level=str(d.level), channel=d.channel, target=d.target,
            kind=str(d.kind), delivered=d.delivered, attempts=max(1, d.attempts),
            error=d.error if not d.delivered else None, at=d.at,
        )  # fmt: skip
