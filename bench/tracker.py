"""Benchmark: recording signals into the tracker, and reading a big store back.

Measures, in one run and side by side:
- record_many (batches of 1,000) and record (one commit each) into SQLite, with
  grouping, against a raw sqlite3 executemany of the very same event rows into a
  table of the same schema (same indexes, same pragmas): the ratio is medic's
  price for grouping, incidents and idempotency;
- record_many into the local PostgreSQL;
- a store of 100,000 incidents and 1,000,000 events: first page of
  `medic incidents list` and `medic kpis --since 30d`, in process, p50/p99;
- RSS after 100,000 and after 1,000,000 recorded signals.

Run: .venv/bin/python bench/tracker.py [--quick] [--only record]
Targets (issue 2): ≥ 50,000/s batched, ≥ 3,000/s single, ≥ 20,000/s PostgreSQL
batched, list p99 < 50 ms, kpis < 500 ms, RSS growth ≤ 10 %.
"""

from __future__ import annotations

import argparse
import gc
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import sqlalchemy as sa
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import describe, machine, median, percentile, write_results
from medic.events import ExceptionInfo, Frame, Signal
from medic.tracker import Tracker
from medic.tracker._record import _EVENT_INSERT, _event_row

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
console = Console()

SERVICES = ["web", "api-1", "api-2", "api-3", "storage", "worker"]
TEMPLATES = [
    "timeout after {f}s talking to 10.0.{a}.{b}:5432",
    "connection refused by 10.0.{a}.{b}:6379",
    "disk full writing /var/lib/app/wal/{n}.log",
    "request {u} failed with status 503",
    "worker {n} lost heartbeat for {f}s",
    "slow query took {n} ms: SELECT * FROM orders WHERE id = {n}",
]


def stream(
    n: int, rng: random.Random, *, keys: int = 0, start: datetime | None = None
) -> list[Signal]:
    """A realistic mixed stream: messages with volatile parts, exceptions, probe failures."""
    base = start or datetime.now(UTC) - timedelta(days=1)
    frames = (
        Frame("handle", "app.views", "app/views.py", 10, True),
        Frame("get_user", "app.users", "app/users.py", 20, True),
    )
    out = []
    for i in range(n):
        service = SERVICES[i % len(SERVICES)]
        when = base + timedelta(seconds=i * 0.01)
        dedup = f"k{i % keys}" if keys else None
        r = i % 10
        if r == 0:
            exc = ExceptionInfo("KeyError", f"'user-{rng.randrange(10**6)}'", frames)
            out.append(
                Signal(service, "KeyError", exception=exc, occurred_at=when, dedup_key=dedup)
            )
        elif r == 1:
            out.append(
                Signal(
                    service,
                    f"GET /health took {rng.random() * 5:.2f}s",
                    probe="http",
                    reason="timeout",
                    occurred_at=when,
                    dedup_key=dedup,
                )
            )
        else:
            msg = TEMPLATES[r % len(TEMPLATES)].format(
                f=round(rng.random() * 30, 2),
                a=rng.randrange(255),
                b=rng.randrange(255),
                n=rng.randrange(10**6),
                u=uuid.UUID(int=rng.getrandbits(128)),
            )
            out.append(Signal(service, msg, occurred_at=when, external_id=f"e{i}", dedup_key=dedup))
    return out


def rate_batched(url: str, signals: list[Signal], batch: int = 1000) -> float:
    with Tracker(url) as tracker:
        tracker.record_many(signals[:batch])  # warm: first issues and incidents
        t0 = time.perf_counter()
        for i in range(batch, len(signals), batch):
            tracker.record_many(signals[i : i + batch])
        return (len(signals) - batch) / (time.perf_counter() - t0)


def rate_single(url: str, signals: list[Signal]) -> float:
    with Tracker(url) as tracker:
        for s in signals[:100]:
            tracker.record(s)
        t0 = time.perf_counter()
        for s in signals[100:]:
            tracker.record(s)
        return (len(signals) - 100) / (time.perf_counter() - t0)


def rate_raw_sqlite(
    template_db: str, target: str, signals: list[Signal], batch: int = 1000
) -> float:
    """The same event rows through sqlite3.executemany into a table of the same schema.

    Rows and INSERT text are medic's own (`_event_row`, `_EVENT_INSERT`), so the ratio
    prices grouping, incidents and idempotency, not a different way of inserting.
    """
    from medic.tracker._record import _Prepared  # the same row builder medic uses

    src = sqlite3.connect(template_db)
    ddl = [
        r[0]
        for r in src.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name='events' AND sql IS NOT NULL"
        )
    ]
    src.close()
    now = time.time()
    rows = []
    for s in signals:
        p = _Prepared(
            s, s.service, s.source, f"service:{s.service}", 3, now, now, s.message, None,
            s.external_id,
        )  # fmt: skip
        rows.append(_event_row(p, 1, 1, now, 0))
    conn = sqlite3.connect(target, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for stmt in ddl:
        conn.execute(stmt)  # foreign keys stay unenforced here: raw sqlite3's default
    t0 = time.perf_counter()
    for i in range(0, len(rows), batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(_EVENT_INSERT, rows[i : i + batch])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return len(rows) / elapsed


def pg_url_fresh() -> tuple[str, Any] | None:
    try:
        admin = sa.create_engine(PG_URL)
        schema = f"medic_b_{uuid.uuid4().hex[:10]}"
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # the bench reports a missing PostgreSQL instead of failing
        console.print(f"[yellow]PostgreSQL unavailable: {exc}[/]")
        return None

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return f"{PG_URL}?options=-csearch_path%3D{schema}", drop


def big_store(path: str, events: int, incidents: int, progress: Progress) -> dict[str, Any]:
    """Fill a store with `events` signals over `incidents` dedup keys, sampling RSS as it goes.

    RSS moves by several MB between batches (allocator arenas, SQLite's page cache), so
    the comparison uses the median of the samples around 10 % and around 100 %, and the
    stream is generated in small chunks so the benchmark's own objects stay small.
    """
    rng = random.Random(7)
    proc = psutil.Process()
    start = datetime.now(UTC) - timedelta(days=20)
    task = progress.add_task("filling the big store", total=events)
    samples: list[tuple[int, float]] = []
    t0 = time.perf_counter()
    chunk = min(10_000, events // 10)
    with Tracker(path) as tracker:
        for offset in range(0, events, chunk):
            signals = [
                Signal(
                    s.service,
                    s.message,
                    exception=s.exception,
                    probe=s.probe,
                    reason=s.reason,
                    occurred_at=s.occurred_at,
                    detected_at=s.occurred_at,
                    dedup_key=f"k{(offset + j) % incidents}",
                )
                for j, s in enumerate(stream(chunk, rng, start=start + timedelta(seconds=offset)))
            ]
            for i in range(0, chunk, 1000):
                tracker.record_many(signals[i : i + 1000])
            del signals
            gc.collect()
            done = offset + chunk
            progress.update(task, completed=done)
            samples.append((done, proc.memory_info().rss / 2**20))
        counts = tracker.counts()
    tenth = [mb for done, mb in samples if 0.05 * events < done <= 0.15 * events]
    last = [mb for done, mb in samples if done > 0.9 * events]
    out: dict[str, Any] = {
        "after_10pct_mb": median(tenth),
        "after_all_mb": median(last),
        "rss_samples_mb": [round(mb, 1) for _, mb in samples],
        "build_rate_per_s": events / (time.perf_counter() - t0),
    }
    out.update(counts)
    return out


def read_latencies(path: str) -> dict[str, Any]:
    from click.testing import CliRunner

    from medic.cli import cli
    from medic.cli._main import _register

    _register()
    runner = CliRunner()
    with Tracker(path) as tracker:
        query = []
        for _ in range(200):
            t0 = time.perf_counter()
            tracker.incidents(limit=50)
            query.append(time.perf_counter() - t0)
        kpis = []
        for _ in range(10):
            t0 = time.perf_counter()
            tracker.kpis(since=datetime.now(UTC) - timedelta(days=30))
            kpis.append(time.perf_counter() - t0)
    out: dict[str, Any] = {
        "incidents_first_page_query_ms": {
            "p50": percentile(query, 0.5) * 1e3,
            "p99": percentile(query, 0.99) * 1e3,
        },
        "kpis_30d_ms": {"p50": percentile(kpis, 0.5) * 1e3, "max": max(kpis) * 1e3},
    }
    for name, argv, n in (
        ("cli_incidents_list_ms", ["--store", path, "incidents", "list"], 100),
        ("cli_kpis_30d_ms", ["--store", path, "kpis", "--since", "30d"], 10),
    ):
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            result = runner.invoke(cli, argv)
            times.append(time.perf_counter() - t0)
            if result.exit_code != 0:
                times = []
                out[name] = f"command failed: {result.output.strip()[:200]}"
                break
        if times:
            out[name] = {"p50": percentile(times, 0.5) * 1e3, "p99": percentile(times, 0.99) * 1e3}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats and a 10x smaller big store"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--only",
        choices=["record"],
        help="record: only the recording rates, without the big store and its reads",
    )
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    info = machine(["sqlalchemy", "psycopg", "alembic"])
    info["sqlite"] = sqlite3.sqlite_version
    console.print(
        f"[bold]medic tracker benchmark[/] · {describe(info)} · SQLite {sqlite3.sqlite_version}"
    )
    rng = random.Random(42)
    work = Path(tempfile.mkdtemp(prefix="medic-bench-"))
    results: dict[str, Any] = {"machine": info, "repeats": repeats}
    try:
        with Progress(console=console, transient=True) as progress:
            n_batch, n_single = 50_000, 3_000
            task = progress.add_task("recording", total=repeats * 4)
            batched, single, raw, pg = [], [], [], []
            for r in range(repeats):
                signals = stream(n_batch + 1000, rng)
                batched.append(rate_batched(str(work / f"b{r}.db"), signals))
                progress.advance(task)
                raw.append(
                    rate_raw_sqlite(
                        str(work / f"b{r}.db"), str(work / f"raw{r}.db"), signals[1000:]
                    )
                )
                progress.advance(task)
                single.append(rate_single(str(work / f"s{r}.db"), stream(n_single + 100, rng)))
                progress.advance(task)
                fresh = pg_url_fresh()
                if fresh is not None:
                    url, drop = fresh
                    try:
                        pg.append(rate_batched(url, signals[: 20_000 + 1000]))
                    finally:
                        drop()
                progress.advance(task)
            results["record"] = {
                "sqlite_batched_per_s": {"median": median(batched), "runs": batched},
                "sqlite_single_commit_per_s": {"median": median(single), "runs": single},
                "raw_sqlite3_executemany_per_s": {"median": median(raw), "runs": raw},
                "ratio_batched_to_raw": median(batched) / median(raw),
                # Each repeat's own pair: on a shared machine the load moves both
                # rates together, so the paired ratio moves far less than either.
                "ratio_batched_to_raw_paired": median(
                    [b / r for b, r in zip(batched, raw, strict=True)]
                ),
                "postgres_batched_per_s": {"median": median(pg), "runs": pg} if pg else None,
            }
            if args.only != "record":
                events, incidents = (100_000, 10_000) if args.quick else (1_000_000, 100_000)
                big = str(work / "big.db")
                results["big_store"] = big_store(big, events, incidents, progress)
                results["big_store"]["rss_growth"] = (
                    results["big_store"]["after_all_mb"] / results["big_store"]["after_10pct_mb"]
                    - 1
                )
                results["reads"] = read_latencies(big)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rec = results["record"]
    table = Table(title="medic tracker · medians")
    table.add_column("measure")
    table.add_column("medic", justify="right")
    table.add_column("baseline / target", justify="right")
    table.add_row(
        "SQLite record_many (1,000/batch)",
        f"{rec['sqlite_batched_per_s']['median']:,.0f}/s",
        "≥ 50,000/s",
    )
    table.add_row(
        "raw sqlite3 executemany, same rows",
        f"{rec['raw_sqlite3_executemany_per_s']['median']:,.0f}/s",
        f"ratio medic/raw {rec['ratio_batched_to_raw_paired']:.2f} (paired median)",
    )
    table.add_row(
        "SQLite record (one commit each)",
        f"{rec['sqlite_single_commit_per_s']['median']:,.0f}/s",
        "≥ 3,000/s",
    )
    if rec["postgres_batched_per_s"]:
        table.add_row(
            "PostgreSQL record_many",
            f"{rec['postgres_batched_per_s']['median']:,.0f}/s",
            "≥ 20,000/s",
        )
    if args.only == "record":
        console.print(table)
        name = "tracker-record" if not args.quick else "tracker-record-quick"
        _report_path(write_results(name, results))
        return
    big_s = results["big_store"]
    table.add_row(
        "big store",
        f"{big_s['events']:,} events / {big_s['incidents']:,} incidents",
        f"built at {big_s['build_rate_per_s']:,.0f}/s",
    )
    reads = results["reads"]
    table.add_row(
        "incidents first page (query) p99",
        f"{reads['incidents_first_page_query_ms']['p99']:.2f} ms",
        "< 50 ms",
    )
    if isinstance(reads.get("cli_incidents_list_ms"), dict):
        table.add_row(
            "`medic incidents list` in process p99",
            f"{reads['cli_incidents_list_ms']['p99']:.2f} ms",
            "< 50 ms",
        )
    table.add_row("kpis 30 d (query) max", f"{reads['kpis_30d_ms']['max']:.0f} ms", "< 500 ms")
    if isinstance(reads.get("cli_kpis_30d_ms"), dict):
        table.add_row(
            "`medic kpis --since 30d` in process p99",
            f"{reads['cli_kpis_30d_ms']['p99']:.0f} ms",
            "< 500 ms",
        )
    table.add_row(
        "RSS after 10 % → 100 % of signals",
        f"{big_s['after_10pct_mb']:.0f} → {big_s['after_all_mb']:.0f} MB",
        f"growth {big_s['rss_growth'] * 100:.1f} % (≤ 10 %)",
    )
    console.print(table)
    _report_path(write_results("tracker" if not args.quick else "tracker-quick", results))


def _report_path(path: Path) -> None:
    console.print(
        f"results: {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}"
    )


if __name__ == "__main__":
    main()
