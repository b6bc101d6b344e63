"""The recovery engine inside a real `medic up`: rollback, degrade, cascades and flapping."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
from pathlib import Path

from medic.events import RecoveryDeferred, RecoveryExhausted, RecoveryFinished, ServiceReady
from medic.tracker import Tracker

from .harness import PY, free_port, running, toml_str, until, wait_event

# Runs while data/config.json parses; exits 1 at once when it is corrupt.
READS_CONFIG = """
import json, pathlib, sys, time
json.loads(pathlib.Path(sys.argv[1]).read_text())
while True: time.sleep(1)
"""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _app_reading_its_config(tmp_path: Path) -> tuple[Path, str, str]:
    """data/config.json, its good digest, and a `[services.app]` table that dies when it is bad."""
    data = tmp_path / "data"
    data.mkdir()
    config_file = data / "config.json"
    config_file.write_text(json.dumps({"workers": 4}))
    service = f"""
[services.app]
command = [{toml_str(PY)}, "-c", {toml_str(READS_CONFIG)}, {toml_str(str(config_file))}]
start_time = "300ms"
backoff = {{ initial = "50ms", max = "100ms", jitter = 0 }}
crash_loop = {{ max_restarts = 2, within = "30s", cooldown = "60s" }}"""
    return config_file, _digest(config_file), service


def test_a_corrupt_file_is_rolled_back_to_the_last_good_checkpoint(tmp_path: Path) -> None:
    """restart cannot fix a corrupt config → the engine rolls back to the healthy checkpoint."""
    config_file, good, service = _app_reading_its_config(tmp_path)
    config = f"""{service}
recovery = [{{ strategy = "restart", timeout = "10s", settle = "300ms" }},
            {{ strategy = "rollback", timeout = "20s", settle = "500ms" }}]
checkpoint = {{ paths = ["data"] }}
"""

    async def main() -> tuple[RecoveryFinished, Path]:
        async with running(tmp_path, config) as run:
            sub = run.app.bus.subscribe(ServiceReady, RecoveryFinished)
            await wait_event(sub, lambda e: isinstance(e, ServiceReady))
            state = run.app.paths.state_dir
            await until(lambda: (state / "good" / "app" / "manifests").is_dir(), timeout=20)
            await until(lambda: any((state / "good" / "app" / "manifests").iterdir()), timeout=20)
            config_file.write_text("{ not json")  # a bad deploy
            sup = run.app.supervisor
            assert sup is not None
            os.kill(sup.runner("app").child.pid, signal.SIGKILL)  # type: ignore[union-attr]
            done = await wait_event(
                sub,
                lambda e: isinstance(e, RecoveryFinished) and e.strategy == "rollback",
                timeout=40,
            )
            return done, run.store

    done, store = asyncio.run(main())
    assert done.outcome == "success", done.detail
    assert _digest(config_file) == good
    with Tracker(str(store)) as tracker:
        (incident,) = tracker.incidents(service="app").items
        attempts = [(a.action, a.outcome) for a in tracker.recovery_attempts(incident.id)]
    assert attempts[0][0] == "restart"
    assert attempts[0][1] in ("failure", "timeout")
    assert attempts[-1] == ("rollback", "success")


def test_degrading_writes_the_feature_flags_the_service_reads(tmp_path: Path) -> None:
    """A plan that continues without a feature tells the service through MEDIC_DEGRADED_FILE."""
    seen = tmp_path / "seen-env"
    code = (
        "import os, pathlib, sys\n"
        f"pathlib.Path({str(seen)!r}).write_text(os.environ['MEDIC_DEGRADED_FILE'])\n"
        "sys.exit(3)\n"
    )
    config = f"""
[services.search]
command = [{toml_str(PY)}, "-c", {toml_str(code)}]
start_time = "2s"
restart = "never"
recovery = [{{ strategy = "degrade", target = "suggestions", settle = "0s" }}]
"""

    async def main() -> tuple[RecoveryFinished, Path, Path]:
        async with running(tmp_path, config) as run:
            sub = run.app.bus.subscribe(RecoveryFinished)
            done = await wait_event(sub, lambda e: isinstance(e, RecoveryFinished))
            await until(
                lambda: bool(run.tracker().incidents(service="search", status="mitigated").items)
            )
            return done, run.store, run.app.paths.state_dir

    done, store, state = asyncio.run(main())
    assert (done.strategy, done.outcome) == ("degrade", "success")
    flags_path = Path(seen.read_text())
    assert flags_path.parent.parent == state
    flags = json.loads(flags_path.read_text())
    assert flags["features"]["suggestions"]["disabled"] is True
    with Tracker(str(store)) as tracker:
        (incident,) = tracker.incidents(service="search").items
        assert any("degraded" in e.message for e in tracker.timeline(incident.id))


# Listens at once on its first start; takes 3 s to come back after a crash.
DB = """
import pathlib, socket, sys, time
marker = pathlib.Path(sys.argv[2])
if marker.exists(): time.sleep(3)
marker.touch()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
while True: time.sleep(1)
"""


def test_a_dependency_outage_is_one_incident_and_its_dependent_defers(tmp_path: Path) -> None:
    """db down → api's probe fails too, but joins db's incident and runs no plan of its own."""
    port = free_port()
    probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), 0.2)"
    config = f"""
[services.db]
command = [{toml_str(PY)}, "-c", {toml_str(DB)}, "{port}", {toml_str(str(tmp_path / "started"))}]
ready = "probe"

[[services.db.probes]]
type = "tcp"
port = {port}
interval = "100ms"

[services.api]
command = [{toml_str(PY)}, "-c", "import time\\nwhile True: time.sleep(1)"]
start_time = "200ms"
depends_on = ["db"]

[[services.api.probes]]
type = "command"
command = [{toml_str(PY)}, "-c", {toml_str(probe)}]
interval = "200ms"
timeout = "1s"
failures = 2
"""

    async def main() -> tuple[RecoveryDeferred, Path]:
        async with running(tmp_path, config) as run:
            sup = run.app.supervisor
            assert sup is not None
            sub = run.app.bus.subscribe(RecoveryDeferred)
            await sup.wait_running(timeout=10)
            await until(lambda: run.app.monitor is not None and all(
                p.state == "healthy" for p in run.app.monitor.status("api")
            ))  # fmt: skip
            os.kill(sup.runner("db").child.pid, signal.SIGKILL)  # type: ignore[union-attr]
            deferred = await wait_event(sub, lambda e: isinstance(e, RecoveryDeferred))
            await until(lambda: run.app.recorder is not None and run.app.recorder.recorded >= 8)
            await until(
                lambda: bool(run.tracker().incidents(service="db", status="resolved").items),
                timeout=20,
            )
            return deferred, run.store

    deferred, store = asyncio.run(main())
    assert (deferred.service, deferred.root) == ("api", "db")
    with Tracker(str(store)) as tracker:
        assert tracker.incidents(service="api").items == []
        (incident,) = tracker.incidents(service="db").items
        messages = [e.message for e in tracker.timeline(incident.id)]
    assert any("api:" in m and "its dependency db is down" in m for m in messages), messages


def test_a_flapping_service_reopens_one_incident_and_its_severity_rises(tmp_path: Path) -> None:
    """Up, down, up, down within the window: one incident, reopened, and more severe each time."""
    code = "import time; time.sleep(0.6); raise SystemExit(1)"
    config = f"""
[services.flappy]
command = [{toml_str(PY)}, "-c", {toml_str(code)}]
start_time = "200ms"
severity = "SEV4"
backoff = {{ initial = "50ms", max = "50ms", jitter = 0, reset_after = "100ms" }}
crash_loop = {{ max_restarts = 100, within = "1s" }}

[recovery]
flap_window = "1m"
flap_raise_after = 1
"""

    async def main() -> Path:
        async with running(tmp_path, config) as run:
            sub = run.app.bus.subscribe(ServiceReady, RecoveryExhausted)
            for _ in range(4):  # three failures after the first start
                await wait_event(sub, lambda e: isinstance(e, ServiceReady), timeout=10)
            await until(lambda: run.app.recorder is not None and run.app.recorder.recorded >= 14)
            return run.store

    store = asyncio.run(main())
    with Tracker(str(store)) as tracker:
        incidents = tracker.incidents(service="flappy").items
        assert len(incidents) == 1
        incident = incidents[0]
        messages = [e.message for e in tracker.timeline(incident.id)]
    assert sum("failed again" in m for m in messages) >= 2
    assert incident.severity.name in ("SEV2", "SEV1")  # SEV4 raised once per reopening


def test_a_corrupt_file_is_restored_from_the_newest_verified_backup(tmp_path: Path) -> None:
    """`restore` puts a backup schedule's files back as its newest verified snapshot has them."""
    config_file, good, service = _app_reading_its_config(tmp_path)
    config = f"""{service}
recovery = [{{ strategy = "restore", target = "data", timeout = "20s", settle = "500ms" }}]

[backups.data]
paths = ["data"]
repo = "backups"
every = "1h"
"""

    async def main() -> tuple[RecoveryFinished, Path]:
        async with running(tmp_path, config) as run:
            sub = run.app.bus.subscribe(RecoveryFinished)
            verified = tmp_path / "backups" / "verified"
            await until(lambda: verified.is_dir() and any(verified.iterdir()), timeout=30)
            config_file.write_text("{ not json")
            sup = run.app.supervisor
            assert sup is not None
            os.kill(sup.runner("app").child.pid, signal.SIGKILL)  # type: ignore[union-attr]
            done = await wait_event(sub, lambda e: e.strategy == "restore", timeout=40)
            return done, run.store

    done, store = asyncio.run(main())
    assert done.outcome == "success", done.detail
    assert "restored backups.data snapshot" in done.detail
    assert _digest(config_file) == good
    with Tracker(str(store)) as tracker:
        (incident,) = tracker.incidents(service="app").items
        assert [(a.action, a.outcome) for a in tracker.recovery_attempts(incident.id)] == [
            ("restore", "success")
        ]
