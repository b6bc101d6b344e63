"""`medic up` runs `[backups.NAME]` schedules, shows their RPO, records breaches, finishes rollbacks.

Everything runs through the real CLI in real processes: `medic up --detach`,
`medic status --json`, `medic checkpoint create`, a `medic rollback` killed with
SIGKILL, and the tracker's SQLite file read back by the test.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from medic.checkpoint import Store
from medic.tracker import IncidentView, Tracker

from .harness import PY, SLEEPER, toml_str

T = TypeVar("T")

SERVICE = f"""
[services.app]
command = [{toml_str(PY)}, "-c", {toml_str(SLEEPER)}]
start_time = "100ms"
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MEDIC_CHECKPOINTS", None)
    env.pop("MEDIC_STORE", None)
    return env


def medic(base: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "medic", "-c", str(base / "medic.toml"), *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, check=check, cwd=base, env=_env()
    )


@contextmanager
def medic_up(base: Path) -> Iterator[None]:
    """`medic up --detach` for the block's duration, then `medic down`."""
    started = medic(base, "up", "--detach", check=False)
    assert started.returncode == 0, started.stderr + (base / ".medic" / "medic.out").read_text()
    try:
        yield
    finally:
        medic(base, "down", check=False)


def eventually(probe: Callable[[], T | None], *, timeout: float = 30, what: str = "") -> T:
    """Poll `probe` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or probe}")
        time.sleep(0.1)


def backup_status(base: Path) -> dict[str, Any]:
    [schedule] = json.loads(medic(base, "status", "--json").stdout)["backups"]
    return dict(schedule)


def verified_after(repo: Store, moment: datetime) -> bool:
    """Whether a snapshot started after `moment` is in the repo and verified."""
    if not repo.exists():
        return False
    return any(m.created_at > moment and repo.verified_at(m.id) for m in repo.checkpoints())


def make_tree(root: Path, *, files: int) -> Path:
    for i in range(files):
        folder = root / f"d{i % 6}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}.txt").write_text(f"line {i}\n" * (50 + i % 200))
    return root


def mutate(root: Path, *, seed: int) -> None:
    """Same-size edits of half the files, a few deletions and additions."""
    rng = random.Random(seed)
    files = sorted(p for p in root.rglob("*.txt"))
    for p in files[::2]:
        data = bytearray(p.read_bytes())
        data[rng.randrange(len(data))] ^= 0x01
        p.write_bytes(bytes(data))
    for p in rng.sample(files[1::2], 20):
        p.unlink()
    for i in range(20):
        (root / "added").mkdir(exist_ok=True)
        (root / "added" / f"n{seed}-{i}.txt").write_text("new\n")


def tree_state(root: Path) -> dict[str, str]:
    """Every path below `root` with its content hash ("dir" for directories)."""
    return {
        str(p.relative_to(root)): "dir"
        if p.is_dir()
        else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
    }


SEES_TREE = f"""
import hashlib, json, os, sys, time
from pathlib import Path
root = Path(sys.argv[1])
seen = {{
    str(p.relative_to(root)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    for p in root.rglob("*")
}}
Path(sys.argv[2] + ".tmp").write_text(json.dumps(seen))
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
{SLEEPER}
"""


def incidents(base: Path, service: str) -> list[IncidentView]:
    with Tracker(str(base / ".medic" / "medic.db")) as tracker:
        return list(tracker.incidents(service=service).items)


def test_a_schedule_makes_verified_backups_prunes_to_keep_and_shows_its_rpo(
    tmp_path: Path,
) -> None:
    """Every second a verified snapshot lands in the repo, at most `keep` stay, status shows the RPO."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("v0\n")
    (tmp_path / "medic.toml").write_text(
        SERVICE + '\n[backups.data]\npaths = ["data"]\nrepo = "repo"\nevery = "1s"\nkeep = 2\n'
    )
    assert "1 backup schedule" in medic(tmp_path, "check").stdout
    repo = Store(tmp_path / "repo")
    with medic_up(tmp_path):
        for version in range(1, 4):  # each edit must reach a verified snapshot
            edited = datetime.now(UTC)
            (tmp_path / "data" / "notes.txt").write_text(f"v{version}\n")
            eventually(partial(verified_after, repo, edited), what=f"a backup of edit {version}")
        status = backup_status(tmp_path)
        text = medic(tmp_path, "status").stdout
    assert status["name"] == "data"
    assert status["repo"] == str(tmp_path / "repo")
    assert status["keep"] == 2
    assert status["every_s"] == 1.0
    assert status["objective_s"] == 2.0
    assert status["last_run"]["ok"] is True
    assert status["last_verified"]["snapshot"]
    assert 0 <= status["rpo_s"] <= status["objective_s"]
    assert status["breached"] is False
    assert "data" in text
    assert "objective" in text
    snapshots = repo.checkpoints()
    assert len(snapshots) == 2  # pruned to keep
    assert all(repo.verified_at(m.id) is not None for m in snapshots)
    assert status["last_verified"]["snapshot"] <= snapshots[-1].id  # ids sort by time
    # the newest snapshot holds the last edit, and it restores
    medic(tmp_path, "restore", "latest", "--repo", "repo", "--target", "restored")
    assert (tmp_path / "restored" / "notes.txt").read_text() == "v3\n"
    assert medic(tmp_path, "backup", "verify", "--repo", "repo").returncode == 0


def test_a_config_with_only_backups_runs_them_without_any_service(tmp_path: Path) -> None:
    """medic as a backup scheduler alone: no [services] table, and the schedule still runs."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("only backups\n")
    (tmp_path / "medic.toml").write_text(
        '[backups.data]\npaths = ["data"]\nrepo = "repo"\nevery = "1s"\n'
    )
    assert (
        "ok (0 services, 0 probes, 0 groups); 1 backup schedule" in medic(tmp_path, "check").stdout
    )
    repo = Store(tmp_path / "repo")
    started = datetime.now(UTC)
    with medic_up(tmp_path):
        eventually(partial(verified_after, repo, started), what="a verified backup")
        status = json.loads(medic(tmp_path, "status", "--json").stdout)
        text = medic(tmp_path, "status").stdout
    assert status["services"] == []
    assert status["backups"][0]["last_run"]["ok"] is True
    assert "service" not in text.splitlines()[0]  # no empty service table
    assert "objective" in text
    medic(tmp_path, "restore", "latest", "--repo", "repo", "--target", "restored")
    assert (tmp_path / "restored" / "notes.txt").read_text() == "only backups\n"


def test_a_breached_rpo_opens_an_incident_and_a_good_run_resolves_it(tmp_path: Path) -> None:
    """A repo under a regular file fails every run → incident `backup:NAME`; fixing it resolves."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a\n")
    (tmp_path / "blocker").write_text("a file where the repo's folder should be")
    (tmp_path / "medic.toml").write_text(
        SERVICE + '\n[backups.nightly]\npaths = ["data"]\nrepo = "blocker/repo"\nevery = "1s"\n'
    )
    with medic_up(tmp_path):
        [incident] = eventually(lambda: incidents(tmp_path, "backups.nightly"), what="incident")
        breached = backup_status(tmp_path)
        assert breached["breached"] is True
        assert breached["rpo_s"] is None
        assert breached["last_verified"] is None
        assert breached["last_run"]["ok"] is False
        assert "Not a directory" in breached["last_run"]["error"]
        assert "BREACHED" in medic(tmp_path, "status").stdout
        assert incident.status == "triggered"
        assert incident.dedup_key == "backup:nightly"
        assert incident.severity == 3
        assert "no verified backup" in incident.title
        # more failed runs are more signals on the same incident, not more incidents
        eventually(
            lambda: [i for i in incidents(tmp_path, "backups.nightly") if i.signal_count >= 3],
            what="failures added to the incident",
        )
        (tmp_path / "blocker").unlink()
        (tmp_path / "blocker").mkdir()
        resolved = eventually(
            lambda: [i for i in incidents(tmp_path, "backups.nightly") if i.status == "resolved"],
            what="the incident to resolve",
        )
        healthy = backup_status(tmp_path)
    assert len(resolved) == 1
    assert len(incidents(tmp_path, "backups.nightly")) == 1
    assert resolved[0].resolution_kind == "auto_recovery"
    assert healthy["breached"] is False
    assert healthy["last_run"]["ok"] is True
    with Tracker(str(tmp_path / ".medic" / "medic.db")) as tracker:
        messages = [e.message for e in tracker.events(incident_id=resolved[0].id, limit=1000)]
        timeline = [e.message for e in tracker.timeline(resolved[0].id)]
    assert any("backup failed" in m and "Not a directory" in m for m in messages)
    assert any("within the 2s objective" in m for m in timeline)


def test_an_rpo_over_the_objective_is_breached_even_when_runs_succeed(tmp_path: Path) -> None:
    """A verified backup older than `rpo` is a breach: the incident names its age, at its severity."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a\n")
    (tmp_path / "medic.toml").write_text(
        SERVICE + '\n[backups.slow]\npaths = ["data"]\nrepo = "repo"\nevery = "1s"\nrpo = "1s"\n'
        'severity = "SEV2"\n'
    )
    medic(tmp_path, "backup", "create", "data", "--repo", "repo")
    medic(tmp_path, "backup", "verify", "--repo", "repo")
    time.sleep(1.5)  # the verified snapshot is now older than the objective
    # the data folder disappears: runs fail, and the old snapshot ages past the objective
    shutil.move(tmp_path / "data", tmp_path / "away")
    with medic_up(tmp_path):
        [incident] = eventually(lambda: incidents(tmp_path, "backups.slow"), what="incident")
        status = backup_status(tmp_path)
    assert incident.dedup_key == "backup:slow"
    assert incident.severity == 2  # the schedule's own severity, not the default SEV3
    assert "newest verified backup is" in incident.title
    assert "over the 1s objective" in incident.title
    assert status["breached"] is True
    assert status["last_verified"] is not None
    assert status["rpo_s"] > 1
    # impact began when the objective ran out, before medic was even started
    assert incident.impact_started_at < incident.detected_at


def test_medic_up_finishes_an_interrupted_rollback_before_services_start(tmp_path: Path) -> None:
    """kill -9 a `medic rollback` after its journal is written; `medic up` ends the tree at the checkpoint."""
    tree = make_tree(tmp_path / "tree", files=600)
    marker = tmp_path / "seen.json"
    (tmp_path / "service.py").write_text(SEES_TREE)
    (tmp_path / "medic.toml").write_text(
        f"""
[services.app]
command = [{toml_str(PY)}, "service.py", "tree", "seen.json"]
start_time = "100ms"
"""
    )
    want = tree_state(tree)
    medic(tmp_path, "checkpoint", "create", "tree", "--name", "good")
    store = Store(tmp_path / ".medic" / "checkpoints")
    for attempt in range(20):
        mutate(tree, seed=attempt)
        child = subprocess.Popen(
            [sys.executable, "-m", "medic", "-c", str(tmp_path / "medic.toml"), "rollback", "good"],
            cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        while child.poll() is None and not store.journal.exists():
            time.sleep(0.0005)
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
        child.wait(30)
        if store.pending_rollback() is not None:
            break
    else:
        raise AssertionError("no kill landed between the journal and the end of the rollback")
    assert tree_state(tree) != want  # torn: part rolled back, part not
    with medic_up(tmp_path):
        assert store.pending_rollback() is None
        assert tree_state(tree) == want
        eventually(marker.exists, what="the service to start")
        [incident] = eventually(lambda: incidents(tmp_path, "medic"), what="incident")
    assert store.pending_rollback() is None
    assert tree_state(tree) == want
    # the service started after the rollback ended: at its start the tree was the checkpoint
    assert json.loads(marker.read_text()) == want
    assert incident.status == "resolved"
    assert incident.dedup_key.startswith("rollback:")
    assert "was interrupted; medic finished it at start" in incident.title
    with Tracker(str(tmp_path / ".medic" / "medic.db")) as tracker:
        [attempt_view] = tracker.recovery_attempts(incident.id)
    assert attempt_view.action == "rollback-resume"
    assert attempt_view.outcome == "success"


def test_medic_up_refuses_to_start_services_when_the_rollback_cannot_finish(
    tmp_path: Path,
) -> None:
    """A pending rollback whose checkpoint is gone stops `medic up` with a message saying what to do."""
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "a.txt").write_text("a\n")
    marker = tmp_path / "started.txt"
    (tmp_path / "medic.toml").write_text(
        f"""
[services.app]
command = [{toml_str(PY)}, "-c", {toml_str(f"open({str(marker)!r}, 'w').write('x')")}]
"""
    )
    medic(tmp_path, "checkpoint", "create", "tree", "--name", "good")
    store = Store(tmp_path / ".medic" / "checkpoints")
    [m] = store.checkpoints()
    store.journal.write_text(json.dumps({"checkpoint": m.id}))  # as a killed rollback leaves it
    assert store.pending_rollback() == m.id
    (store.manifests / f"{m.id}.json").unlink()
    started = medic(tmp_path, "up", check=False)
    assert started.returncode != 0
    assert "could not be finished" in started.stderr
    assert "medic rollback --resume" in started.stderr
    assert not marker.exists()
    [incident] = incidents(tmp_path, "medic")
    assert incident.status == "triggered"
    assert incident.dedup_key == f"rollback:{m.id}"
    assert incident.severity == 2
    assert "could not be finished" in incident.title


def test_a_reload_swaps_the_schedules(tmp_path: Path) -> None:
    """After `reload` with a changed [backups] table the old schedule stops and the new one runs."""
    from .harness import running, until

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a\n")
    table = '\n[backups.{name}]\npaths = ["data"]\nrepo = "{name}"\nevery = "1s"\n'

    async def main() -> tuple[dict[str, Any], bool]:
        async with running(tmp_path, SERVICE + table.format(name="old")) as run:
            old = Store(tmp_path / "old")
            await until(lambda: old.exists() and bool(old.checkpoints()), timeout=30)
            (tmp_path / "medic.toml").write_text(SERVICE + table.format(name="new"))
            answer = await run.call(cmd="reload")
            assert answer["backups_changed"] is True
            new = Store(tmp_path / "new")
            await until(lambda: new.exists() and len(new.checkpoints()) >= 2, timeout=30)
            settled = old.checkpoints()[-1].id
            await asyncio.sleep(1.5)  # the old schedule would have run again by now
            status = await run.call(cmd="status")
            return status, old.checkpoints()[-1].id != settled

    status, old_ran = asyncio.run(main())
    assert [b["name"] for b in status["backups"]] == ["new"]
    assert status["backups"][0]["breached"] is False
    assert not old_ran
