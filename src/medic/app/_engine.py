"""The recovery side of `medic up`: the engine, the escalation ladder and the alerts, wired together.

Failures reach the engine straight from the bus, so the first action never
waits for the store; the recorder tells it (through `IncidentIndex`) which
incident each failure joined, for the record. The ladder ticks on store timers:
L2 runs the matching safe runbooks, L3 and L4 notify people. A new incident is
announced on the channels its severity routes to, and its end is announced to
whoever was told it began.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from medic.alerts import Dispatcher
from medic.app._recovery import AppActions, GoodCheckpoints, IncidentIndex
from medic.bus import Bus
from medic.clock import Clock
from medic.config import LoadedConfig, Plan, load_runbooks
from medic.errors import ConfigError, MedicError
from medic.events import (
    AlertLevel,
    Notification,
    NotificationKind,
    ServiceExited,
    ServiceUnhealthy,
)
from medic.health import HealthMonitor, ProbeAction
from medic.recovery import (
    Escalator,
    Failure,
    Level,
    RecoveryEngine,
    RecoveryPlan,
    Runbook,
    RunbookLevelAction,
    Strategy,
)
from medic.supervisor import Supervisor
from medic.taxonomy import Kind
from medic.tracker import IncidentView, Tracker

__all__ = ["RecoveryWiring"]

log = logging.getLogger("medic.app")
_TIMELINE_LINES = 8


def _kind(value: str) -> Kind:
    try:
        return Kind.parse(value)
    except ValueError:
        return Kind.UNKNOWN


def runbooks_of(config: LoadedConfig) -> list[Runbook]:
    """The runbooks of the config's folder; none when the folder does not exist."""
    folder = config.base_dir / config.model.runbooks
    if not folder.is_dir():
        return []
    try:
        return load_runbooks(folder)
    except ConfigError as exc:
        log.error("runbooks not loaded: %s", exc)
        return []


class RecoveryWiring:
    """Owns the engine, the escalator and the dispatcher of one `medic up`."""

    def __init__(
        self,
        *,
        tracker: Tracker,
        plan: Plan,
        runbooks: list[Runbook],
        supervisor: Supervisor,
        monitor: HealthMonitor,
        dispatcher: Dispatcher,
        bus: Bus,
        clock: Clock,
        state_dir: Path,
    ) -> None:
        self.tracker, self.plan, self.bus, self._clock = tracker, plan, bus, clock
        self.index = IncidentIndex()
        self.actions = AppActions(
            supervisor=supervisor, monitor=monitor, plan=plan, state_dir=state_dir, clock=clock
        )
        self.good = GoodCheckpoints(plan.recovery.checkpoints, state_dir=state_dir, clock=clock)
        self.dispatcher = dispatcher
        self._interval = plan.escalation_interval
        self._tasks: set[asyncio.Task[Any]] = set()
        self._announced: OrderedDict[int, None] = OrderedDict()
        self.escalator = Escalator(
            tracker=tracker,
            ladder=plan.ladder,
            clock=clock,
            policies=dict(plan.tracker.severity_policies),
            actions={
                2: RunbookLevelAction(
                    runbooks, tracker, actions=self.actions.runbook_actions(), clock=clock,
                    spawn=self.spawn,
                ),
                3: self._page,
                4: self._page,
            },
        )  # fmt: skip
        self.engine = RecoveryEngine(
            tracker=tracker, actions=self.actions, incident_of=self._incident_of,
            plans=plan.recovery.plans, runbooks=runbooks, clock=clock, bus=bus,
            on_escalated=self._escalated,
        )  # fmt: skip
        self.enabled = plan.recovery.enabled

    def configure(self, plan: Plan, runbooks: list[Runbook]) -> None:
        """A reload: new plans, checkpoints, runbooks and ladder for the next failures."""
        self.plan = plan
        self.enabled = plan.recovery.enabled
        self.actions.configure(plan)
        self.good.settings = dict(plan.recovery.checkpoints)
        self.engine.plans = plan.recovery.plans
        self.engine.runbooks = tuple(runbooks)
        self.escalator.ladder = plan.ladder
        level2 = self.escalator.actions.get(2)
        if isinstance(level2, RunbookLevelAction):
            self.escalator.actions = {
                **self.escalator.actions,
                2: dataclasses.replace(level2, runbooks=tuple(runbooks)),
            }

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        if self.plan.escalation_enabled:
            self.spawn(self.escalator.run(interval=self._interval))

    async def close(self) -> None:
        await self.engine.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("recovery task failed: %r", exc, exc_info=exc)

    # -- failures in -----------------------------------------------------------------

    def failed(self, event: ServiceExited | ServiceUnhealthy) -> None:
        """A failure seen on the bus: start its plan now."""
        plan: RecoveryPlan | None = None
        if isinstance(event, ServiceExited):
            failure = Failure(
                event.service, Kind.TIMEOUT if event.reason else Kind.UNKNOWN, event.at,
                cause="exit", evidence=event.description,
            )  # fmt: skip
        else:
            failure = Failure(
                event.service, _kind(event.kind), event.at, cause="probe",
                evidence=f"{event.probe} probe failed {event.failures}x: {event.evidence}",
            )  # fmt: skip
            plan = self._probe_plan(failure, event.action)
        self.engine.submit(failure, plan=plan)

    def _probe_plan(self, failure: Failure, action: str) -> RecoveryPlan:
        """A probe's failure threshold was its retry; its action says what comes first."""
        configured = self.plan.recovery.plans.plan_for(failure.service, failure.kind)
        steps = [s for s in configured.steps if s.strategy is not Strategy.RETRY]
        if action == ProbeAction.ALERT:
            return RecoveryPlan.of("escalate")
        if action == ProbeAction.FAILOVER:
            first = [s for s in steps if s.strategy is Strategy.FAILOVER] or [
                RecoveryPlan.of("failover").steps[0]
            ]
            steps = first[:1] + [s for s in steps if s.strategy is not Strategy.FAILOVER]
        return RecoveryPlan(tuple(steps))

    def healthy(self, service: str) -> None:
        """The service is well: take its good checkpoint when one is due."""
        if self.good.due(service) and not self.actions.down_dependency(service):
            self.spawn(self.good.take(service))

    # -- incidents from the recorder (called on the loop) ----------------------------

    def incident_changed(self, service: str, incident_id: int | None) -> None:
        previous = self.index.get(service)
        self.index.set(service, incident_id)
        if incident_id is not None and incident_id not in self._announced:
            self._announced[incident_id] = None
            while len(self._announced) > 10_000:
                self._announced.popitem(last=False)
            self.spawn(self._notify(incident_id, NotificationKind.TRIGGERED))
        elif incident_id is None and previous is not None:
            restored = self.actions.restore_features(service)
            if restored:
                log.info("%s: features back on after recovery: %s", service, ", ".join(restored))
            if previous in self._announced:
                self.spawn(self._notify(previous, NotificationKind.RESOLVED))

    async def _incident_of(self, failure: Failure) -> int | None:
        return await self.index.wait(failure.service, timeout=30.0)

    async def _escalated(self, incident_id: int) -> None:
        with contextlib.suppress(MedicError):
            await self.escalator.tick()

    # -- notifications -----------------------------------------------------------------

    async def _page(self, incident: IncidentView, level: Level, loop: int) -> None:
        """L3 and L4: a person must hear of it, whatever the severity's usual route."""
        floor = AlertLevel.HIGH if level.level == 3 else AlertLevel.CRITICAL
        usual = AlertLevel.for_severity(incident.severity)
        order = list(AlertLevel)  # critical, high, medium, low
        alert = min(usual, floor, key=order.index)
        await self._notify(incident.id, NotificationKind.ESCALATED, level=alert, repeat=loop)

    async def _notify(
        self,
        incident_id: int,
        kind: NotificationKind,
        *,
        level: AlertLevel | None = None,
        repeat: int = 0,
    ) -> None:
        try:
            note = await asyncio.to_thread(self._notification, incident_id, kind, level, repeat)
            if note is not None:
                await self.dispatcher.dispatch(note)
        except MedicError as exc:
            log.warning("notification for incident %s not sent: %s", incident_id, exc)

    def _notification(
        self, incident_id: int, kind: NotificationKind, level: AlertLevel | None, repeat: int
    ) -> Notification | None:
        """The notice to send; None when a previous medic on this store already sent it."""
        if kind in (NotificationKind.TRIGGERED, NotificationKind.RESOLVED) and any(
            n["kind"] == kind and n["delivered"] for n in self.tracker.notifications(incident_id)
        ):
            return None  # escalations are once-only by their timers; these by the record
        view = self.tracker.incident(incident_id)
        entries = self.tracker.timeline(incident_id, limit=_TIMELINE_LINES, newest=True)
        lines = tuple(f"{e.at:%H:%M:%S} {e.message}" for e in entries)
        link = self.plan.alerts.link_for(incident_id)
        return Notification(
            incident_id=incident_id, title=view.title, service=view.service,
            severity=view.severity, level=level or AlertLevel.for_severity(view.severity),
            kind=kind, status=str(view.status), key=view.dedup_key or "",
            link=link or f"medic incidents show {incident_id}",
            started_at=view.impact_started_at, timeline=lines, repeat=repeat,
        )  # fmt: skip

    def status(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "running": self.engine.running(),
            "recent": [
                {
                    "service": r.service, "incident": r.incident_id, "recovered": r.recovered,
                    "by": str(r.by) if r.by else None, "escalated_to": r.escalated_to,
                    "steps": [f"{s.step.describe()}: {s.outcome}" for s in r.steps],
                }
                for r in self.engine.results[-10:]
            ],
        }  # fmt: skip
