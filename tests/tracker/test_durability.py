"""Several writers at once, and a writer killed at random: nothing lost, nothing doubled."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from medic.tracker import Tracker

CHILD = Path(__file__).with_name("_recorder_child.py")
SRC = Path(__file__).resolve().parents[2] / "src"


def _spawn(store: str, tag: str, count: int, batch: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.Popen(
        [sys.executable, str(CHILD), store, tag, str(count), str(batch)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def _external_ids(store: str, tag: str) -> list[str]:
    with Tracker(store) as tracker, tracker.db.read() as conn:
        return [
            r[0]
            for r in conn.execute(
                sa.text("SELECT external_id FROM events WHERE source = :s"), {"s": tag}
            )
        ]


def test_two_processes_recording_into_one_sqlite_file_lose_and_double_nothing(
    tmp_path: Path, event_links: Callable[[Tracker], None]
) -> None:
    """2 × 50,000 signals at once: all 100,000 present once, one open incident per key."""
    store = str(tmp_path / "medic.db")
    Tracker(store).close()  # migrate first, so both writers start on a ready store
    children = [_spawn(store, tag, 50_000, 1000) for tag in ("p1", "p2")]
    for child in children:
        out, _ = child.communicate(timeout=240)
        assert child.returncode == 0
        assert out.split()[-1] == "49999"
    for tag in ("p1", "p2"):
        ids = _external_ids(store, tag)
        assert len(ids) == 50_000
        assert len(set(ids)) == 50_000
    with Tracker(store) as tracker:
        open_keys = [i.dedup_key for i in tracker.incidents(status="triggered", limit=100).items]
        assert sorted(open_keys) == sorted(
            f"{s}-{t}" for s in ("web", "api", "worker", "db") for t in ("p1", "p2")
        )
        assert sum(i.times_seen for i in tracker.issues(limit=1000).items) == 100_000
        event_links(tracker)


def test_threads_sharing_one_tracker_record_everything(tmp_path: Path) -> None:
    """One Tracker used from 4 threads at once records every signal once."""
    from concurrent.futures import ThreadPoolExecutor

    from medic.events import Signal

    with Tracker(str(tmp_path / "m.db")) as tracker:

        def work(n: int) -> None:
            for i in range(200):
                tracker.record(Signal("api", f"e {i}", external_id=f"t{n}-{i}"))

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(work, range(4)))
        assert tracker.counts()["events"] == 800
        assert tracker.issues().items[0].times_seen == 800


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1000, 1])
def test_kill_9_at_random_moments_loses_nothing_that_was_acknowledged(
    tmp_path: Path, batch: int
) -> None:
    """20 kills mid-run: the store opens cleanly and every returned signal is present."""
    rng = random.Random(20261125 + batch)
    store = str(tmp_path / "medic.db")
    for trial in range(20):
        tag = f"k{trial}"
        child = _spawn(store, tag, 100_000, batch)
        time.sleep(rng.uniform(0.3, 1.8))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=30)
        acknowledged = [int(x) for x in out.split()]
        with sqlite3.connect(store) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        present = set(_external_ids(store, tag))
        if acknowledged:
            missing = [i for i in range(acknowledged[-1] + 1) if f"{tag}-{i}" not in present]
            assert missing == [], f"trial {trial}: {len(missing)} acknowledged signals lost"
        # Whatever was stored beyond the last acknowledgement is whole batches only.
        assert len(present) % batch == 0 or batch == 1
