"""`medic up`: one asyncio process with the supervisor, the probes, the recorder and the control socket.

The app is the only place where the capabilities meet: it subscribes to the bus
and turns health verdicts into supervisor actions (a failed liveness probe kills
the hung child, a passing probe makes a start count, a failover probe switches
the group). Neither capability imports the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import random
import signal
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from medic.alerts import Dispatcher
from medic.app._backups import Backups
from medic.app._control import ControlClient, ControlServer, Send
from medic.app._engine import RecoveryWiring, runbooks_of
from medic.app._paths import RuntimePaths
from medic.app._recorder import Correlation, Recorder
from medic.app._recovery import degraded_file
from medic.bus import Bus, Subscription
from medic.clock import Clock, system_clock
from medic.config import LoadedConfig, Plan, build_plan, load_config
from medic.errors import MedicError, NotFound, UserError
from medic.events import (
    HealthEvent,
    ProcessEvent,
    ServiceExited,
    ServiceHealthy,
    ServiceReady,
    ServiceStarting,
    ServiceStopped,
    ServiceUnhealthy,
    SupervisorUncleanStop,
)
from medic.health import HealthMonitor, ProbeAction
from medic.supervisor import ProcessState, Readiness, Supervisor

__all__ = ["MedicApp"]


class MedicApp:
    """The composition root of `medic up`."""

    def __init__(
        self,
        *,
        config_path: Path,
        store_url: str,
        clock: Clock = system_clock,
        rng: random.Random | None = None,
        echo: Callable[[object], None] | None = None,
    ) -> None:
        self.config_path = config_path
        self.store_url = store_url
        self.paths = RuntimePaths.for_store(store_url, config=config_path)
        self._clock, self._rng, self._echo = clock, rng or random.Random(), echo
        self._stop: asyncio.Event | None = None
        self.started_at: datetime | None = None
        self.bus = Bus()
        self.supervisor: Supervisor | None = None
        self._resuming = True  # answer "starting" until an interrupted rollback is finished
        self.monitor: HealthMonitor | None = None
        self.recorder: Recorder | None = None
        self.recovery: RecoveryWiring | None = None
        self.backups: Backups | None = None
        self.plan: Plan | None = None

    # -- lifecycle ----------------------------------------------------------------

    def request_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def run(self, *, on_ready: Callable[[], None] | None = None) -> None:
        """Run until SIGTERM, SIGINT or `medic down`; then stop everything in reverse order."""
        config = load_config(self.config_path)
        plan = self._build(config)
        self.plan = plan
        self.paths.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.paths.socket_path_ok():
            raise UserError(
                f"{self.paths.socket}: path too long for a Unix socket; use a shorter --store"
            )
        previous = self._previous_run()
        self._stop = asyncio.Event()
        tracker = plan.tracker.open(self.store_url, clock=self._clock)
        probed = {p.service for p in plan.probes}
        loop = asyncio.get_running_loop()
        recorder = Recorder(
            tracker, bus=self.bus, severities=plan.severities, probed=probed,
            correlation=self._correlation(plan), engine_attempts=plan.recovery.enabled,
            on_incident=lambda service, iid: loop.call_soon_threadsafe(
                self._incident_changed, service, iid
            ),
        )  # fmt: skip
        self.recorder = recorder
        recorder.start()
        unlisten = self.bus.listen(self._echo) if self._echo else None
        checkpoints = RuntimePaths.checkpoints_for(self.config_path)
        backups = Backups(plan.backups, checkpoints=checkpoints, bus=self.bus, clock=self._clock)
        self.backups = backups
        self.started_at = self._clock.now()
        sup = Supervisor(
            plan.services, bus=self.bus, clock=self._clock, rng=self._rng,
            groups=plan.groups, runtime_dir=self.paths.run_dir,
        )  # fmt: skip
        self.supervisor = sup
        sup.open()
        self._write_pidfile(sup)
        if previous is not None:
            self.bus.publish(previous)
        monitor = HealthMonitor(plan.probes, bus=self.bus, pid_of=self._pid_of, clock=self._clock)
        self.monitor = monitor
        monitor.open()
        recovery = RecoveryWiring(
            tracker=tracker, plan=plan, runbooks=runbooks_of(config), supervisor=sup,
            monitor=monitor, dispatcher=self._dispatcher(plan), bus=self.bus, clock=self._clock,
            state_dir=self.paths.state_dir,
        )  # fmt: skip
        self.recovery = recovery
        recovery.start()
        wiring = asyncio.create_task(self._wire(self.bus.subscribe(ProcessEvent, HealthEvent)))
        control = ControlServer(self.paths.socket, self._handle)
        await control.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        try:
            await backups.finish_rollback()  # services must not start on a half-rolled-back tree
            self._resuming = False
            backups.start()
            sup.start_all()
            if on_ready is not None:
                on_ready()
            await self._stop.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await control.close()
            await recovery.close()
            await monitor.close()
            await sup.close()
            await backups.close()
            wiring.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await wiring
            await recorder.close()
            tracker.close()
            if unlisten is not None:
                unlisten()
            self.paths.pidfile.unlink(missing_ok=True)

    def _build(self, config: LoadedConfig) -> Plan:
        """The plan, with each service told where its degraded-feature flags are."""
        plan = build_plan(config, log_dir=self.paths.logs)
        services = tuple(
            dataclasses.replace(
                spec,
                env={
                    **spec.env,
                    "MEDIC_DEGRADED_FILE": str(degraded_file(self.paths.state_dir, spec.name)),
                },
            )
            for spec in plan.services
        )
        return dataclasses.replace(plan, services=services)

    @staticmethod
    def _correlation(plan: Plan) -> Correlation:
        r = plan.recovery
        return Correlation(
            {spec.name: tuple(spec.depends_on) for spec in plan.services},
            flap_window=r.flap_window, flap_raise_after=r.flap_raise_after,
            cascade_window=r.cascade_window,
        )  # fmt: skip

    def _dispatcher(self, plan: Plan) -> Dispatcher:
        return plan.alerts.dispatcher(bus=self.bus, clock=self._clock, rng=self._rng)

    def _incident_changed(self, service: str, incident_id: int | None) -> None:
        if self.recovery is not None:
            self.recovery.incident_changed(service, incident_id)

    def _write_pidfile(self, sup: Supervisor) -> None:
        started = self.started_at.isoformat() if self.started_at else None
        data = {
            "pid": os.getpid(),
            "started_at": started,
            "guard": sup.guard.pid if sup.guard else None,
        }
        tmp = self.paths.pidfile.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.paths.pidfile)

    def _previous_run(self) -> SupervisorUncleanStop | None:
        """Refuse to run twice on one store; report a previous medic that died without cleaning up."""
        try:
            data = json.loads(self.paths.pidfile.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            data = {}
        pid = int(data.get("pid") or 0) if isinstance(data, dict) else 0
        if self._answers():
            raise UserError(f"medic is already running for this store (pid {pid})")
        started = None
        with contextlib.suppress(TypeError, ValueError):
            started = datetime.fromisoformat(data.get("started_at"))
        leftovers: list[int] = []
        guard = data.get("guard") if isinstance(data, dict) else None
        if isinstance(guard, int) and psutil.pid_exists(guard):
            leftovers.append(guard)  # the guard is still killing groups; it exits by itself
        return SupervisorUncleanStop(
            service="medic", at=self._clock.now(), previous_pid=pid,
            previous_started_at=started, leftover_pids=tuple(leftovers),
        )  # fmt: skip

    def _answers(self) -> bool:
        """Whether a medic answers on this store's control socket."""
        try:
            ControlClient(self.paths.socket, timeout=2).call({"cmd": "status"})
        except MedicError:
            return False
        return True

    def _pid_of(self, service: str) -> int | None:
        if self.supervisor is None:
            return None
        try:
            child = self.supervisor.runner(service).child
        except NotFound:
            return None
        return child.pid if child is not None and child.alive else None

    # -- the wiring between capabilities --------------------------------------------

    async def _wire(self, events: Subscription) -> None:
        async for event in events:
            sup, monitor = self.supervisor, self.monitor
            if sup is None or monitor is None:
                continue
            try:
                self._react(sup, monitor, event)
            except NotFound:
                continue  # the service was removed by a reload meanwhile

    def _react(self, sup: Supervisor, monitor: HealthMonitor, event: object) -> None:
        recovery = self.recovery
        engine_on = recovery is not None and recovery.enabled
        match event:
            case ServiceStarting():
                monitor.enable(event.service)
            case ServiceExited() | ServiceStopped():
                monitor.disable(event.service)
                if isinstance(event, ServiceExited) and not event.expected and engine_on:
                    assert recovery is not None
                    recovery.failed(event)
            case ServiceReady():
                if recovery is not None and not monitor.status(event.service):
                    recovery.healthy(event.service)
            case ServiceHealthy():
                if (
                    recovery is not None
                    and sup.runner(event.service).state is ProcessState.RUNNING
                    and all(p.state == "healthy" for p in monitor.status(event.service))
                ):
                    recovery.healthy(event.service)
                runner = sup.runner(event.service)
                starting = runner.state is ProcessState.STARTING
                # ready by probe means every probe of the service passes, not just the quickest
                if (
                    starting
                    and runner.spec.readiness is Readiness.PROBE
                    and all(p.state == "healthy" for p in monitor.status(event.service))
                ):
                    sup.mark_ready(event.service, f"probes ({event.probe} last)")
            case ServiceUnhealthy():
                if sup.runner(event.service).state is not ProcessState.RUNNING:
                    return  # a starting service is judged by its start timeout
                if engine_on:
                    assert recovery is not None
                    recovery.failed(event)
                    return
                reason = f"{event.probe} probe failed {event.failures}x: {event.evidence}"
                if event.action == ProbeAction.RESTART:
                    sup.kill(event.service, reason)
                elif event.action == ProbeAction.FAILOVER:
                    group = sup.group_of(event.service)
                    if group is not None and sup.active[group.name] == event.service:
                        asyncio.create_task(sup.failover(group.name, reason=reason))  # noqa: RUF006

    # -- control --------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        sup, monitor = self.supervisor, self.monitor
        services: list[dict[str, Any]] = []
        if sup is not None and monitor is not None:
            for st in sup.status():
                probes = monitor.status(st.name)
                states = {p.state for p in probes}
                health = "-" if not probes else (
                    "unhealthy" if "unhealthy" in states
                    else "healthy" if states == {"healthy"} else "unknown"
                )  # fmt: skip
                last = max((p for p in probes if p.at), key=lambda p: p.at or 0, default=None)
                services.append({
                    "service": st.name, "state": st.state, "pid": st.pid, "uptime": st.uptime,
                    "restarts": st.restarts, "failures": st.failures, "last_exit": st.last_exit,
                    "health": health, "status": st.status_text, "fatal_for": st.fatal_for,
                    "last_probe": None if last is None else {
                        "probe": last.name, "ok": last.ok, "detail": last.detail,
                        "at": last.at.isoformat() if last.at else None,
                    },
                })  # fmt: skip
        return {
            "medic": {
                "pid": os.getpid(), "config": str(self.config_path), "store": self.store_url,
                "started_at": self.started_at.isoformat() if self.started_at else None,
            },
            "services": services,
            "recovery": self.recovery.status() if self.recovery is not None else None,
            "backups": self.backups.status() if self.backups is not None else [],
        }  # fmt: skip

    async def reload(self) -> dict[str, Any]:
        """Apply config changes, restarting only the services whose settings changed."""
        sup, monitor, old = self.supervisor, self.monitor, self.plan
        if sup is None or monitor is None or old is None:
            raise UserError("medic is not running yet")
        config = load_config(self.config_path)
        plan = self._build(config)
        if plan.groups != old.groups:
            raise UserError("failover groups changed; restart medic to apply them")
        added, changed, removed = await sup.apply(plan.services)
        running = {s.name for s in sup.status() if s.state in ("running", "starting")}
        probes_changed = monitor.replace(plan.probes, running=running)
        if self.recorder is not None:
            self.recorder.configure(
                severities=plan.severities, probed={p.service for p in plan.probes},
                correlation=self._correlation(plan),
            )  # fmt: skip
        if self.recovery is not None:
            self.recovery.configure(plan, runbooks_of(config))
        self.plan = plan
        backups = self.backups.replace(plan.backups) if self.backups is not None else False
        return {
            "backups_changed": backups,
            "added": added,
            "changed": changed,
            "removed": removed,
            "probes_changed": probes_changed,
        }

    async def _handle(self, request: dict[str, Any], send: Send) -> None:
        sup = self.supervisor
        command = request.get("cmd")
        try:
            if sup is None or self._resuming:
                raise UserError("medic is starting; try again")
            if command == "status":
                await send({"ok": True, **self.status()})
            elif command in ("start", "stop", "restart"):
                name = str(request.get("service", ""))
                sup.runner(name)
                await {"start": sup.start, "stop": sup.stop, "restart": sup.restart}[command](name)
                await send({"ok": True, "service": name, "state": sup.runner(name).state.value})
            elif command == "logs":
                await self._logs(sup, request, send)
            elif command == "reload":
                await send({"ok": True, **(await self.reload())})
            elif command == "down":
                await send({"ok": True})
                self.request_stop()
            else:
                raise UserError(f"unknown command {command!r}")
        except MedicError as exc:
            await send({"ok": False, "error": str(exc)})

    async def _logs(self, sup: Supervisor, request: dict[str, Any], send: Send) -> None:
        capture = sup.runner(str(request.get("service", ""))).logs
        count = max(0, min(int(request.get("n", 50)), 100_000))
        follower = capture.follow() if request.get("follow") else None
        try:
            await send({"ok": True, "lines": capture.tail(count)})
            while follower is not None:
                line = await follower.queue.get()
                await send({"line": line})
        finally:
            if follower is not None:
                follower.close()
