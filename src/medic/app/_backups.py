"""`medic up`'s checkpoint side: finish an interrupted rollback, run the backup schedules.

A rollback killed half-way leaves a tree that is neither the old state nor the
checkpoint; services must not start on it, so `medic up` finishes the rollback
first and refuses to start when it cannot.

What `medic status` shows about each schedule is kept from the events the runs
publish (and one read of each repository at start), never read from the
repository while answering: a repository on a hung mount must not hang
`medic status`. The RPO age is computed at the moment of asking, so a schedule
that stopped running shows its RPO growing past the objective.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from medic.bus import Bus
from medic.checkpoint import (
    BackupSchedule,
    RollbackResult,
    Store,
    newest_verified,
    resume_pending,
    run_schedules,
)
from medic.clock import Clock
from medic.errors import MedicError, UserError
from medic.events import BackupCreated, BackupFailed, RollbackFailed, RpoBreached, RpoMet

__all__ = ["Backups"]

log = logging.getLogger("medic.app")


@dataclass(slots=True)
class _Seen:
    """The last run and the newest verified snapshot of one schedule, as last reported."""

    run_at: datetime | None = None
    run_ok: bool | None = None
    run_snapshot: str = ""
    run_error: str = ""
    verified: str = ""
    verified_created: datetime | None = None


class Backups:
    """Runs `[backups.NAME]` schedules until medic stops, and answers for their RPO."""

    def __init__(
        self, schedules: Sequence[BackupSchedule], *, checkpoints: Path, bus: Bus, clock: Clock
    ) -> None:
        self.checkpoints = checkpoints
        self._bus, self._clock = bus, clock
        self._schedules = tuple(schedules)
        self._seen = {s.name: _Seen() for s in self._schedules}
        self._lock = threading.Lock()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unlisten = bus.listen(self._observe)

    async def finish_rollback(self) -> RollbackResult | None:
        """Complete a rollback that was interrupted (kill -9, power loss) before services start."""
        store = Store(self.checkpoints, clock=self._clock, bus=self._bus)
        try:
            result = await asyncio.to_thread(resume_pending, store)
        except (MedicError, OSError) as exc:
            # the tracker must hear of it even when rollback failed before publishing
            pending = store.pending_rollback() or "unknown"
            self._bus.publish(RollbackFailed(pending, str(store.path), str(exc), self._clock.now()))
            raise UserError(
                f"a rollback in {store.path} was interrupted and could not be finished: {exc}; "
                "services were not started. Fix the cause, run `medic rollback --resume`, "
                "then start medic again"
            ) from exc
        if result is not None:
            log.warning(
                "finished an interrupted rollback to %s: %d restored, %d removed, %.2fs",
                result.checkpoint_id, result.restored, result.deleted, result.duration_s,
            )  # fmt: skip
        return result

    def start(self) -> None:
        if self._schedules:
            self._task = asyncio.create_task(self._run(self._schedules, self._stop, None))

    def replace(self, schedules: Sequence[BackupSchedule]) -> bool:
        """Run new schedules (after a reload); the old loop ends once its current run is done."""
        new = tuple(schedules)
        if new == self._schedules:
            return False
        self._stop.set()
        kept = {(s.name, s.repo) for s in self._schedules}  # same name and repo: same history
        with self._lock:
            self._seen = {
                s.name: self._seen[s.name] if (s.name, s.repo) in kept else _Seen() for s in new
            }
            self._schedules = new
        self._stop = asyncio.Event()
        previous = self._task
        if new:
            self._task = asyncio.create_task(self._run(new, self._stop, previous))
        return True

    async def close(self) -> None:
        """Stop scheduling; a run in progress finishes, so its repository lock is released."""
        self._stop.set()
        if self._task is not None:
            await self._task
        self._unlisten()

    async def _run(
        self,
        schedules: tuple[BackupSchedule, ...],
        stop: asyncio.Event,
        previous: asyncio.Task[None] | None,
    ) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):
                await previous
        try:
            await asyncio.to_thread(self._load, schedules)
            await run_schedules(schedules, clock=self._clock, bus=self._bus, stop=stop)
        except Exception:
            log.exception("the backup schedules stopped")

    def _load(self, schedules: tuple[BackupSchedule, ...]) -> None:
        """What each repository already holds, so the RPO shows before the first run ends."""
        for schedule in schedules:
            try:
                newest = newest_verified(Store(schedule.repo, clock=self._clock))
            except (MedicError, OSError) as exc:
                log.warning("backup %s: cannot read %s: %s", schedule.name, schedule.repo, exc)
                continue
            with self._lock:
                seen = self._seen.get(schedule.name)
                if newest is not None and seen is not None and not seen.verified:
                    seen.verified, seen.verified_created = newest.id, newest.created_at

    def _observe(self, event: object) -> None:
        """Bus listener, called in the publishing thread: cheap updates under a lock."""
        if not isinstance(event, BackupCreated | BackupFailed | RpoBreached | RpoMet):
            return
        with self._lock:
            seen = self._seen.get(event.schedule)
            if seen is None:
                return
            match event:
                case BackupCreated():
                    seen.run_at, seen.run_ok = event.at, True
                    seen.run_snapshot, seen.run_error = event.snapshot_id, ""
                case BackupFailed():
                    seen.run_at, seen.run_ok, seen.run_error = event.at, False, event.error
                case RpoBreached() | RpoMet():
                    seen.verified = event.snapshot_id
                    seen.verified_created = (
                        None
                        if event.age_s is None or not event.snapshot_id
                        else event.at - timedelta(seconds=event.age_s)
                    )

    def status(self) -> list[dict[str, Any]]:
        """Each schedule: last run, newest verified snapshot, RPO age against its objective."""
        now = self._clock.now()
        out: list[dict[str, Any]] = []
        with self._lock:
            for s in self._schedules:
                seen = self._seen[s.name]
                created = seen.verified_created
                age = None if created is None else max(0.0, (now - created).total_seconds())
                out.append({
                    "name": s.name, "repo": s.repo, "paths": list(s.paths), "dbs": list(s.dbs),
                    "every_s": s.every_s, "keep": s.keep,
                    "last_run": None if seen.run_at is None else {
                        "at": seen.run_at.isoformat(), "ok": seen.run_ok,
                        "snapshot": seen.run_snapshot or None, "error": seen.run_error or None,
                    },
                    "last_verified": None if created is None else {
                        "snapshot": seen.verified, "created_at": created.isoformat(),
                    },
                    "rpo_s": age, "objective_s": s.objective_s,
                    "breached": age is None or age > s.objective_s,
                })  # fmt: skip
        return out
