"""The recorder: turns supervisor and health events into tracker records.

Each service's incident is keyed `service:NAME`: the first failure (an unexpected
exit, a probe past its threshold, a crash loop) triggers it with `occurred_at` =
the true failure time and `detected_at` = when medic decided; the restart lands
on the timeline; a ready start mitigates it (with the recovery attempt and its
timings), and passing probes resolve it (auto_recovery). A service without
probes is resolved once it is ready again, since readiness is all medic can know.

Writes run on one worker thread, in event order, so the event loop (and with it
the restart path) never waits for the database.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from medic.app._backup_records import BACKUP_EVENTS, BackupRecords
from medic.bus import Bus, Subscription
from medic.events import (
    Action,
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
    ServiceUnhealthy,
    Signal,
    SupervisorUncleanStop,
)
from medic.taxonomy import Kind, Severity
from medic.tracker import TimelineKind, Tracker

__all__ = ["Recorder"]

log = logging.getLogger("medic.app")


@dataclass(slots=True)
class _Open:
    incident_id: int
    failed_at: datetime
    attempts: int = 0
    mitigated: bool = False
    healthy: bool = False


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
        maxsize: int = 10_000,
    ) -> None:
        self.tracker = tracker
        self._severities = dict(severities)
        self._probed = set(probed)
        self._open: dict[str, _Open] = {}
        self._covering: dict[str, str] = {}  # failover target → the service it replaces
        self._sub: Subscription = bus.subscribe(
            ProcessEvent, HealthEvent, *BACKUP_EVENTS, maxsize=maxsize
        )
        self._backups = BackupRecords(tracker)
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

    def configure(self, *, severities: Mapping[str, Severity], probed: set[str]) -> None:
        self._severities, self._probed = dict(severities), set(probed)

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
        result = self.tracker.record(
            Signal(
                service=service, message=message, kind=kind,
                severity=severity or self._severity(service), source="supervisor",
                occurred_at=occurred, detected_at=detected, dedup_key=f"service:{service}",
                probe=probe, reason=reason, tags=dict(tags or {}),
            )
        )  # fmt: skip
        if result.incident_id is not None and service not in self._open:
            self._open[service] = _Open(result.incident_id, occurred)

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
        opened = self._open.get(service)
        if opened is not None:
            self.tracker.add_timeline(
                opened.incident_id, kind=kind, message=message, actor="supervisor",
                details=details, at=at,
            )  # fmt: skip

    def _handle(self, event: object) -> None:
        match event:
            case ServiceExited(expected=False):
                why = f" ({event.reason})" if event.reason else ""
                self._trigger(
                    event.service, f"{event.description}{why}",
                    occurred=event.at, detected=event.at,
                    kind=Kind.TIMEOUT if event.reason else Kind.UNKNOWN, reason="exit",
                    tags={"pid": str(event.pid), "uptime": f"{event.uptime:.3f}"},
                )  # fmt: skip
            case ServiceUnhealthy():
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
                self._ready(event)
            case ServiceStarting():
                if (opened := self._open.get(event.service)) is not None:
                    opened.healthy = False
            case ServiceHealthy():
                opened = self._open.get(event.service)
                if opened is not None and opened.mitigated:
                    self._move(
                        event.service, Action.RESOLVE, event.at, f"{event.probe} probe passes again"
                    )
                    del self._open[event.service]
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
        self.tracker.record_recovery(
            opened.incident_id, action="restart", attempt=opened.attempts,
            started_at=opened.failed_at, ended_at=event.at, outcome="success",
            evidence={"pid": event.pid, "ready_via": event.via, "startup_s": round(event.startup_seconds, 4)},
        )  # fmt: skip
        self._move(event.service, Action.MITIGATE, event.at, f"{event.service} is running again")
        opened.mitigated = True
        if event.service not in self._probed or opened.healthy:
            self._move(event.service, Action.RESOLVE, event.at, f"{event.service} ready again")
            del self._open[event.service]
