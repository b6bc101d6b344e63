"""Checkpoint / rollback / verify benchmark: medic beside rsync --link-dest, git, restic and borg.

Generates a 10,000-file / 1 GiB tree once (90% small text files, 9% medium and
1% large binaries) in a temporary directory, then for every tool, in the same
run and interleaved over repetitions, with a warm page cache:

  (a) first snapshot of the tree
  (b) second snapshot after 1% of the files changed
  (c) rollback to the first snapshot after a further 1% changed and 10 deleted
      (about 200 modified + 10 deleted files to undo), checked by sha256
  (d) no-op rollback (nothing changed since (c))

then the rollback curve for 0, 10, 100 and 1,000 changed files, medic's full
verification (re-hash of the live tree, and of the store's blobs), and SQLite
checkpoint + restore of a 256 MiB database. medic is measured in-process (as
`medic up` calls it) and through its CLI (which adds interpreter start-up).

Usage: .venv/bin/python bench/checkpoint.py [--reps 3] [--files 10000] [--mib 1024]
                                            [--db-mib 256] [--out bench/results/checkpoint.json]
Rivals come from Debian: apt-get install -y restic borgbackup rsync git
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from medic.checkpoint import Store, rollback, verify_blobs, verify_tree
from medic.checkpoint._fs import syncfs

MiB = 1 << 20
console = Console(stderr=True)

TARGETS = {
    "a_first_s": 3.0,
    "b_incremental_s": 0.2,
    "c_rollback_s": 0.25,
    "d_noop_rollback_s": 0.1,
    "marginal_ms_per_file": 1.0,
    "verify_tree_s": 1.0,
    "sqlite_s_per_gib": 1.5,
}


# -- the tree --------------------------------------------------------------------------


def generate(master: Path, nfiles: int, total_mib: int, seed: int = 42) -> None:
    """Deterministic mixed tree in nfiles/100 directories, scaled to total_mib."""
    rng = random.Random(seed)
    kinds, sizes = [], []
    for _ in range(nfiles):
        r = rng.random()
        if r < 0.90:
            kinds.append("t")
            sizes.append(rng.randint(1024, 31 * 1024))
        elif r < 0.99:
            kinds.append("b")
            sizes.append(rng.randint(100 * 1024, 1000 * 1024))
        else:
            kinds.append("b")
            sizes.append(rng.randint(3 * MiB, 5 * MiB))
    scale = total_mib * MiB / sum(sizes)
    sizes = [max(64, int(s * scale)) for s in sizes]
    vocab = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10)))
        for _ in range(2000)
    ]
    words: list[str] = []
    n = 0
    while n < 4 * MiB:
        w = rng.choice(vocab)
        words.append(w)
        n += len(w) + 1
    pool = (" ".join(words) + "\n").encode()
    ndirs = max(1, nfiles // 100)
    for i in range(nfiles):
        d = master / f"d{i % ndirs:03d}"
        d.mkdir(parents=True, exist_ok=True)
        if kinds[i] == "t":
            head = f"file {i}\n".encode()
            off = rng.randrange(0, len(pool) - sizes[i] - 1)
            (d / f"f{i:05d}.txt").write_bytes(head + pool[off : off + sizes[i] - len(head)])
        else:
            (d / f"f{i:05d}.bin").write_bytes(rng.randbytes(sizes[i]))


def files_of(root: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in (".git", ".medic")]
        out += [os.path.relpath(os.path.join(dirpath, f), root) for f in filenames]
    return sorted(out)


def manifest_of(root: Path) -> dict[str, str]:
    return {p: hashlib.sha256((root / p).read_bytes()).hexdigest() for p in files_of(root)}


def mutate(tree: Path, seed: int, n_modify: int, n_delete: int) -> None:
    """Overwrite 4 KiB in n_modify files (same size) and delete n_delete others."""
    files = files_of(tree)
    rng = random.Random(seed)
    mod = rng.sample(files, min(n_modify, len(files) // 2))
    rest = sorted(set(files) - set(mod))
    for p in mod:
        fp = tree / p
        size = fp.stat().st_size
        k = min(4096, size)
        off = rng.randrange(0, size - k + 1)
        with open(fp, "r+b") as f:
            f.seek(off)
            f.write(rng.randbytes(k))
    for p in rng.sample(rest, n_delete) if n_delete else []:
        (tree / p).unlink()


def run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr[-1500:]}")
    return r.stdout


# -- the tools -------------------------------------------------------------------------


class Tool:
    name = "?"
    needs: tuple[str, ...] = ()

    def __init__(self, work: Path, tree: Path) -> None:
        self.work, self.tree = work, tree

    def missing(self) -> list[str]:
        return [x for x in self.needs if shutil.which(x) is None]

    def version(self) -> str:
        return ""

    def setup(self) -> None:
        pass

    def snap(self, label: str) -> None:
        raise NotImplementedError

    def rollback(self, label: str) -> None:
        raise NotImplementedError


def medic_version() -> str:
    from medic._version import __version__

    return f"medic {__version__}"


class MedicApi(Tool):
    name = "medic (in-process)"

    def version(self) -> str:
        return medic_version()

    def setup(self) -> None:
        self.store = Store(self.work / "store")
        self.ids: dict[str, str] = {}

    def snap(self, label: str) -> None:
        self.ids[label] = self.store.create([self.tree], name=label).id

    def rollback(self, label: str) -> None:
        rollback(self.store, self.ids[label])


class MedicCli(Tool):
    name = "medic (CLI)"

    def version(self) -> str:
        return medic_version()

    def cli(self, *args: str) -> None:
        run([sys.executable, "-m", "medic", *args, "--store-dir", str(self.work / "store")])

    def snap(self, label: str) -> None:
        self.cli("checkpoint", "create", str(self.tree), "--name", label)

    def rollback(self, label: str) -> None:
        self.cli("rollback", label)


class Rsync(Tool):
    name, needs = "rsync --link-dest", ("rsync",)

    def version(self) -> str:
        return run(["rsync", "--version"]).splitlines()[0]

    def snap(self, label: str) -> None:
        cmd = [
            "rsync",
            "-a",
            "--modify-window=-1",
        ]  # ns mtimes: the default misses same-second edits
        prev = getattr(self, "prev", None)
        if prev:
            cmd.append(f"--link-dest={prev}")
        dst = self.work / f"snap-{label}"
        run([*cmd, f"{self.tree}/", f"{dst}/"])
        self.prev = str(dst)

    def rollback(self, label: str) -> None:
        run(
            [
                "rsync",
                "-a",
                "--modify-window=-1",
                "--delete",
                f"{self.work}/snap-{label}/",
                f"{self.tree}/",
            ]
        )


class Git(Tool):
    name, needs = "git", ("git",)

    def version(self) -> str:
        return run(["git", "--version"]).strip()

    def git(self, *args: str) -> str:
        env = dict(
            os.environ,
            GIT_DIR=str(self.work / "git"),
            GIT_WORK_TREE=str(self.tree),
            GIT_AUTHOR_NAME="b",
            GIT_AUTHOR_EMAIL="b@b",
            GIT_COMMITTER_NAME="b",
            GIT_COMMITTER_EMAIL="b@b",
        )
        return run(["git", *args], cwd=self.tree, env=env)

    def setup(self) -> None:
        self.git("init", "-q")
        self.git("config", "gc.auto", "0")
        self.commits: dict[str, str] = {}

    def snap(self, label: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", label)
        self.commits[label] = self.git("rev-parse", "HEAD").strip()

    def rollback(self, label: str) -> None:
        self.git("reset", "-q", "--hard", self.commits[label])
        self.git("clean", "-fdq")


class Restic(Tool):
    name, needs = "restic", ("restic",)

    def env(self) -> dict[str, str]:
        return dict(
            os.environ,
            RESTIC_PASSWORD="bench",
            RESTIC_REPOSITORY=str(self.work / "repo"),
            RESTIC_CACHE_DIR=str(self.work / "cache"),
        )

    def version(self) -> str:
        return run(["restic", "version"]).strip()

    def setup(self) -> None:
        run(["restic", "init", "-q"], env=self.env())
        self.ids: dict[str, str] = {}

    def snap(self, label: str) -> None:
        out = run(["restic", "backup", "--json", "."], cwd=self.tree, env=self.env())
        for line in out.splitlines():
            if '"summary"' in line:
                self.ids[label] = json.loads(line)["snapshot_id"]

    def rollback(self, label: str) -> None:
        # this restic has no --delete: the workload only modifies and deletes, so the path set
        # still matches after an in-place restore (it rewrites every file)
        run(
            ["restic", "restore", "-q", self.ids[label], "--target", str(self.tree)], env=self.env()
        )


class Borg(Tool):
    name, needs = "borg", ("borg",)

    def env(self) -> dict[str, str]:
        return dict(
            os.environ,
            BORG_REPO=str(self.work / "repo"),
            BORG_BASE_DIR=str(self.work / "base"),
            BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes",
        )

    def version(self) -> str:
        return run(["borg", "--version"]).strip()

    def setup(self) -> None:
        run(["borg", "init", "-e", "none"], env=self.env())

    def snap(self, label: str) -> None:
        run(["borg", "create", f"::{label}", "."], cwd=self.tree, env=self.env())

    def rollback(self, label: str) -> None:
        run(["borg", "extract", f"::{label}"], cwd=self.tree, env=self.env())


TOOLS: list[type[Tool]] = [MedicApi, MedicCli, Rsync, Git, Restic, Borg]


# -- the measurements ------------------------------------------------------------------


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def fresh(root: Path, master: Path, cls: type[Tool]) -> Tool:
    work, tree = root / "work", root / "tree"
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(tree, ignore_errors=True)
    work.mkdir()
    run(["cp", "-a", str(master), str(tree)])
    tool = cls(work, tree)
    tool.setup()
    syncfs(root)
    return tool


def main_steps(
    root: Path,
    master: Path,
    m0: dict[str, str],
    tools: list[type[Tool]],
    reps: int,
    nfiles: int,
    bar: Progress,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    task = bar.add_task("snapshot/rollback", total=reps * len(tools))
    for rep in range(reps):
        order = tools[rep % len(tools) :] + tools[: rep % len(tools)]
        for cls in order:
            tool = fresh(root, master, cls)
            r: dict[str, Any] = {}
            r["a_first_s"] = timed(lambda t=tool: t.snap("s1"))
            mutate(tool.tree, 1, nfiles // 100, 0)
            syncfs(root)
            r["b_incremental_s"] = timed(lambda t=tool: t.snap("s2"))
            mutate(tool.tree, 2, nfiles // 100, 10)
            syncfs(root)
            r["c_rollback_s"] = timed(lambda t=tool: t.rollback("s1"))
            syncfs(root)
            r["d_noop_rollback_s"] = timed(lambda t=tool: t.rollback("s1"))
            r["exact"] = manifest_of(tool.tree) == m0
            if cls is MedicApi:
                assert isinstance(tool, MedicApi)
                m = tool.store.get("s1")
                r["verify_tree_s"] = verify_tree(tool.store, m).duration_s
                r["verify_blobs_s"] = verify_blobs(tool.store, [m]).duration_s
                r["store_bytes"] = sum(p.stat().st_size for _, p in tool.store.blobs.all())
            out.setdefault(cls.name, []).append(r)
            if not r["exact"]:
                raise SystemExit(f"{cls.name} did not restore the first snapshot exactly")
            console.log(
                f"rep {rep + 1} {cls.name:20} "
                + " ".join(f"{k}={v:.3f}" for k, v in r.items() if k.endswith("_s"))
            )
            bar.advance(task)
    return out


def curve(
    root: Path, master: Path, m0: dict[str, str], tools: list[type[Tool]], reps: int, bar: Progress
) -> dict[str, dict[str, list[float]]]:
    ks = [0, 10, 100, 1000]
    out: dict[str, dict[str, list[float]]] = {}
    task = bar.add_task("rollback curve", total=reps * len(tools))
    for rep in range(reps):
        for cls in tools[rep % len(tools) :] + tools[: rep % len(tools)]:
            tool = fresh(root, master, cls)
            tool.snap("s1")
            for k in ks:
                mutate(tool.tree, 1000 + 7 * rep + k, k, 0)
                syncfs(root)
                out.setdefault(cls.name, {}).setdefault(str(k), []).append(
                    timed(lambda t=tool: t.rollback("s1"))
                )
            if manifest_of(tool.tree) != m0:
                raise SystemExit(f"{cls.name}: rollback curve did not end exact")
            bar.advance(task)
    return out


def sqlite_step(root: Path, db_mib: int, reps: int) -> dict[str, Any]:
    d = root / "sqlite"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    db = d / "live.db"
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT, v BLOB)")
    rng = random.Random(7)
    n = db_mib * MiB // 2048
    con.execute("BEGIN")
    for _ in range(n):
        con.execute(
            "INSERT INTO t (k, v) VALUES (?, ?)",
            (f"key{rng.randrange(10**8):08d}", rng.randbytes(2000)),
        )
    con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = db.stat().st_size
    cps, rss = [], []
    for rep in range(reps):
        store = Store(d / f"store{rep}")
        syncfs(d)
        t = time.perf_counter()
        m = store.create([], dbs=[db])
        cps.append(time.perf_counter() - t)
        con.execute("BEGIN")
        for _ in range(n // 100):
            con.execute("UPDATE t SET v=? WHERE id=?", (rng.randbytes(2000), rng.randrange(1, n)))
        con.execute("COMMIT")
        syncfs(d)
        t = time.perf_counter()
        rollback(store, m.id)
        rss.append(time.perf_counter() - t)
        shutil.rmtree(d / f"store{rep}")
    con.close()
    gib = size / (1 << 30)
    return {
        "db_bytes": size,
        "checkpoint_s": cps,
        "restore_s": rss,
        "checkpoint_s_per_gib": statistics.median(cps) / gib,
        "restore_s_per_gib": statistics.median(rss) / gib,
    }


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import zstandard

    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "zstandard": zstandard.__version__,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--curve-reps", type=int, default=2, help="Repetitions of the rollback curve.")
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--db-mib", type=int, default=256)
    ap.add_argument("--tools", default="", help="Comma-separated subset of tool names to run.")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "checkpoint.json"))
    args = ap.parse_args()

    tools, missing = [], {}
    wanted = [t.strip() for t in args.tools.split(",") if t.strip()]
    for cls in TOOLS:
        if wanted and not any(w in cls.name for w in wanted):
            continue
        lack = cls(Path(), Path()).missing()
        if lack:
            missing[cls.name] = lack
            console.print(
                f"[bold red]MISSING rival {cls.name}: {', '.join(lack)} not on PATH "
                "(apt-get install -y restic borgbackup rsync git); it is left out"
            )
        else:
            tools.append(cls)
    root = Path(tempfile.mkdtemp(prefix="medic-bench-checkpoint-"))
    try:
        master = root / "master"
        t = time.perf_counter()
        generate(master, args.files, args.mib)
        m0 = manifest_of(master)
        total = sum((master / p).stat().st_size for p in m0)
        console.log(
            f"generated {len(m0)} files, {total / MiB:.0f} MiB in "
            f"{time.perf_counter() - t:.1f} s under the system temp dir"
        )
        with Progress(console=console, transient=True) as bar:
            steps = main_steps(root, master, m0, tools, args.reps, args.files, bar)
            # the CLI only adds interpreter start-up to each point, so the curve skips it
            curve_tools = [t for t in tools if t is not MedicCli]
            scaling = curve(root, master, m0, curve_tools, args.curve_reps, bar)
        sq = sqlite_step(root, args.db_mib, args.reps)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    result = report(steps, scaling, sq, tools, missing, args, len(m0), total)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    console.log(f"wrote {args.out}")


def report(
    steps: dict[str, Any],
    scaling: dict[str, Any],
    sq: dict[str, Any],
    tools: list[type[Tool]],
    missing: dict[str, list[str]],
    args: argparse.Namespace,
    nfiles: int,
    total: int,
) -> dict[str, Any]:
    def med(xs: list[float]) -> float:
        return statistics.median(xs)

    def p95(xs: list[float]) -> float:
        return sorted(xs)[max(0, round(0.95 * len(xs)) - 1)]

    table: dict[str, Any] = {}
    for name, runs in steps.items():
        table[name] = {
            k: {
                "median": med([r[k] for r in runs]),
                "p95": p95([r[k] for r in runs]),
                "all": [r[k] for r in runs],
            }
            for k in runs[0]
            if k.endswith("_s")
        }
        table[name]["exact"] = all(r["exact"] for r in runs)
    curves = {name: {k: med(v) for k, v in d.items()} for name, d in scaling.items()}
    for c in curves.values():
        c["marginal_ms_per_file"] = (c["1000"] - c["0"]) / 1000 * 1000
    api = table["medic (in-process)"]
    measured = {
        "a_first_s": api["a_first_s"]["median"],
        "b_incremental_s": api["b_incremental_s"]["median"],
        "c_rollback_s": api["c_rollback_s"]["median"],
        "d_noop_rollback_s": api["d_noop_rollback_s"]["median"],
        "marginal_ms_per_file": curves["medic (in-process)"]["marginal_ms_per_file"],
        "verify_tree_s": api["verify_tree_s"]["median"],
        "sqlite_s_per_gib": max(sq["checkpoint_s_per_gib"], sq["restore_s_per_gib"]),
    }
    verdict = {
        k: {"target": TARGETS[k], "measured": v, "met": v <= TARGETS[k]}
        for k, v in measured.items()
    }

    print(f"\n{nfiles} files, {total / MiB:.0f} MiB, {args.reps} reps, medians (p95)\n")
    print("| tool | (a) first | (b) 1% changed | (c) rollback ~200+10 | (d) no-op rollback |")
    print("|---|---|---|---|---|")
    for name, row in table.items():
        cells = [
            f"{row[k]['median']:.3f} s ({row[k]['p95']:.3f})"
            for k in ("a_first_s", "b_incremental_s", "c_rollback_s", "d_noop_rollback_s")
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\nrollback vs files changed (median s) and marginal cost")
    print("| tool | 0 | 10 | 100 | 1000 | ms/file |")
    print("|---|---|---|---|---|---|")
    for name, c in curves.items():
        print(
            f"| {name} | {c['0']:.3f} | {c['10']:.3f} | {c['100']:.3f} | {c['1000']:.3f} | "
            f"{c['marginal_ms_per_file']:.2f} |"
        )
    for name, row in table.items():
        if name != "medic (in-process)":
            print(
                f"ratio {name} / medic: (a) {row['a_first_s']['median'] / measured['a_first_s']:.2f}"
                f"  (b) {row['b_incremental_s']['median'] / measured['b_incremental_s']:.2f}"
                f"  (c) {row['c_rollback_s']['median'] / measured['c_rollback_s']:.2f}"
            )
    print(
        f"\nmedic verify: tree re-hash {api['verify_tree_s']['median']:.3f} s, "
        f"blob re-hash {api['verify_blobs_s']['median']:.3f} s"
    )
    print(
        f"SQLite {sq['db_bytes'] / MiB:.0f} MiB: checkpoint {sq['checkpoint_s_per_gib']:.2f} s/GiB,"
        f" restore {sq['restore_s_per_gib']:.2f} s/GiB"
    )
    print("\ntargets (in-process API):")
    for k, v in verdict.items():
        print(
            f"  {k:22} target {v['target']:<6} measured {v['measured']:.3f}  "
            f"{'MET' if v['met'] else 'MISSED'}"
        )
    return {
        "machine": machine(),
        "tree": {"files": nfiles, "bytes": total},
        "params": {"reps": args.reps, "curve_reps": args.curve_reps, "db_mib": args.db_mib},
        "command": "python bench/checkpoint.py " + " ".join(sys.argv[1:]),
        "versions": {cls.name: cls(Path(), Path()).version() for cls in tools},
        "missing_rivals": missing,
        "steps": table,
        "rollback_curve": curves,
        "rollback_curve_runs": scaling,
        "sqlite": sq,
        "targets": verdict,
    }


if __name__ == "__main__":
    main()
