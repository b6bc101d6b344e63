"""Backup schedules run on an injected clock; the RPO is the age of the newest verified backup."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from medic.bus import Bus
from medic.checkpoint import BackupSchedule, Store, check_rpo, create_backup, rpo, run_schedules
from medic.errors import InvalidInput
from medic.events import BackupCreated, BackupFailed, BackupVerified, RpoBreached, RpoMet
from medic.testing import FakeClock


def test_schedule_validates_its_fields(tmp_path: Path) -> None:
    """Non-positive intervals, keep below one and empty schedules are refused."""
    with pytest.raises(InvalidInput, match="every"):
        BackupSchedule(name="x", paths=("a",), repo="r", every_s=0)
    with pytest.raises(InvalidInput, match="keep"):
        BackupSchedule(name="x", paths=("a",), repo="r", every_s=1, keep=0)
    with pytest.raises(InvalidInput, match="paths"):
        BackupSchedule(name="x", paths=(), repo="r", every_s=1)
    s = BackupSchedule(name="x", paths=("a",), repo="r", every_s=60)
    assert s.objective_s == 120


def test_rpo_counts_only_verified_backups(tree: Path, tmp_path: Path) -> None:
    """An unverified backup gives no RPO; after verification the RPO is its age on the clock."""
    clock = FakeClock()
    repo = Store(tmp_path / "repo", clock=clock)
    assert rpo(repo) is None
    m = create_backup(repo, [tree])
    assert rpo(repo) is None
    with repo.lock():
        repo.mark_verified(m.id, ok=True)
    clock.advance(90)
    assert rpo(repo) == timedelta(seconds=90)


def test_schedules_run_on_time_prune_and_report_rpo(tree: Path, tmp_path: Path) -> None:
    """Each run backs up, verifies and prunes to keep; an overdue RPO publishes RpoBreached."""
    clock = FakeClock()
    bus = Bus()
    sub = bus.subscribe(BackupCreated, BackupVerified, RpoBreached)
    sched = BackupSchedule(
        name="hourly", paths=(str(tree),), repo=str(tmp_path / "repo"), every_s=3600, keep=2
    )
    start = clock.monotonic()
    runs = asyncio.run(run_schedules([sched], clock=clock, bus=bus, max_runs=4))
    assert runs == 4
    assert clock.monotonic() - start == pytest.approx(3 * 3600)
    repo = Store(sched.repo, clock=clock)
    assert len(repo.checkpoints()) == 2
    events = sub.drain()
    assert sum(isinstance(e, BackupCreated) for e in events) == 4
    assert sum(isinstance(e, BackupVerified) for e in events) == 4
    assert not [e for e in events if isinstance(e, RpoBreached)]
    clock.advance(3 * 3600)
    age = check_rpo(sched, clock=clock, bus=bus)
    assert age == pytest.approx(3 * 3600)
    [breach] = sub.drain()
    assert isinstance(breach, RpoBreached)
    assert breach.objective_s == 7200


def test_a_failing_schedule_publishes_backup_failed_and_keeps_going(tmp_path: Path) -> None:
    """A schedule whose path vanished reports BackupFailed and an RPO breach; the loop continues."""
    clock = FakeClock()
    bus = Bus()
    sub = bus.subscribe(BackupFailed, RpoBreached)
    sched = BackupSchedule(
        name="gone", paths=(str(tmp_path / "missing"),), repo=str(tmp_path / "repo"), every_s=60
    )
    assert asyncio.run(run_schedules([sched], clock=clock, bus=bus, max_runs=2)) == 2
    kinds = [type(e).__name__ for e in sub.drain()]
    assert kinds == ["BackupFailed", "RpoBreached"] * 2


def test_stop_event_ends_the_loop_while_it_waits(tree: Path, tmp_path: Path) -> None:
    """Setting stop during the wait between runs ends run_schedules promptly."""

    class SlowClock(FakeClock):
        async def asleep(self, seconds: float) -> None:
            await asyncio.sleep(3600)

    clock = SlowClock()
    sched = BackupSchedule(name="s", paths=(str(tree),), repo=str(tmp_path / "repo"), every_s=60)

    async def main() -> int:
        stop = asyncio.Event()
        task = asyncio.create_task(run_schedules([sched], clock=clock, stop=stop))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if Store(sched.repo).exists() and Store(sched.repo).checkpoints():
                break
        stop.set()
        return await asyncio.wait_for(task, 5)

    assert asyncio.run(main()) == 1


def test_a_repo_that_cannot_be_created_is_a_failed_run_not_a_dead_loop(
    tree: Path, tmp_path: Path
) -> None:
    """A repository under a regular file fails each run with BackupFailed; the loop keeps going."""
    (tmp_path / "blocker").write_text("not a directory")
    clock = FakeClock()
    bus = Bus()
    sub = bus.subscribe(BackupFailed, RpoBreached)
    sched = BackupSchedule(
        name="blocked", paths=(str(tree),), repo=str(tmp_path / "blocker" / "repo"), every_s=60
    )
    assert asyncio.run(run_schedules([sched], clock=clock, bus=bus, max_runs=3)) == 3
    events = sub.drain()
    assert [type(e).__name__ for e in events] == ["BackupFailed", "RpoBreached"] * 3
    assert "Not a directory" in events[0].error
    assert events[0].schedule == "blocked"


def test_a_good_check_publishes_rpo_met_with_the_verified_snapshot(
    tree: Path, tmp_path: Path
) -> None:
    """RpoMet names the newest verified snapshot and its age, so a breach can be closed."""
    clock = FakeClock()
    bus = Bus()
    sub = bus.subscribe(BackupCreated, RpoMet, RpoBreached)
    sched = BackupSchedule(name="s", paths=(str(tree),), repo=str(tmp_path / "repo"), every_s=60)
    assert asyncio.run(run_schedules([sched], clock=clock, bus=bus, max_runs=1)) == 1
    created, met = sub.drain()
    assert isinstance(met, RpoMet)
    assert met.snapshot_id == created.snapshot_id
    assert met.age_s == pytest.approx(0, abs=1)
    assert met.objective_s == 120
    clock.advance(121)
    check_rpo(sched, clock=clock, bus=bus)
    [breach] = sub.drain()
    assert isinstance(breach, RpoBreached)
    assert breach.snapshot_id == created.snapshot_id
    assert breach.age_s == pytest.approx(121, abs=1)


def test_an_unreadable_repo_counts_as_no_verified_backup(tmp_path: Path) -> None:
    """A repository whose manifest is garbage gives no RPO and a breach, never an exception."""
    clock = FakeClock()
    repo = Store(tmp_path / "repo", clock=clock)
    repo.init()
    (repo.manifests / "20260101T000000Z-00000000.json").write_text("{not json")
    bus = Bus()
    sub = bus.subscribe(RpoBreached)
    sched = BackupSchedule(name="s", paths=("x",), repo=str(repo.path), every_s=60)
    assert check_rpo(sched, clock=clock, bus=bus) is None
    assert len(sub.drain()) == 1
