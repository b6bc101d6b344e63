"""The engine's hands inside `medic up`: its actions over the supervisor, the probes and checkpoints.

`AppActions` is the `ServiceActions` the recovery engine drives. Verification
asks the supervisor and the monitor, never the store: a service counts as
recovered when it is ready, every probe passes, and that holds for the step's
`settle` time (a crash-looping service is briefly ready between crashes).

Degraded features are written to a small JSON file per service, named to the
child in `MEDIC_DEGRADED_FILE`, so the service can read which features to turn
off; they are turned back on when its incident resolves.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from medic.checkpoint import Manifest, Store, newest_verified, prune, rollback
from medic.clock import Clock
from medic.config import Plan, ServiceCheckpoint
from medic.errors import MedicError, NotFound
from medic.health import HealthMonitor
from medic.recovery import ActionUnavailable, MedicActions, MedicActionSet, Verdict
from medic.supervisor import ProcessState, Supervisor

__all__ = ["AppActions", "GoodCheckpoints", "IncidentIndex", "degraded_file", "good_store"]

log = logging.getLogger("medic.app")
_POLL = 0.05


def degraded_file(state_dir: Path, service: str) -> Path:
    return state_dir / "degraded" / f"{service}.json"


class IncidentIndex:
    """Which incident each service's current outage is, as the recorder learns it.

    The recorder writes on its own thread and calls `set` through the loop; the
    engine awaits `wait` for the id so it can record its attempts. Entries go
    when the incident resolves, so a later failure never reuses a stale id; a
    waiter that was already waiting still gets the id that was set meanwhile,
    even when the incident resolved before the waiter woke.
    """

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._last: dict[str, int] = {}
        self._generation: dict[str, int] = {}
        self._changed = asyncio.Event()

    def set(self, service: str, incident_id: int | None) -> None:
        if incident_id is None:
            self._ids.pop(service, None)
        else:
            self._ids[service] = self._last[service] = incident_id
            self._generation[service] = self._generation.get(service, 0) + 1
        self._changed.set()
        self._changed = asyncio.Event()

    def get(self, service: str) -> int | None:
        return self._ids.get(service)

    async def wait(self, service: str, *, timeout: float) -> int | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = self._generation.get(service, 0)
        while True:
            found = self._ids.get(service)
            if found is None and self._generation.get(service, 0) > seen:
                found = self._last.get(service)
            if found is not None:
                return found
            left = deadline - loop.time()
            if left <= 0:
                return None
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return None


class AppActions:
    """Restart, fail over, degrade, roll back and verify services of one `medic up`."""

    def __init__(
        self,
        *,
        supervisor: Supervisor,
        monitor: HealthMonitor,
        plan: Plan,
        state_dir: Path,
        clock: Clock,
    ) -> None:
        self.sup, self.monitor, self.plan = supervisor, monitor, plan
        self.state_dir, self._clock = state_dir, clock
        self._killed: dict[str, int] = {}  # service → pid a restart step killed
        self._deps = {spec.name: tuple(spec.depends_on) for spec in plan.services}

    def configure(self, plan: Plan) -> None:
        self.plan = plan
        self._deps = {spec.name: tuple(spec.depends_on) for spec in plan.services}

    # -- ServiceActions ----------------------------------------------------------------

    async def restart(self, service: str) -> str:
        runner = self.sup.runner(service)
        state = runner.state
        if state is ProcessState.FATAL:
            raise _Failed(f"{service} is in a crash loop; restarting again now would fail again")
        if state in (ProcessState.BACKOFF, ProcessState.STARTING):
            return f"the supervisor is restarting {service} ({state})"
        child = runner.child
        if state is ProcessState.RUNNING and child is not None and child.alive:
            self._killed[service] = child.pid
            self.sup.kill(service, "recovery plan: restart")
            return f"killed pid {child.pid} so that {service} restarts"
        await self.sup.start(service)
        return f"started {service} (was {state})"

    async def failover(self, service: str, group: str) -> str:
        found = self.sup.group_of(service)
        if found is None or (group and found.name != group):
            raise ActionUnavailable(
                f"{service} is in no failover group" + (f" {group!r}" if group else "")
            )
        if self.sup.active[found.name] != service:
            return f"{self.sup.active[found.name]} already serves group {found.name}"
        target = await self.sup.failover(found.name, reason=f"recovery plan for {service}")
        if target is None:
            raise _Failed(f"group {found.name}: no healthy standby to fail over to")
        return f"group {found.name}: failed over from {service} to {target}"

    async def degrade(self, service: str, feature: str) -> str:
        path = degraded_file(self.state_dir, service)
        flags = _read_flags(path)
        flags[feature] = {"disabled": True, "since": self._clock.now().isoformat()}
        _write_flags(path, flags)
        return f"feature {feature!r} of {service} disabled ({path.name})"

    def restore_features(self, service: str) -> list[str]:
        """Turn the degraded features of a service back on; returns their names."""
        path = degraded_file(self.state_dir, service)
        flags = _read_flags(path)
        if not flags:
            return []
        _write_flags(path, {})
        return sorted(flags)

    async def rollback(self, service: str) -> str:
        ck = self.plan.recovery.checkpoints.get(service)
        if ck is None:
            raise ActionUnavailable(f"{service} declares no checkpoint to roll back to")
        store = Store(good_store(self.state_dir, service), clock=self._clock)
        good = store.checkpoints() if store.exists() else []
        if not good:
            raise ActionUnavailable(f"{service} has no good checkpoint yet")
        return "rolled back to " + await self._return_to(service, store, good[-1])

    async def restore(self, service: str, backup: str) -> str:
        """Put the files of a backup schedule back as its newest verified snapshot has them."""
        schedules = {b.name: b for b in self.plan.backups}
        if not backup and len(schedules) == 1:
            backup = next(iter(schedules))
        schedule = schedules.get(backup)
        if schedule is None:
            known = ", ".join(sorted(schedules)) or "none"
            raise ActionUnavailable(
                f"restore needs a backup schedule as its target (configured: {known})"
            )
        repo = Store(schedule.repo, clock=self._clock)
        snapshot = await asyncio.to_thread(newest_verified, repo)
        if snapshot is None:
            raise ActionUnavailable(f"backups.{backup} has no verified snapshot to restore")
        return f"restored backups.{backup} snapshot " + await self._return_to(
            service, repo, snapshot
        )

    async def _return_to(self, service: str, store: Store, target: Manifest) -> str:
        """Stop the service, bring its files back to `target` (crash-safe, verified), start it."""
        await self.sup.stop(service, by="recovery")
        try:
            result = await asyncio.to_thread(rollback, store, target.id)
        finally:
            await self.sup.start(service)
        return (
            f"{target.id} of {target.created_at:%Y-%m-%d %H:%M:%S} "
            f"({result.restored} restored, {result.deleted} removed) and restarted"
        )

    async def verify(self, service: str, *, timeout: float, settle: float) -> Verdict:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        watched = self._serving(service)
        well_since: float | None = None
        detail = "not checked"
        while True:
            ok, detail, fatal = self._well(watched)
            now = loop.time()
            if fatal:
                return Verdict(False, detail, {"service": watched})
            if ok:
                well_since = now if well_since is None else well_since
                if now - well_since >= settle:
                    self._killed.pop(watched, None)
                    return Verdict(True, detail, {"service": watched})
            else:
                well_since = None
            if now >= deadline:
                return Verdict(False, f"after {timeout:g}s: {detail}", {"service": watched})
            await asyncio.sleep(min(_POLL, max(0.0, deadline - now)))

    def down_dependency(self, service: str) -> str | None:
        seen: set[str] = set()
        todo = list(self._deps.get(service, ()))
        while todo:
            dep = todo.pop()
            if dep in seen:
                continue
            seen.add(dep)
            ok, _, _ = self._well(dep)
            if not ok:
                return dep
            todo.extend(self._deps.get(dep, ()))
        return None

    def runbook_actions(self) -> MedicActions:
        async def restart(service: str) -> None:
            await self.sup.restart(service)

        async def failover(group: str) -> None:
            await self.sup.failover(group, reason="runbook")

        async def set_degraded(service: str, feature: str, on: bool) -> None:
            if on:
                await self.degrade(service, feature)
            else:
                path = degraded_file(self.state_dir, service)
                flags = _read_flags(path)
                flags.pop(feature, None)
                _write_flags(path, flags)

        return MedicActionSet(
            on_restart=restart, on_failover=failover, on_set_degraded=set_degraded,
            context="medic up",
        )  # fmt: skip

    # -- helpers -------------------------------------------------------------------

    def _serving(self, service: str) -> str:
        """The service that answers for `service`: itself, or its group's active member."""
        group = self.sup.group_of(service)
        return self.sup.active[group.name] if group is not None else service

    def _well(self, service: str) -> tuple[bool, str, bool]:
        """(healthy now, why, hopeless) for one service."""
        try:
            runner = self.sup.runner(service)
        except NotFound:
            return False, f"no service {service}", True
        state, child = runner.state, runner.child
        if state is ProcessState.FATAL:
            return False, f"{service} is in a crash loop (fatal)", True
        if state is not ProcessState.RUNNING or child is None or not child.alive:
            return False, f"{service} is {state}", False
        if self._killed.get(service) == child.pid:
            return False, f"{service} pid {child.pid} is being killed", False
        probes = self.monitor.status(service)
        bad = [p.name for p in probes if p.state != "healthy"]
        if bad:
            return (
                False,
                f"{service} running (pid {child.pid}); probes not passing: {', '.join(bad)}",
                False,
            )
        return (
            True,
            f"{service} running (pid {child.pid})" + (", probes pass" if probes else ""),
            False,
        )


class GoodCheckpoints:
    """Takes a checkpoint of a service's declared files when it is healthy, at most every `every`."""

    def __init__(
        self, settings: Mapping[str, ServiceCheckpoint], *, state_dir: Path, clock: Clock
    ) -> None:
        self.settings, self.state_dir, self._clock = dict(settings), state_dir, clock
        self._last: dict[str, float] = {}
        self._busy: set[str] = set()

    def due(self, service: str) -> bool:
        ck = self.settings.get(service)
        if ck is None or service in self._busy:
            return False
        last = self._last.get(service)
        return last is None or self._clock.monotonic() - last >= ck.every

    async def take(self, service: str) -> str | None:
        ck = self.settings[service]
        self._busy.add(service)
        try:
            store = Store(good_store(self.state_dir, service), clock=self._clock)
            m = await asyncio.to_thread(_checkpoint, store, ck)
            self._last[service] = self._clock.monotonic()
            return m
        except MedicError as exc:
            log.warning("could not checkpoint %s: %s", service, exc)
            self._last[service] = self._clock.monotonic()  # try again after `every`, not at once
            return None
        finally:
            self._busy.discard(service)


def good_store(state_dir: Path, service: str) -> Path:
    """Where the checkpoints of a healthy service are kept (`medic checkpoint list --store-dir`)."""
    return state_dir / "good" / service


def _checkpoint(store: Store, ck: ServiceCheckpoint) -> str:
    existing = [p for p in ck.paths if os.path.exists(p)]
    dbs = [d for d in ck.dbs if os.path.exists(d)]
    m = store.create(existing, dbs=dbs, name=f"good-{ck.service}")
    prune(store, keep_last=ck.keep)
    return m.id


def _read_flags(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    features = data.get("features") if isinstance(data, dict) else None
    return dict(features) if isinstance(features, dict) else {}


def _write_flags(path: Path, flags: Mapping[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"features": dict(flags)}, indent=2))
    tmp.replace(path)


class _Failed(MedicError):
    """A recovery action that was tried and could not work."""
