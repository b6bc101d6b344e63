"""Every failure scenario run by the real app ends as an incident with true times and a timeline."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import timedelta
from pathlib import Path

import pytest

from medic.events import (
    RecoveryFinished,
    ServiceExited,
    ServiceFatal,
    ServiceHealthy,
    ServiceReady,
    ServiceUnhealthy,
)
from medic.tracker import IncidentView, TimelineEntry

from .harness import PY, SERVER, SLEEPER, free_port, running, toml_str, until, wait_event


def _incident(run_store: Path, service: str) -> tuple[IncidentView, list[TimelineEntry]]:
    from medic.tracker import Tracker

    with Tracker(str(run_store)) as tracker:
        page = tracker.incidents(service=service)
        incident = page.items[0]
        return incident, tracker.timeline(incident.id)


def _kinds(timeline: list[TimelineEntry]) -> list[str]:
    return [entry.kind for entry in timeline]


def test_a_killed_service_yields_a_resolved_incident_with_exit_and_ready_times(
    tmp_path: Path,
) -> None:
    """kill -9 → incident opened at the exit, mitigated and resolved when the new child is ready."""
    config = f"""
[services.api]
command = [{toml_str(PY)}, "-c", {toml_str(SLEEPER)}]
start_time = "200ms"
"""

    async def main() -> tuple[ServiceExited, ServiceReady, Path]:
        async with running(tmp_path, config) as run:
            sub = run.app.bus.subscribe(ServiceExited, ServiceReady, RecoveryFinished)
            await wait_event(sub, lambda e: isinstance(e, ServiceReady))
            pid = run.app.supervisor.runner("api").child.pid  # type: ignore[union-attr]
            os.kill(pid, signal.SIGKILL)
            exited = await wait_event(sub, lambda e: isinstance(e, ServiceExited))
            ready = await wait_event(sub, lambda e: isinstance(e, ServiceReady))
            # the engine's restart step counts once the service stayed up for its settle time
            done = await wait_event(sub, lambda e: isinstance(e, RecoveryFinished))
            assert (done.strategy, done.outcome) == ("restart", "success")
            await until(lambda: run.app.recorder is not None and run.app.recorder.recorded >= 6)
            return exited, ready, run.store

    exited, ready, store = asyncio.run(main())
    incident, timeline = _incident(store, "api")
    assert incident.status == "resolved"
    assert incident.resolution_kind == "auto_recovery"
    assert incident.dedup_key == "service:api"
    assert abs(incident.impact_started_at - exited.at) < timedelta(milliseconds=1)
    assert abs(incident.detected_at - exited.at) < timedelta(milliseconds=1)
    assert abs(incident.mitigated_at - ready.at) < timedelta(milliseconds=1)  # type: ignore[operator]
    assert abs(incident.resolved_at - ready.at) < timedelta(milliseconds=1)  # type: ignore[operator]
    kinds = _kinds(timeline)
    assert "signal_received" in kinds
    assert "recovery_started" in kinds
    assert "recovery_succeeded" in kinds
    assert any("killed by SIGKILL" in e.message for e in timeline) or "SIGKILL" in incident.title


def test_a_hung_http_service_is_detected_killed_restarted_and_resolved(tmp_path: Path) -> None:
    """SIGSTOP → http probe fails twice → stop signal + SIGCONT → restart → probe passes → resolved."""
    port = free_port()
    config = f"""
[services.web]
command = [{toml_str(PY)}, "-c", {toml_str(SERVER)}, "{port}"]
ready = "probe"
start_timeout = "10s"
hang_grace = "1s"

[[services.web.probes]]
type = "http"
url = "http://127.0.0.1:{port}/"
interval = "200ms"
timeout = "200ms"
failures = 2
"""

    async def main() -> tuple[ServiceUnhealthy, ServiceHealthy, Path, float]:
        async with running(tmp_path, config) as run:
            sub = run.app.bus.subscribe(
                ServiceUnhealthy, ServiceHealthy, ServiceReady, RecoveryFinished
            )
            await wait_event(sub, lambda e: isinstance(e, ServiceReady))
            pid = run.app.supervisor.runner("web").child.pid  # type: ignore[union-attr]
            loop = asyncio.get_running_loop()
            stopped_at = loop.time()
            os.kill(pid, signal.SIGSTOP)
            unhealthy = await wait_event(sub, lambda e: isinstance(e, ServiceUnhealthy))
            # readiness is by probe: the passing probe comes first and makes the start count
            healthy = await wait_event(sub, lambda e: isinstance(e, ServiceHealthy))
            await wait_event(sub, lambda e: isinstance(e, ServiceReady))
            took = loop.time() - stopped_at
            done = await wait_event(sub, lambda e: isinstance(e, RecoveryFinished))
            assert (done.strategy, done.outcome) == ("restart", "success")
            await until(
                lambda: bool(run.tracker().incidents(service="web", status="resolved").items)
            )
            return unhealthy, healthy, run.store, took

    unhealthy, healthy, store, took = asyncio.run(main())
    assert healthy.first_success_at > unhealthy.at
    assert "timed out" in unhealthy.evidence
    assert took < 4.5
    incident, timeline = _incident(store, "web")
    assert incident.status == "resolved"
    assert abs(incident.impact_started_at - unhealthy.first_failure_at) < timedelta(milliseconds=1)
    assert abs(incident.detected_at - unhealthy.at) < timedelta(milliseconds=1)
    assert incident.detected_at > incident.impact_started_at
    assert incident.mitigated_at is not None
    assert incident.resolved_at is not None
    assert incident.resolved_at >= incident.mitigated_at
    messages = " | ".join(e.message for e in timeline)
    assert "SIGCONT" in messages
    assert "recovery_succeeded" in _kinds(timeline)


def test_a_crash_loop_escalates_the_incident_and_recovers_after_cooldown(tmp_path: Path) -> None:
    """Crash loop → fatal (escalated on the timeline) → after cooldown it runs and the incident resolves."""
    counter = tmp_path / "n"
    code = (
        "import pathlib, sys, time\n"
        f"p = pathlib.Path({str(counter)!r})\n"
        "n = int(p.read_text()) if p.exists() else 0\n"
        "p.write_text(str(n + 1))\n"
        "if 0 < n < 5: sys.exit(1)\n"
        "while True: time.sleep(1)\n"
    )
    config = f"""
[services.flaky]
command = [{toml_str(PY)}, "-c", {toml_str(code)}]
start_time = "1s"  # well past Python's start-up: each crash comes before the start counts
severity = "SEV3"
backoff = {{ initial = "50ms", factor = 2, max = "200ms", jitter = 0 }}
crash_loop = {{ max_restarts = 2, within = "30s", cooldown = "500ms" }}
"""

    async def main() -> Path:
        async with running(tmp_path, config) as run:
            sub = run.app.bus.subscribe(ServiceFatal, ServiceReady)
            await wait_event(sub, lambda e: isinstance(e, ServiceReady))
            pid = run.app.supervisor.runner("flaky").child.pid  # type: ignore[union-attr]
            os.kill(pid, signal.SIGKILL)
            await wait_event(sub, lambda e: isinstance(e, ServiceFatal))
            await wait_event(sub, lambda e: isinstance(e, ServiceReady), timeout=20)
            await until(
                lambda: bool(run.tracker().incidents(service="flaky", status="resolved").items)
            )
            return run.store

    store = asyncio.run(main())
    incident, timeline = _incident(store, "flaky")
    assert incident.status == "resolved"
    assert "escalated" in _kinds(timeline)
    assert incident.severity.name == "SEV2"  # the crash loop raised it one level


@pytest.mark.slow
def test_a_stale_heartbeat_restarts_the_worker(tmp_path: Path) -> None:
    """A worker that stops touching its heartbeat file is restarted and the incident resolves."""
    beat = tmp_path / "beat"
    code = (
        "import pathlib, sys, time\n"
        f"p = pathlib.Path({str(beat)!r})\n"
        f"first = not pathlib.Path({str(beat) + '.seen'!r}).exists()\n"
        f"pathlib.Path({str(beat) + '.seen'!r}).touch()\n"
        "for i in range(10**6):\n"
        "    if not (first and i > 3): p.touch()\n"
        "    time.sleep(0.1)\n"
    )
    config = f"""
[services.worker]
command = [{toml_str(PY)}, "-c", {toml_str(code)}]
start_time = "100ms"
hang_grace = "500ms"

[[services.worker.probes]]
type = "heartbeat"
path = "{beat}"
max_age = "600ms"
interval = "200ms"
failures = 2
"""

    async def main() -> tuple[ServiceUnhealthy, Path]:
        async with running(tmp_path, config) as run:
            sub = run.app.bus.subscribe(ServiceUnhealthy, ServiceReady, ServiceHealthy)
            unhealthy = await wait_event(sub, lambda e: isinstance(e, ServiceUnhealthy))
            await wait_event(sub, lambda e: isinstance(e, ServiceHealthy))
            await until(
                lambda: bool(run.tracker().incidents(service="worker", status="resolved").items)
            )
            return unhealthy, run.store

    unhealthy, store = asyncio.run(main())
    assert "heartbeat" in unhealthy.evidence
    incident, _ = _incident(store, "worker")
    assert incident.status == "resolved"
    assert incident.impact_started_at == unhealthy.first_failure_at


@pytest.mark.slow
def test_a_child_allocating_past_rss_max_is_restarted(tmp_path: Path) -> None:
    """A leak past rss_max fails the resource probe; the child is killed and a fresh one runs."""
    flag = tmp_path / "leaked"
    code = (
        "import pathlib, time\n"
        f"f = pathlib.Path({str(flag)!r})\n"
        "hog = []\n"
        "if not f.exists():\n"
        "    f.touch(); time.sleep(0.5); hog.append(bytearray(120 * 2**20))\n"
        "while True: time.sleep(1)\n"
    )
    config = f"""
[services.leaky]
command = [{toml_str(PY)}, "-c", {toml_str(code)}]
start_time = "100ms"

[[services.leaky.probes]]
type = "resource"
rss_max = "80MB"
interval = "200ms"
failures = 1
"""

    async def main() -> tuple[ServiceUnhealthy, Path]:
        async with running(tmp_path, config) as run:
            sub = run.app.bus.subscribe(ServiceUnhealthy, ServiceHealthy)
            unhealthy = await wait_event(sub, lambda e: isinstance(e, ServiceUnhealthy))
            await wait_event(sub, lambda e: isinstance(e, ServiceHealthy) and e.recovered is False)
            await until(
                lambda: bool(run.tracker().incidents(service="leaky", status="resolved").items)
            )
            return unhealthy, run.store

    unhealthy, store = asyncio.run(main())
    assert unhealthy.kind == "resource"
    incident, timeline = _incident(store, "leaky")
    assert incident.status == "resolved"
    assert "rss" in incident.title or any("rss" in e.message for e in timeline)


def test_a_failover_mitigates_the_primarys_incident(tmp_path: Path) -> None:
    """A fatal primary fails over; its incident records the failover and is mitigated when the secondary is ready."""
    config = f"""
[services.primary]
command = [{toml_str(PY)}, "-c", "raise SystemExit(1)"]
start_time = "100ms"
backoff = {{ initial = "50ms", jitter = 0 }}
crash_loop = {{ max_restarts = 1, within = "30s", cooldown = "30s" }}

[services.secondary]
command = [{toml_str(PY)}, "-c", {toml_str(SLEEPER)}]
start_time = "100ms"

[groups.pair]
services = ["primary", "secondary"]
"""

    async def main() -> tuple[ServiceReady, Path]:
        async with running(tmp_path, config) as run:
            sub = run.app.bus.subscribe(ServiceReady)
            ready = await wait_event(sub, lambda e: e.service == "secondary")
            await until(
                lambda: bool(run.tracker().incidents(service="primary", status="mitigated").items)
            )
            return ready, run.store

    ready, store = asyncio.run(main())
    incident, timeline = _incident(store, "primary")
    assert incident.status == "mitigated"
    assert abs(incident.mitigated_at - ready.at) < timedelta(milliseconds=1)  # type: ignore[operator]
    assert any("failover from primary to secondary" in e.message for e in timeline)
    assert "escalated" in _kinds(timeline)


def test_a_dependency_crash_is_one_incident_and_its_dependent_restarts_without_one(
    tmp_path: Path,
) -> None:
    """db is killed: db gets a resolved incident; api is restarted (rest_for_one) as an action, not an outage."""
    config = f"""
[services.db]
command = [{toml_str(PY)}, "-c", {toml_str(SLEEPER)}]
start_time = "100ms"

[services.api]
command = [{toml_str(PY)}, "-c", {toml_str(SLEEPER)}]
start_time = "100ms"
depends_on = ["db"]
on_dependency_restart = "restart"
"""

    async def main() -> tuple[Path, int, int]:
        async with running(tmp_path, config) as run:
            sup = run.app.supervisor
            assert sup is not None
            await sup.wait_running(timeout=10)
            api_pid = sup.runner("api").child.pid  # type: ignore[union-attr]
            os.kill(sup.runner("db").child.pid, signal.SIGKILL)  # type: ignore[union-attr]
            await until(
                lambda: (
                    sup.runner("api").child is not None and sup.runner("api").child.pid != api_pid
                )
            )  # type: ignore[union-attr]
            await sup.wait_running(timeout=10)
            await until(
                lambda: bool(run.tracker().incidents(service="db", status="resolved").items)
            )
            return run.store, api_pid, sup.runner("api").child.pid  # type: ignore[union-attr]

    store, old, new = asyncio.run(main())
    assert new != old
    from medic.tracker import Tracker

    with Tracker(str(store)) as tracker:
        assert len(tracker.incidents(service="db").items) == 1
        assert tracker.incidents(service="api").items == []
