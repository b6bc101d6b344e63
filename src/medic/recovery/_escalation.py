"""The escalation ladder: L1 automatic recovery → L2 runbooks → L3 on-call → L4 engineering.

Every timer lives in the store (`next_escalation_at`, `escalation_level`,
`escalation_loop` of the incident), so a restarted medic picks up where the
last one stopped, and each step is claimed by compare-and-set, so it fires once
even when several agents tick the same store.

A level climbs only while its condition holds: `if_not_resolved` while the
incident is triggered or acknowledged (a mitigation stops the climb: the impact
is over), `if_not_acknowledged` while nobody has acknowledged it (an
acknowledgement stops paging). While the condition does not hold the timer is
pushed back by one budget, so the ladder resumes if it holds again.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from medic.clock import Clock, system_clock
from medic.errors import ConfigError, EnvironmentFault
from medic.taxonomy import Severity
from medic.tracker import DEFAULT_SEVERITY_POLICIES, IncidentView, SeverityPolicy, Tracker

__all__ = ["DEFAULT_LADDER", "Condition", "Escalator", "Fired", "Ladder", "Level"]


class Condition(enum.StrEnum):
    IF_NOT_ACKNOWLEDGED = "if_not_acknowledged"
    IF_NOT_RESOLVED = "if_not_resolved"

    def holds(self, status: str) -> bool:
        if self is Condition.IF_NOT_ACKNOWLEDGED:
            return status == "triggered"
        return status in ("triggered", "acknowledged")


@dataclass(frozen=True, slots=True)
class Level:
    """One rung: how long an incident may stay here, and when it may climb further.

    `budget` None means the severity's response target (seed 000: "based on
    severity"). `repeat` pages this level again that many times, one budget apart,
    before climbing.
    """

    level: int
    name: str
    budget: timedelta | None
    condition: Condition = Condition.IF_NOT_RESOLVED
    repeat: int = 0

    def budget_for(
        self, severity: Severity, policies: Mapping[Severity, SeverityPolicy]
    ) -> timedelta:
        if self.budget is not None:
            return self.budget
        return policies[severity].response_target


@dataclass(frozen=True, slots=True)
class Ladder:
    levels: tuple[Level, ...]

    def __post_init__(self) -> None:
        numbers = [lv.level for lv in self.levels]
        if numbers != list(range(1, len(numbers) + 1)) or not 1 <= len(numbers) <= 4:
            raise ConfigError(
                f"escalation levels must be L1, L2, … up to L4 in order; got {numbers}"
            )
        for lv in self.levels:
            if lv.repeat < 0 or (lv.budget is not None and lv.budget <= timedelta(0)):
                raise ConfigError(f"escalation level L{lv.level}: budget must be > 0, repeat ≥ 0")

    def at(self, level: int) -> Level:
        return self.levels[min(max(level, 1), len(self.levels)) - 1]

    def above(self, level: int) -> Level | None:
        return self.levels[level] if level < len(self.levels) else None


# Seed 000's ladder, with issue 6's time limits.
DEFAULT_LADDER = Ladder(
    (
        Level(1, "automatic recovery", timedelta(minutes=15)),
        Level(2, "runbook", timedelta(minutes=30)),
        Level(3, "on-call", None, Condition.IF_NOT_ACKNOWLEDGED, repeat=2),
        Level(4, "engineering", None, Condition.IF_NOT_ACKNOWLEDGED, repeat=2),
    )
)


@dataclass(frozen=True, slots=True)
class Fired:
    """A step this escalator claimed and acted on."""

    incident_id: int
    level: int
    loop: int
    at: datetime


Action = Callable[[IncidentView, Level, int], Awaitable[None]]


@dataclass
class Escalator:
    """Ticks the ladder for every open incident; `actions[level]` runs when a level is reached."""

    tracker: Tracker
    ladder: Ladder = DEFAULT_LADDER
    actions: Mapping[int, Action] = field(default_factory=dict)
    clock: Clock = system_clock
    policies: Mapping[Severity, SeverityPolicy] = field(
        default_factory=lambda: dict(DEFAULT_SEVERITY_POLICIES)
    )
    batch: int = 100

    async def tick(self) -> list[Fired]:
        """Advance every due timer once; returns the steps this call fired."""
        now = self.clock.now()
        due = await asyncio.to_thread(self.tracker.due_escalations, now=now, limit=self.batch)
        fired: list[Fired] = []
        for incident in due:
            step = await asyncio.to_thread(self._advance, incident, now)
            if step is None:
                continue
            level, loop = step
            fired.append(Fired(incident.id, level.level, loop, now))
            action = self.actions.get(level.level)
            if action is not None:
                await action(incident, level, loop)
        return fired

    def _advance(self, incident: IncidentView, now: datetime) -> tuple[Level, int] | None:
        """Claim the next step of one incident; None when there is nothing to fire."""
        current = self.ladder.at(incident.escalation_level)
        budget = current.budget_for(incident.severity, self.policies)

        def move(level: Level, loop: int, next_at: datetime, message: str | None = None) -> bool:
            return self.tracker.claim_escalation(
                incident.id,
                expected_level=incident.escalation_level,
                expected_next_at=incident.next_escalation_at,
                expected_loop=incident.escalation_loop,
                level=level.level,
                loop=loop,
                next_at=next_at,
                message=message,
            )

        stay = incident.escalation_loop
        if incident.next_escalation_at is None or not current.condition.holds(incident.status):
            # A new incident arms its first timer; one whose condition no longer holds waits.
            move(current, stay, now + budget)
            return None
        if incident.escalation_loop < current.repeat and incident.escalation_level > 1:
            loop = incident.escalation_loop + 1
            note = f"L{current.level} {current.name}: no answer, notifying again ({loop}/{current.repeat})"
            return (current, loop) if move(current, loop, now + budget, note) else None
        upper = self.ladder.above(current.level)
        if upper is None:  # the top: keep the timer alive, there is nobody further to page
            move(current, stay, now + budget)
            return None
        note = (
            f"L{current.level} {current.name} did not resolve it within {budget}: "
            f"L{upper.level} {upper.name}"
        )
        next_at = now + upper.budget_for(incident.severity, self.policies)
        return (upper, 0) if move(upper, 0, next_at, note) else None

    async def run(self, *, interval: float = 1.0) -> None:
        """Tick forever; a tick that meets an unreachable store is retried at the next interval."""
        while True:
            # A store that is down keeps its timers; they resume when it is back.
            with contextlib.suppress(EnvironmentFault):
                await self.tick()
            await self.clock.asleep(interval)
