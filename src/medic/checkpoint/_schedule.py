"""Backup schedules and the RPO they promise, for `medic up` to run.

The RPO a user can count on is the age of the newest backup that was verified,
not of the newest one written: an unverified backup is a hope. Each scheduled
run therefore backs up, re-hashes that snapshot's blobs, prunes to `keep`, and
publishes `RpoBreached` when the newest verified snapshot is older than the
objective (by default twice the interval), or `RpoMet` when it is within it,
so whoever records the breach also learns when it ended.

A backup loop that dies quietly is the worst way for backups to fail, so a run
never raises into the loop: whatever stops it (a medic error, an OSError such
as a repository under a file, a bug) becomes a `BackupFailed` event.
"""

from __future__ import annotations

import asyncio
import logging
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
from medic.events import BackupFailed, RpoBreached, RpoMet

__all__ = [
    "BackupSchedule",
    "check_rpo",
    "newest_verified",
    "rpo",
    "run_schedule_once",
    "run_schedules",
]

log = logging.getLogger("medic.checkpoint")


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


def newest_verified(repo: Store) -> Manifest | None:
    """The newest snapshot whose blobs were re-hashed and found whole: what the RPO counts from."""
    if not repo.exists():
        return None
    for m in reversed(repo.checkpoints()):
        if repo.verified_at(m.id) is not None:
            return m
    return None


def rpo(repo: Store) -> timedelta | None:
    """Age of the newest verified snapshot in `repo`, or None when none is verified."""
    newest = newest_verified(repo)
    return None if newest is None else repo.clock.now() - newest.created_at


def check_rpo(schedule: BackupSchedule, *, clock: Clock, bus: Bus | None) -> float | None:
    """The schedule's RPO in seconds; publishes `RpoBreached` when over the objective, else `RpoMet`.

    A repository that cannot be read promises nothing, so it counts as having no
    verified backup.
    """
    try:
        newest = newest_verified(Store(schedule.repo, clock=clock))
    except (MedicError, OSError) as exc:
        log.warning("backup %s: cannot read %s: %s", schedule.name, schedule.repo, exc)
        newest = None
    age_s = None if newest is None else (clock.now() - newest.created_at).total_seconds()
    snapshot = "" if newest is None else newest.id
    if bus is not None:
        objective, now = schedule.objective_s, clock.now()
        if age_s is None or age_s > objective:
            bus.publish(RpoBreached(schedule.name, schedule.repo, age_s, objective, now, snapshot))
        else:
            bus.publish(RpoMet(schedule.name, schedule.repo, age_s, objective, now, snapshot))
    return age_s


def _failed(schedule: BackupSchedule, clock: Clock, bus: Bus | None, error: str) -> None:
    log.info("backup %s failed: %s", schedule.name, error)
    if bus is not None:
        bus.publish(BackupFailed(schedule.repo, error, clock.now(), schedule.name))


def run_schedule_once(
    schedule: BackupSchedule, *, clock: Clock, bus: Bus | None = None
) -> Manifest | None:
    """Back up, verify that snapshot, prune to `keep`; failures become `BackupFailed` events.

    A snapshot that fails verification is not pruned against: counting it toward
    `keep` could delete the older snapshots that are still whole.
    """
    repo = Store(schedule.repo, clock=clock, bus=bus)
    try:
        m = create_backup(
            repo, schedule.paths, dbs=schedule.dbs, name=schedule.name, schedule=schedule.name
        )
    except MedicError as exc:
        log.info("backup %s failed: %s", schedule.name, exc)
        return None  # create_backup published BackupFailed already
    except OSError as exc:
        _failed(schedule, clock, bus, f"backup into {schedule.repo} stopped: {exc}")
        return None
    try:
        _, problems, _ = verify_backups(repo, m.id)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            _failed(
                schedule, clock, bus, f"snapshot {m.id} failed verification: {problems[0]}{more}"
            )
            return None
        prune(repo, keep_last=schedule.keep)
    except (MedicError, OSError) as exc:
        _failed(schedule, clock, bus, str(exc))
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
        try:
            await asyncio.to_thread(run_schedule_once, schedule, clock=clock, bus=bus)
        except Exception as exc:  # a bug must not end every later backup
            log.exception("backup %s: unexpected error", schedule.name)
            _failed(schedule, clock, bus, f"{type(exc).__name__}: {exc}")
        try:
            await asyncio.to_thread(check_rpo, schedule, clock=clock, bus=bus)
        except Exception:
            log.exception("backup %s: the RPO check failed", schedule.name)
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
