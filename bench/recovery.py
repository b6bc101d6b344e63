#!/usr/bin/env python3
"""Recovery engine benchmark: from detection to the first recovery action, beside supervisord.

Why: issue 6 sets "from detection to the first recovery action ≤ 50 ms". This
script measures it inside a real `medic up` (the app runs in this process so
the bus's events can be timed), for the two ways a failure is detected:

  exit   SIGKILL the child: detection = the supervisor reaps it (ServiceExited.at);
         first action = the engine starts its plan (RecoveryStarted.at).
  hang   SIGSTOP the child, which serves HTTP: detection = the probe's verdict
         (ServiceUnhealthy.at); first action = the engine's restart step, and the
         kill it sends (ServiceKilling.at).

Each runs twice: on an idle store, and with another process holding the SQLite
store's write lock for 500 ms at a time, to show recovery never waits for the
store. Beside it, the same kill -9 is timed end to end (kill → the replacement
child runs) for medic and for supervisord, whose restart needs no engine but
has no detection step to time either; the ratio compares what a user sees.

Run:  .venv/bin/pip install -e '.[bench]' && .venv/bin/python bench/recovery.py
      (--quick for a smoke run). Writes bench/results/recovery.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import describe, machine, median, percentile, write_results
from medic.app import MedicApp
from medic.events import (
    RecoveryFinished,
    RecoveryStarted,
    ServiceExited,
    ServiceKilling,
    ServiceReady,
    ServiceUnhealthy,
)
from supervisor import Medic, Supervisord, build_child, free_port, kill9

console = Console()
TARGET_MS = 50.0


@contextlib.contextmanager
def store_held(path: Path, *, hold: float = 0.5, gap: float = 0.2) -> Iterator[None]:
    """Another writer that keeps the store's write lock most of the time."""
    stop = threading.Event()

    def hog() -> None:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        while not stop.is_set():
            conn.execute("BEGIN IMMEDIATE")
            stop.wait(hold)
            conn.execute("COMMIT")
            time.sleep(gap)
        conn.close()

    thread = threading.Thread(target=hog, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


async def _wait(sub: Any, cls: type, timeout: float) -> Any:
    async with asyncio.timeout(timeout):
        async for event in sub:
            if isinstance(event, cls):
                return event
    raise RuntimeError("bus closed")


async def engine_trials(
    child: Path, work: Path, mode: str, trials: int, busy: bool, progress: Progress, task: Any
) -> list[dict[str, float]]:
    """Detection → first action, in ms, for `trials` failures of one service."""
    port = free_port()
    argv = [str(child), "http", str(work / f"events-{mode}-{busy}"), str(port)]
    config = work / f"{mode}-{busy}.toml"
    lines = [
        "[services.svc]",
        f"command = {json.dumps(argv)}",
        'start_time = "100ms"',
        'hang_grace = "500ms"',
        'backoff = { initial = "100ms", factor = 1, max = "100ms", jitter = 0, reset_after = "1s" }',
        'crash_loop = { max_restarts = 1000, within = "60s", cooldown = "1s" }',
    ]
    if mode == "hang":
        lines += [
            "[[services.svc.probes]]",
            'type = "http"',
            f'url = "http://127.0.0.1:{port}/"',
            'interval = "200ms"',
            'timeout = "200ms"',
            "failures = 2",
        ]
    config.write_text("\n".join(lines) + "\n")
    store = work / f"{mode}-{busy}" / "medic.db"
    app = MedicApp(config_path=config, store_url=str(store))
    ready = asyncio.Event()
    run = asyncio.create_task(app.run(on_ready=ready.set))
    await asyncio.wait_for(ready.wait(), 30)
    sub = app.bus.subscribe(
        ServiceReady, ServiceExited, ServiceUnhealthy, RecoveryStarted, RecoveryFinished,
        ServiceKilling,
    )  # fmt: skip
    samples: list[dict[str, float]] = []
    hold = store_held(store) if busy else contextlib.nullcontext()
    try:
        await _wait(sub, ServiceReady, 30)
        with hold:
            for _ in range(trials):
                await asyncio.sleep(1.2)  # past the backoff's reset_after
                sup = app.supervisor
                child_proc = sup.runner("svc").child if sup is not None else None
                if child_proc is None:
                    raise RuntimeError("the service is not running")
                pid = child_proc.pid
                os.kill(pid, signal.SIGKILL if mode == "exit" else signal.SIGSTOP)
                detected = await _wait(
                    sub, ServiceExited if mode == "exit" else ServiceUnhealthy, 20
                )
                started = await _wait(sub, RecoveryStarted, 20)
                sample = {"first_action_ms": (started.at - detected.at).total_seconds() * 1000}
                if mode == "hang":
                    killing = await _wait(sub, ServiceKilling, 20)
                    sample["kill_sent_ms"] = (killing.at - detected.at).total_seconds() * 1000
                samples.append(sample)
                await _wait(sub, RecoveryFinished, 90)  # the plan is over: the next can start
                progress.advance(task)
    finally:
        app.request_stop()
        await asyncio.wait_for(run, 60)
    return samples


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "median_ms": median(values),
        "p95_ms": percentile(values, 0.95),
        "max_ms": max(values),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few trials, for a smoke run")
    parser.add_argument("--trials", type=int, default=30)
    args = parser.parse_args()
    trials = 5 if args.quick else args.trials
    info = machine(["supervisor"])
    console.print(describe(info))
    results: dict[str, Any] = {"machine": info, "target_ms": TARGET_MS, "engine": {}}
    with tempfile.TemporaryDirectory(prefix="medic-bench-recovery-") as tmp:
        work = Path(tmp)
        child = build_child(work)
        with Progress(console=console, transient=True) as progress:
            for mode in ("exit", "hang"):
                for busy in (False, True):
                    label = f"{mode}, store {'busy' if busy else 'idle'}"
                    task = progress.add_task(label, total=trials)
                    samples = asyncio.run(
                        engine_trials(child, work, mode, trials, busy, progress, task)
                    )
                    row = {"first_action": summary([s["first_action_ms"] for s in samples])}
                    if mode == "hang":
                        row["kill_sent"] = summary([s["kill_sent_ms"] for s in samples])
                    results["engine"][label] = row
        rounds = 2 if args.quick else 4
        results["kill9_end_to_end"] = kill9([Medic, Supervisord], child, work, trials, rounds)
    report(results)
    path = write_results("recovery", results)
    console.print(f"wrote {path}")


def report(results: dict[str, Any]) -> None:
    table = Table(title="detection → first recovery action (medic up, ms)")
    for col in ("failure, store", "what", "n", "median", "p95", "max", "target", "met"):
        table.add_column(col, justify="right" if col in ("n", "median", "p95", "max") else "left")
    met_all = True
    for label, row in results["engine"].items():
        for what, s in row.items():
            met = s["p95_ms"] <= TARGET_MS
            met_all &= met
            table.add_row(
                label, what, str(s["n"]), f"{s['median_ms']:.2f}", f"{s['p95_ms']:.2f}",
                f"{s['max_ms']:.2f}", f"≤ {TARGET_MS:g} (p95)", "yes" if met else "NO",
            )  # fmt: skip
    console.print(table)
    e2e = results["kill9_end_to_end"]
    table = Table(title="kill -9 → replacement child runs (ms), side by side")
    for col in ("system", "n", "median", "p95", "× medic"):
        table.add_column(col, justify="right" if col != "system" else "left")
    base = e2e.get("medic", {}).get("median_ms")
    for name, s in e2e.items():
        ratio = f"{s['median_ms'] / base:.1f}×" if base and name != "medic" else ""
        table.add_row(name, str(s["n"]), f"{s['median_ms']:.1f}", f"{s['p95_ms']:.1f}", ratio)
    console.print(table)
    results["target_met"] = met_all


if __name__ == "__main__":
    main()
