"""The escalation ladder climbs on time, fires each step once, and stops when answered."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from medic.errors import ConfigError
from medic.events import Action, Signal
from medic.recovery import DEFAULT_LADDER, Escalator, Ladder, Level
from medic.taxonomy import Severity
from medic.testing import FakeClock
from medic.tracker import IncidentView, Tracker


class Pager:
    """Records which level was reached for which incident, like a notifier would."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int]] = []

    async def __call__(self, incident: IncidentView, level: Level, loop: int) -> None:
        self.calls.append((incident.id, level.level, loop))


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Tracker, FakeClock, Pager]:
    clock = FakeClock()
    return Tracker(str(tmp_path / "m.db"), clock=clock), clock, Pager()


def _escalator(tracker: Tracker, clock: FakeClock, pager: Pager) -> Escalator:
    return Escalator(tracker, clock=clock, actions={2: pager, 3: pager, 4: pager})


def tick(esc: Escalator) -> list[tuple[int, int]]:
    return [(f.level, f.loop) for f in asyncio.run(esc.tick())]


def test_an_unresolved_incident_climbs_the_default_ladder_on_time(
    setup: tuple[Tracker, FakeClock, Pager],
) -> None:
    """L1 for 15 min, L2 for 30 min, then on-call paged per the SEV2 target (15 min) 3 times, then L4."""
    tracker, clock, pager = setup
    iid = tracker.record(Signal("api", "down", severity=Severity.SEV2)).incident_id
    esc = _escalator(tracker, clock, pager)
    assert tick(esc) == []  # armed
    assert tracker.incident(iid).next_escalation_at == clock.now() + timedelta(minutes=15)  # type: ignore[arg-type]
    clock.advance(14 * 60)
    assert tick(esc) == []
    clock.advance(60)
    assert tick(esc) == [(2, 0)]
    clock.advance(30 * 60)
    assert tick(esc) == [(3, 0)]
    clock.advance(15 * 60)
    assert tick(esc) == [(3, 1)]
    clock.advance(15 * 60)
    assert tick(esc) == [(3, 2)]
    clock.advance(15 * 60)
    assert tick(esc) == [(4, 0)]
    assert pager.calls == [(iid, 2, 0), (iid, 3, 0), (iid, 3, 1), (iid, 3, 2), (iid, 4, 0)]
    kinds = [e.kind for e in tracker.timeline(iid)]  # type: ignore[arg-type]
    assert kinds.count("escalated") == 5


def test_two_escalators_on_one_store_fire_each_step_once(
    setup: tuple[Tracker, FakeClock, Pager],
) -> None:
    """A second agent (or a restarted medic) sees the same timers but never doubles a step."""
    tracker, clock, pager = setup
    tracker.record(Signal("api", "down"))
    one, two = _escalator(tracker, clock, pager), _escalator(tracker, clock, pager)
    tick(one)
    clock.advance(15 * 60)

    async def both() -> list[object]:
        return list(await asyncio.gather(one.tick(), two.tick()))

    results = asyncio.run(both())
    assert sum(len(r) for r in results) == 1  # type: ignore[arg-type]
    assert len(pager.calls) == 1


def test_timers_survive_a_restart(setup: tuple[Tracker, FakeClock, Pager], tmp_path: Path) -> None:
    """A new Escalator over a reopened store continues the ladder from the stored state."""
    tracker, clock, pager = setup
    iid = tracker.record(Signal("api", "down")).incident_id
    tick(_escalator(tracker, clock, pager))
    tracker.close()
    clock.advance(15 * 60)
    reopened = Tracker(str(tmp_path / "m.db"), clock=clock)
    assert tick(_escalator(reopened, clock, pager)) == [(2, 0)]
    assert reopened.incident(iid).escalation_level == 2  # type: ignore[arg-type]


def test_an_acknowledgement_stops_paging(setup: tuple[Tracker, FakeClock, Pager]) -> None:
    """Once someone acknowledges at L3, no further notice is sent."""
    tracker, clock, pager = setup
    iid = tracker.record(Signal("api", "down", severity=Severity.SEV1)).incident_id
    esc = _escalator(tracker, clock, pager)
    tick(esc)
    clock.advance(15 * 60)
    tick(esc)
    clock.advance(30 * 60)
    assert tick(esc) == [(3, 0)]
    tracker.acknowledge(iid, actor="ana")  # type: ignore[arg-type]
    for _ in range(5):
        clock.advance(5 * 60)
        assert tick(esc) == []
    assert [c[1] for c in pager.calls] == [2, 3]


def test_mitigation_and_resolution_stop_the_climb(setup: tuple[Tracker, FakeClock, Pager]) -> None:
    """A mitigated incident waits; a resolved one is no longer due at all."""
    tracker, clock, pager = setup
    tracker.record(Signal("api", "down", dedup_key="k"))
    esc = _escalator(tracker, clock, pager)
    tick(esc)
    tracker.record(Signal("api", "", dedup_key="k", action=Action.MITIGATE))
    clock.advance(60 * 60)
    assert tick(esc) == []
    tracker.record(Signal("api", "", dedup_key="k", action=Action.RESOLVE))
    assert tracker.due_escalations(now=clock.now() + timedelta(days=1)) == []
    assert pager.calls == []


def test_ladders_are_validated() -> None:
    """Levels must be L1.. in order with positive budgets."""
    with pytest.raises(ConfigError, match="L1, L2"):
        Ladder((Level(2, "x", timedelta(minutes=1)),))
    with pytest.raises(ConfigError, match="budget"):
        Ladder((Level(1, "x", timedelta(0)),))
    assert [lv.level for lv in DEFAULT_LADDER.levels] == [1, 2, 3, 4]
