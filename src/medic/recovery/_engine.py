"""The recovery engine: a failure → its plan → each step acted, verified, recorded → escalate.

The first action is taken before anything is written: recovery never waits for
the store (issue 6: detection to first action ≤ 50 ms). The incident the
failure belongs to is looked up while the step runs, and every step lands in
the store as a recovery attempt with its duration and evidence once it ends.

One plan runs per service at a time: a service that fails again while its plan
runs is the same outage, which the running plan's verification will see. A
plan that ran out escalates, and the same open incident does not start a new
plan on every crash of a crash loop; it waits for a human or for the service to
recover (`recovered`).

Cascades: when a dependency of the failed service is down, no plan runs for
the dependent (the root's plan covers it), and a `RecoveryDeferred` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from medic.bus import Bus
from medic.clock import Clock, system_clock
from medic.errors import IllegalTransition, MedicError, NotFound, UserError
from medic.events import (
    RecoveryDeferred,
    RecoveryExhausted,
    RecoveryFinished,
    RecoveryStarted,
)
from medic.recovery._runbook_actions import ActionUnavailable, MedicActions
from medic.recovery._runbook_matching import incident_facts, matching_runbooks
from medic.recovery._runbook_model import Runbook
from medic.recovery._runbooks import RunbookRunner
from medic.recovery._strategies import Plans, PlanStep, RecoveryPlan, Strategy
from medic.taxonomy import Kind
from medic.tracker import IncidentView, Tracker

__all__ = [
    "Failure",
    "PlanResult",
    "RecoveryEngine",
    "ServiceActions",
    "StepReport",
    "Verdict",
]

log = logging.getLogger("medic.recovery")


@dataclass(frozen=True, slots=True)
class Failure:
    """What the engine is asked to recover from; `cause` is exit, probe, crash-loop or signal."""

    service: str
    kind: Kind
    detected_at: datetime
    cause: str = "signal"
    evidence: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether the service is well again, and what showed it."""

    ok: bool
    detail: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class ServiceActions(Protocol):
    """What the engine can do to a service; `medic up` implements it over the supervisor.

    An action that cannot apply here (no failover group, no checkpoint
    configured) raises `ActionUnavailable`: the step is skipped, not failed.
    Each returns a short line of evidence for the record.
    """

    async def restart(self, service: str) -> str: ...

    async def failover(self, service: str, group: str) -> str: ...

    async def degrade(self, service: str, feature: str) -> str: ...

    async def rollback(self, service: str) -> str: ...

    async def restore(self, service: str, backup: str) -> str: ...

    async def verify(self, service: str, *, timeout: float, settle: float) -> Verdict:
        """Wait up to `timeout` for the service to be healthy for `settle` seconds in a row."""
        ...

    def down_dependency(self, service: str) -> str | None:
        """A dependency of `service` that is down right now, if any."""
        ...

    def runbook_actions(self) -> MedicActions: ...


@dataclass(frozen=True, slots=True)
class StepReport:
    step: PlanStep
    outcome: str  # success | failure | timeout | skipped
    detail: str
    started_at: datetime
    ended_at: datetime


@dataclass(frozen=True, slots=True)
class PlanResult:
    """What a plan did: `recovered` by which step, or escalated to `escalated_to`."""

    service: str
    incident_id: int | None
    plan: RecoveryPlan
    steps: tuple[StepReport, ...]
    recovered: bool
    escalated_to: int | None = None
    degraded: bool = False

    @property
    def by(self) -> Strategy | None:
        last = self.steps[-1] if self.steps else None
        return last.step.strategy if last is not None and self.recovered else None


IncidentOf = Callable[[Failure], Awaitable[int | None]]


class RecoveryEngine:
    """Runs recovery plans for failures, one at a time per service, at most `max_running` at once."""

    def __init__(
        self,
        *,
        tracker: Tracker,
        actions: ServiceActions,
        incident_of: IncidentOf,
        plans: Plans | None = None,
        runbooks: Sequence[Runbook] = (),
        clock: Clock = system_clock,
        bus: Bus | None = None,
        on_escalated: Callable[[int], Awaitable[None]] | None = None,
        max_running: int = 64,
        actor: str = "medic-engine",
    ) -> None:
        self.tracker, self.actions, self.plans = tracker, actions, plans or Plans()
        self.runbooks = tuple(runbooks)
        self._incident_of, self._clock, self._bus = incident_of, clock, bus
        self._on_escalated = on_escalated
        self._max_running, self.actor = max_running, actor
        self._running: dict[str, asyncio.Task[PlanResult | None]] = {}
        self._exhausted: dict[str, int] = {}  # service → incident whose plan ran out
        self.results: list[PlanResult] = []  # the last 100, for status and tests
        self.dropped = 0

    # -- entry points ----------------------------------------------------------------

    def submit(
        self, failure: Failure, *, plan: RecoveryPlan | None = None
    ) -> asyncio.Task[PlanResult | None] | None:
        """Start the plan for a failure now; None when a plan runs already or none should run.

        `plan` replaces the configured one for this failure (a probe whose action
        is `failover` or `alert` says what its owner wants done first).
        """
        if failure.service in self._running:
            return None
        root = self.actions.down_dependency(failure.service)
        if root is not None:
            self._publish(RecoveryDeferred(failure.service, root, self._clock.now()))
            return None
        if len(self._running) >= self._max_running:
            self.dropped += 1
            log.warning(
                "recovery of %s not started: %d plans running", failure.service, self._max_running
            )
            return None
        task = asyncio.create_task(
            self._run(failure, plan), name=f"medic:recover:{failure.service}"
        )
        self._running[failure.service] = task
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[PlanResult | None]) -> None:
        for service, running in list(self._running.items()):
            if running is task:
                del self._running[service]

    def recovered(self, service: str) -> None:
        """The service is well again: a later failure gets a fresh plan."""
        self._exhausted.pop(service, None)

    def running(self) -> list[str]:
        return sorted(self._running)

    async def close(self) -> None:
        """Cancel running plans (medic is stopping; their incidents stay open for the next run)."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- one plan --------------------------------------------------------------------

    async def _run(self, failure: Failure, chosen: RecoveryPlan | None) -> PlanResult | None:
        plan = chosen or self.plans.plan_for(failure.service, failure.kind)
        incident = asyncio.ensure_future(self._incident_of(failure))
        try:
            return await self._steps(failure, plan, incident)
        except asyncio.CancelledError:
            raise
        except Exception:  # the engine must outlive one broken plan
            log.exception("recovery plan for %s failed", failure.service)
            return None
        finally:
            if not incident.done():
                incident.cancel()

    async def _steps(
        self, failure: Failure, plan: RecoveryPlan, incident: asyncio.Future[int | None]
    ) -> PlanResult | None:
        exhausted = self._exhausted.get(failure.service)
        if exhausted is not None:
            # A crash loop after the plan ran out: the same outage, already escalated.
            incident_id = await incident
            if incident_id == exhausted and await self._still_open(incident_id):
                return None
            self._exhausted.pop(failure.service, None)
        reports: list[StepReport] = []
        ran_runbook = False
        for index, step in enumerate(plan.steps, start=1):
            if step.strategy is Strategy.ESCALATE:
                incident_id = await incident
                level = await self._escalate(failure, incident_id, ran_runbook=ran_runbook)
                result = PlanResult(
                    failure.service, incident_id, plan, tuple(reports), False, escalated_to=level
                )
                return self._keep(result)
            report = await self._step(failure, step, index, incident)
            reports.append(report)
            ran_runbook |= step.strategy is Strategy.RUNBOOK and report.outcome != "skipped"
            if report.outcome == "success":
                degraded = step.strategy in (Strategy.DEGRADE, Strategy.PARTIAL)
                incident_id = await incident
                if degraded and incident_id is not None:
                    await self._mark_degraded(incident_id, report.detail)
                return self._keep(
                    PlanResult(
                        failure.service, incident_id, plan, tuple(reports), True, degraded=degraded
                    )
                )
        return None  # unreachable: a plan always ends by escalating

    async def _step(
        self, failure: Failure, step: PlanStep, index: int, incident: asyncio.Future[int | None]
    ) -> StepReport:
        started, t0 = self._clock.now(), self._clock.monotonic()
        self._publish(
            RecoveryStarted(
                failure.service, str(step.strategy), index, failure.detected_at, started
            )
        )
        outcome, detail, evidence = "failure", "", dict[str, Any]()
        try:
            async with asyncio.timeout(step.timeout):
                outcome, detail, evidence = await self._act(failure, step, incident)
        except TimeoutError:
            outcome, detail = "timeout", f"no recovery within {step.timeout:g}s"
        except ActionUnavailable as exc:
            outcome, detail = "skipped", str(exc)
        except (MedicError, OSError) as exc:
            outcome, detail = "failure", f"{type(exc).__name__}: {exc}"
        ended, took = self._clock.now(), self._clock.monotonic() - t0
        incident_id = await incident
        if step.strategy is not Strategy.RUNBOOK and incident_id is not None:
            await self._record(
                incident_id, failure, step, started, ended, outcome, detail, evidence
            )
        self._publish(
            RecoveryFinished(
                failure.service,
                str(step.strategy),
                index,
                outcome,
                took,
                detail,
                ended,
                incident_id,
            )
        )
        return StepReport(step, outcome, detail, started, ended)

    async def _act(
        self, failure: Failure, step: PlanStep, incident: asyncio.Future[int | None]
    ) -> tuple[str, str, dict[str, Any]]:
        """Take the step's action, then judge it; returns (outcome, detail, evidence)."""
        service, actions = failure.service, self.actions
        match step.strategy:
            case Strategy.RETRY:
                return await self._retry(failure, step)
            case Strategy.RESTART:
                did = await actions.restart(service)
            case Strategy.FAILOVER:
                did = await actions.failover(service, step.target)
            case Strategy.DEGRADE | Strategy.PARTIAL:
                feature = step.target or (
                    "partial-results" if step.strategy is Strategy.PARTIAL else ""
                )
                if not feature:
                    raise ActionUnavailable(
                        f"{step.strategy} needs a feature: set `target` in the plan step"
                    )
                did = await actions.degrade(service, feature)
                return "success", f"degraded: {did}", {"feature": feature}
            case Strategy.ROLLBACK:
                did = await actions.rollback(service)
            case Strategy.RESTORE:
                did = await actions.restore(service, step.target)
            case Strategy.RUNBOOK:
                did = await self._runbooks(failure, step, await incident)
            case _:  # escalate never reaches here
                raise UserError(f"strategy {step.strategy} is not an action")
        remaining = max(0.0, step.timeout - 0.001)
        verdict = await actions.verify(service, timeout=remaining, settle=step.settle)
        outcome = "success" if verdict.ok else "failure"
        return outcome, f"{did}; {verdict.detail}", {"action": did, **verdict.evidence}

    async def _retry(self, failure: Failure, step: PlanStep) -> tuple[str, str, dict[str, Any]]:
        """Wait and look again, with doubling pauses: a transient fault may pass by itself."""
        last = Verdict(False, "not checked")
        for attempt in range(1, step.attempts + 1):
            await self._clock.asleep(step.delay * 2 ** (attempt - 1))
            last = await self.actions.verify(
                failure.service, timeout=max(step.settle * 2, 1.0), settle=step.settle
            )
            if last.ok:
                return (
                    "success",
                    f"healthy again after {attempt} look(s): {last.detail}",
                    {"looks": attempt},
                )
        return (
            "failure",
            f"still failing after {step.attempts} look(s): {last.detail}",
            {"looks": step.attempts},
        )

    async def _runbooks(self, failure: Failure, step: PlanStep, incident_id: int | None) -> str:
        if incident_id is None:
            raise ActionUnavailable("no incident to run a runbook for")
        view = await asyncio.to_thread(self.tracker.incident, incident_id)
        if step.target:
            chosen = [rb for rb in self.runbooks if rb.name == step.target]
            if not chosen:
                raise ActionUnavailable(f"no runbook named {step.target!r} is loaded")
        else:
            facts = await asyncio.to_thread(incident_facts, self.tracker, view)
            chosen = matching_runbooks(
                self.runbooks, service=failure.service, kind=facts.kind or failure.kind,
                fingerprints=facts.fingerprints, severity=facts.severity,
            )  # fmt: skip
        safe = [rb for rb in chosen if not rb.destructive]
        if not safe:
            why = "only destructive ones, which wait for a human" if chosen else "none matches"
            raise ActionUnavailable(f"no runbook to run by itself: {why}")
        runner = RunbookRunner(
            actions=self.actions.runbook_actions(), tracker=self.tracker, clock=self._clock,
            actor=self.actor,
        )  # fmt: skip
        done: list[str] = []
        for rb in safe:
            result = await runner.run(rb, incident=view)
            done.append(f"{rb.name}: {result.outcome}")
            if not result.ok:
                raise _RunbookFailed(f"runbook {rb.name} ended {result.outcome}")
        return "ran " + ", ".join(done)

    # -- records ---------------------------------------------------------------------

    async def _record(
        self, incident_id: int, failure: Failure, step: PlanStep, started: datetime,
        ended: datetime, outcome: str, detail: str, evidence: Mapping[str, Any],
    ) -> None:  # fmt: skip
        def write() -> None:
            done = sum(
                1 for a in self.tracker.recovery_attempts(incident_id) if a.action == step.strategy
            )
            self.tracker.record_recovery(
                incident_id, action=str(step.strategy), attempt=done + 1, started_at=started,
                ended_at=ended, outcome=outcome, error=None if outcome == "success" else detail,
                evidence={"detail": detail, "cause": failure.cause, **evidence}, actor=self.actor,
            )  # fmt: skip

        try:
            await asyncio.to_thread(write)
        except MedicError:
            log.exception(
                "could not record the %s attempt of incident %s", step.strategy, incident_id
            )

    async def _mark_degraded(self, incident_id: int, detail: str) -> None:
        def write() -> None:
            with contextlib.suppress(IllegalTransition):
                self.tracker.mitigate(incident_id, actor=self.actor, note=detail)

        with contextlib.suppress(MedicError):
            await asyncio.to_thread(write)

    async def _still_open(self, incident_id: int | None) -> bool:
        if incident_id is None:
            return False
        try:
            view = await asyncio.to_thread(self.tracker.incident, incident_id)
        except NotFound:
            return False
        return view.status in ("triggered", "acknowledged", "mitigated")

    async def _escalate(
        self, failure: Failure, incident_id: int | None, *, ran_runbook: bool
    ) -> int:
        """Climb now: to L2 (runbooks) when none ran yet, else straight to L3 (a human)."""
        # The ladder fires the level above the one set here as soon as it ticks.
        below = 2 if ran_runbook else 1
        target = below + 1
        if incident_id is not None:
            self._exhausted[failure.service] = incident_id

            def write() -> IncidentView:
                view = self.tracker.incident(incident_id)
                if view.escalation_level >= target:
                    return view
                return self.tracker.set_escalation(
                    incident_id, level=max(below, view.escalation_level), next_at=self._clock.now(),
                    actor=self.actor,
                    message=f"recovery plan exhausted for {failure.service}: escalating to L{target}",
                )  # fmt: skip

            try:
                await asyncio.to_thread(write)
            except MedicError:
                log.exception("could not escalate incident %s", incident_id)
            if self._on_escalated is not None:
                await self._on_escalated(incident_id)
        self._publish(RecoveryExhausted(failure.service, incident_id, target, self._clock.now()))
        return target

    def _keep(self, result: PlanResult) -> PlanResult:
        self.results.append(result)
        del self.results[:-100]
        return result

    def _publish(self, event: object) -> None:
        if self._bus is not None:
            self._bus.publish(event)


class _RunbookFailed(MedicError):
    """A runbook the engine ran did not succeed; the plan moves on."""
