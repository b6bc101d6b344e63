"""Backup schedules and the RPO they promise, for `medic up` to run.

The RPO a user can count on is the age of the newest backup that was verified,
not of the newest one written: an unverified backup is a hope. Each scheduled
run therefore backs up, re-hashes that snapshot's blobs, prunes to `keep`, and
publishes `RpoBreached` when the newest verified snapshot is older than the
objective (by default twice the interval).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from medic.bus import Bus
from medic.checkpoint._backup import create_backup, verify_backups
from medic.checkpoint._maintain import prune
from medic.checkpoint._manifest import Manifest
from medic.checkpoint._store import Store
from medic.clock import Clock
from medic.errors import InvalidInput, MedicError
from medic.events import BackupFailed, RpoBreached

__all__ = ["BackupSchedule", "check_rpo", "rpo", "run_schedule_once", "run_schedules"]


@dataclass(frozen=True, slots=True)
class BackupSchedule:
    """One `[backups.NAME]` table: what to back up, where, how often, how many to keep."""

    name: str
    paths: tuple[str, ...]
    repo: str
    every_s: float
    keep: int = 7
    dbs: tuple[str, ...] = ()
    rpo_objective_s: float | None = None

    def __post_init__(self) -> None:
        if self.every_s <= 0:
            raise InvalidInput(f"backups.{self.name}.every must be positive")
        if self.keep < 1:
            raise InvalidInput(f"backups.{self.name}.keep must be at least 1")
        if not self.paths and not self.dbs:
            raise InvalidInput(f"backups.{self.name} needs paths or dbs")

    @property
    def objective_s(self) -> float:
        return self.rpo_objective_s if self.rpo_objective_s is not None else 2 * self.every_s


def rpo(repo: Store) -> timedelta | None:
    """Age of the newest verified snapshot in `repo`, or None when none is verified."""
    if not repo.exists():
        return None
    for m in reversed(repo.checkpoints()):
        if repo.verified_at(m.id) is not None:
            return repo.clock.now() - m.created_at
    return None


def check_rpo(schedule: BackupSchedule, *, clock: Clock, bus: Bus | None) -> float | None:
    """The schedule's RPO in seconds; publishes `RpoBreached` when over the objective."""
    age = rpo(Store(schedule.repo, clock=clock))
    age_s = None if age is None else age.total_seconds()
    if bus is not None and (age_s is None or age_s > schedule.objective_s):
        bus.publish(
            RpoBreached(schedule.name, schedule.repo, age_s, schedule.objective_s, clock.now())
        )
    return age_s


def run_schedule_once(
    schedule: BackupSchedule, *, clock: Clock, bus: Bus | None = None
) -> Manifest | None:
    """Back up, verify that snapshot, prune to `keep`; failures become `BackupFailed` events."""
    repo = Store(schedule.repo, clock=clock, bus=bus)
    try:
        m = create_backup(
            repo, schedule.paths, dbs=schedule.dbs, name=schedule.name, schedule=schedule.name
        )
    except MedicError:
        return None  # create_backup published BackupFailed already
    try:
        verify_backups(repo, m.id)
        prune(repo, keep_last=schedule.keep)
    except MedicError as exc:
        if bus is not None:
            bus.publish(BackupFailed(schedule.repo, str(exc), clock.now(), schedule.name))
        return None
    return m


async def run_schedules(
    schedules: Sequence[BackupSchedule],
    *,
    clock: Clock,
    bus: Bus | None = None,
    stop: asyncio.Event | None = None,
    max_runs: int | None = None,
) -> int:
    """Run every schedule at its interval until `stop` is set (or `max_runs` runs); returns runs.

    Each run happens in a worker thread so the event loop stays responsive; the
    first run of each schedule is immediate. A run that overruns its interval
    is not repeated to catch up: the next one is due `every` after it ended.
    """
    if not schedules:
        return 0
    stop = stop or asyncio.Event()
    due = {s.name: clock.monotonic() for s in schedules}
    by_name = {s.name: s for s in schedules}
    runs = 0
    while not stop.is_set() and (max_runs is None or runs < max_runs):
        name = min(due, key=lambda n: due[n])
        delay = due[name] - clock.monotonic()
        if delay > 0 and await _stopped_during(stop, clock, delay):
            break
        schedule = by_name[name]
        await asyncio.to_thread(run_schedule_once, schedule, clock=clock, bus=bus)
        check_rpo(schedule, clock=clock, bus=bus)
        runs += 1
        due[name] = max(due[name] + schedule.every_s, clock.monotonic())
    return runs


async def _stopped_during(stop: asyncio.Event, clock: Clock, seconds: float) -> bool:
    sleeper = asyncio.ensure_future(clock.asleep(seconds))
    waiter = asyncio.ensure_future(stop.wait())
    done, pending = await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return waiter in done
