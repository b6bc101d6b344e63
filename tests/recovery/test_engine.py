"""The recovery engine: plans run in order, each step verified and recorded, exhausted plans escalate."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medic.bus import Bus
from medic.errors import ConfigError
from medic.events import (
    RecoveryDeferred,
    RecoveryExhausted,
    RecoveryFinished,
    RecoveryStarted,
    Signal,
)
from medic.recovery import (
    DEFAULT_PLANS,
    ActionUnavailable,
    AppliesTo,
    Failure,
    MedicActions,
    MedicActionSet,
    Plans,
    PlanStep,
    RecoveryEngine,
    RecoveryPlan,
    RunAction,
    Runbook,
    RunVerify,
    Step,
    Strategy,
    Verdict,
)
from medic.taxonomy import Kind
from medic.testing import temporary_tracker
from medic.tracker import Tracker


def _sync(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test body on a fresh event loop (the suite has no async plugin)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return run


class Service:
    """A stand-in service whose health the test scripts: each action may heal it or not."""

    def __init__(
        self, *, heals: set[str] | None = None, dependency_down: str | None = None
    ) -> None:
        self.healthy = False
        self.heals = heals or set()
        self.calls: list[str] = []
        self.dependency_down = dependency_down
        self.hang_verify = False

    async def _do(self, action: str, detail: str) -> str:
        self.calls.append(action)
        if action in self.heals:
            self.healthy = True
        return detail

    async def restart(self, service: str) -> str:
        return await self._do("restart", f"restarted {service}")

    async def failover(self, service: str, group: str) -> str:
        raise ActionUnavailable(f"{service} is in no failover group")

    async def degrade(self, service: str, feature: str) -> str:
        return await self._do("degrade", f"{feature} disabled")

    async def rollback(self, service: str) -> str:
        raise ActionUnavailable(f"{service} declares no checkpoint")

    async def restore(self, service: str, backup: str) -> str:
        return await self._do("restore", f"restored {backup}")

    async def verify(self, service: str, *, timeout: float, settle: float) -> Verdict:
        if self.hang_verify:
            await asyncio.sleep(3600)
        return Verdict(self.healthy, "probes pass" if self.healthy else "probes fail")

    def down_dependency(self, service: str) -> str | None:
        return self.dependency_down

    def runbook_actions(self) -> MedicActions:
        return MedicActionSet(context="the test")


@pytest.fixture
def tracker() -> Iterator[Tracker]:
    with temporary_tracker() as t:
        yield t


def _engine(
    tracker: Tracker, service: Service, bus: Bus | None = None, **kw: object
) -> RecoveryEngine:
    async def incident_of(failure: Failure) -> int | None:
        signal = Signal(
            service=failure.service, message=failure.evidence or "down", kind=failure.kind,
            dedup_key=f"service:{failure.service}", source="supervisor",
        )  # fmt: skip
        return (await asyncio.to_thread(tracker.record, signal)).incident_id

    return RecoveryEngine(tracker=tracker, actions=service, incident_of=incident_of, bus=bus, **kw)  # type: ignore[arg-type]


def _failure(kind: Kind = Kind.UNKNOWN, service: str = "web") -> Failure:
    return Failure(service, kind, datetime.now(UTC), cause="exit", evidence="exit 1")


@_sync
async def test_a_restart_that_heals_is_one_verified_attempt(tracker: Tracker) -> None:
    """The first step acts, verifies, and lands as a recovery attempt with its evidence."""
    bus = Bus()
    seen = bus.subscribe(RecoveryStarted, RecoveryFinished)
    engine = _engine(tracker, Service(heals={"restart"}), bus)
    task = engine.submit(_failure())
    assert task is not None
    result = await task
    assert result is not None
    assert result.recovered
    assert result.by is Strategy.RESTART
    attempts = tracker.recovery_attempts(result.incident_id or 0)
    assert [(a.action, a.outcome) for a in attempts] == [("restart", "success")]
    assert "probes pass" in attempts[0].evidence["detail"]
    started = seen.get(timeout=0)
    assert isinstance(started, RecoveryStarted)
    assert started.strategy == "restart"
    assert started.at >= started.detected_at


@_sync
async def test_an_exhausted_plan_runs_the_runbook_then_escalates_to_a_human(
    tracker: Tracker, tmp_path: Path
) -> None:
    """restart fails → rollback unavailable → runbook's verification fails → escalate to L3."""
    bus = Bus()
    exhausted = bus.subscribe(RecoveryExhausted)
    marker = tmp_path / "ran"
    runbook = Runbook(
        name="clear-cache", description="", applies_to=AppliesTo(services=("web",)),
        steps=(Step(
            name="clear", context="a stale cache crashes the service",
            action=RunAction((sys.executable, "-c", f"open({str(marker)!r}, 'w').write('x')")),
            verify=RunVerify((sys.executable, "-c", "raise SystemExit(3)"), expect_exit=0),
            timeout=timedelta(seconds=5),
        ),),
    )  # fmt: skip
    engine = _engine(tracker, Service(), bus, runbooks=[runbook])
    result = await engine.submit(_failure())  # type: ignore[misc]
    assert result is not None
    assert not result.recovered
    assert result.escalated_to == 3
    assert [r.outcome for r in result.steps] == ["failure", "skipped", "failure"]
    assert marker.exists()  # the runbook's action really ran
    incident = tracker.incident(result.incident_id or 0)
    assert incident.escalation_level == 2
    assert incident.next_escalation_at is not None
    actions = [(a.action, a.outcome) for a in tracker.recovery_attempts(incident.id)]
    assert ("restart", "failure") in actions
    assert ("rollback", "skipped") in actions
    assert any(a.startswith("runbook") and o == "failure" for a, o in actions)
    event = exhausted.get(timeout=0)
    assert isinstance(event, RecoveryExhausted)
    assert event.level == 3


@_sync
async def test_without_a_runbook_the_plan_escalates_to_the_runbook_level(tracker: Tracker) -> None:
    """No runbook ran, so the ladder's next rung (L2, runbooks) comes first."""
    engine = _engine(tracker, Service())
    result = await engine.submit(_failure(Kind.AUTH))  # type: ignore[misc]
    assert result is not None
    assert result.escalated_to == 2
    assert [r.outcome for r in result.steps] == ["skipped"]


@_sync
async def test_a_crash_loop_after_exhaustion_does_not_start_plan_after_plan(
    tracker: Tracker,
) -> None:
    """The same open incident failing again waits for a human instead of re-running its plan."""
    service = Service()
    engine = _engine(tracker, service)
    await engine.submit(_failure())  # type: ignore[misc]
    calls = list(service.calls)
    again = await engine.submit(_failure())  # type: ignore[misc]
    assert again is None
    assert service.calls == calls
    engine.recovered("web")
    assert (await engine.submit(_failure())) is not None  # type: ignore[misc]


@_sync
async def test_degrade_mitigates_and_says_degraded(tracker: Tracker) -> None:
    """Continuing without a feature is a mitigation, and the incident says so."""
    plans = Plans(per_service={"web": RecoveryPlan.of(PlanStep(Strategy.DEGRADE, target="search"))})
    engine = _engine(tracker, Service(), plans=plans)
    result = await engine.submit(_failure())  # type: ignore[misc]
    assert result is not None
    assert result.recovered
    assert result.degraded
    incident = tracker.incident(result.incident_id or 0)
    assert incident.status == "mitigated"
    assert any("degraded" in e.message for e in tracker.timeline(incident.id))


@_sync
async def test_a_dependency_down_defers_to_the_root(tracker: Tracker) -> None:
    """A dependent of a failed service runs no plan of its own."""
    bus = Bus()
    deferred = bus.subscribe(RecoveryDeferred)
    service = Service(dependency_down="db")
    engine = _engine(tracker, service, bus)
    assert engine.submit(_failure()) is None
    event = deferred.get(timeout=0)
    assert isinstance(event, RecoveryDeferred)
    assert event.root == "db"
    assert service.calls == []


@_sync
async def test_one_plan_per_service_at_a_time(tracker: Tracker) -> None:
    """A second failure while the plan runs is the same outage."""
    service = Service(heals={"restart"})
    engine = _engine(tracker, service)
    first = engine.submit(_failure())
    assert first is not None
    assert engine.submit(_failure()) is None
    await first
    assert service.calls == ["restart"]


@_sync
async def test_a_step_that_hangs_times_out_and_the_plan_moves_on(tracker: Tracker) -> None:
    """Every step runs under its timeout; a timeout is recorded and the next step runs."""
    service = Service()
    service.hang_verify = True
    plans = Plans(
        per_service={"web": RecoveryPlan.of(PlanStep(Strategy.RESTART, timeout=0.2, settle=0))}
    )
    engine = _engine(tracker, service, plans=plans)
    result = await engine.submit(_failure())  # type: ignore[misc]
    assert result is not None
    assert [r.outcome for r in result.steps] == ["timeout"]
    attempts = tracker.recovery_attempts(result.incident_id or 0)
    assert attempts[0].outcome == "timeout"


@_sync
async def test_retry_looks_again_without_acting(tracker: Tracker) -> None:
    """`retry` waits and re-verifies: a transient fault that passed needs no action."""
    service = Service()
    service.healthy = True
    plans = Plans(per_kind={Kind.CONNECTION: RecoveryPlan.of(PlanStep(Strategy.RETRY, delay=0.01))})
    engine = _engine(tracker, service, plans=plans)
    result = await engine.submit(_failure(Kind.CONNECTION))  # type: ignore[misc]
    assert result is not None
    assert result.recovered
    assert service.calls == []


def test_plans_pick_service_then_kind_then_unknown() -> None:
    """A service's plan wins; otherwise the kind's; an unplanned kind falls back to unknown's."""
    mine = RecoveryPlan.of("restore")
    plans = Plans(per_service={"db": mine}, per_kind={Kind.TIMEOUT: RecoveryPlan.of("restart")})
    assert plans.plan_for("db", Kind.TIMEOUT) is mine
    assert plans.plan_for("web", Kind.TIMEOUT).describe() == "restart → escalate"
    assert plans.plan_for("web", Kind.DATA_INTEGRITY) == DEFAULT_PLANS[Kind.DATA_INTEGRITY]


def test_escalate_must_end_a_plan() -> None:
    """A step after `escalate` would never run: the plan is refused, naming why."""
    with pytest.raises(ConfigError, match="escalate ends a plan"):
        RecoveryPlan.of("escalate", "restart")
    with pytest.raises(ValueError, match="unknown strategy 'reboot'"):
        RecoveryPlan.of("reboot")


@given(st.lists(st.sampled_from([s for s in Strategy if s is not Strategy.ESCALATE]), max_size=8))
def test_every_plan_ends_in_exactly_one_escalate(strategies: list[Strategy]) -> None:
    """Whatever the config lists, nobody is left untold when every step fails."""
    plan = RecoveryPlan.of(*strategies)
    assert [s.strategy for s in plan.steps].count(Strategy.ESCALATE) == 1
    assert plan.steps[-1].strategy is Strategy.ESCALATE
    assert [s.strategy for s in plan.steps[:-1]] == strategies
