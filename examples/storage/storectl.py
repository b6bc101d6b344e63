"""storectl: a tiny example store for medic's example runbooks (standard library only).

The layout mirrors seed 002's emergency recovery tool, small enough to read:

    STORE/tenants/<tenant>/records.jsonl   one {"id", "score"} per line; score in [0, 1]
    STORE/tenants/<tenant>/index.json      {"ids": [...]} built from records.jsonl
    STORE/wal/*.log                        write-ahead log segments, JSON lines
    STORE/wal-corrupt/                     segments moved aside by `quarantine-wal`
    STORE/backups/backup-NNNN.tar.gz       full backups, newest has the highest number
    STORE/READONLY                         present while the store refuses writes

`python3 storectl.py init STORE` creates a store with one of each problem: a NaN
score, a corrupt WAL segment and a stale index. `check` exits 1 while a problem
remains, so runbooks use it as their verification.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tarfile
from pathlib import Path


def _records(tenant: Path) -> list[dict[str, object]]:
    path = tenant / "records.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write_records(tenant: Path, records: list[dict[str, object]]) -> None:
    (tenant / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def _tenants(store: Path, only: str | None = None) -> list[Path]:
    root = store / "tenants"
    if only:
        return [root / only]
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _valid(score: object) -> bool:
    return isinstance(score, int | float) and math.isfinite(score) and 0.0 <= score <= 1.0


def _wal_ok(segment: Path) -> bool:
    try:
        for line in segment.read_text().splitlines():
            json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def _index_ok(tenant: Path) -> bool:
    try:
        index = json.loads((tenant / "index.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(index.get("ids") == [r["id"] for r in _records(tenant)])


def problems(store: Path, what: str, tenant: str | None) -> list[str]:
    found: list[str] = []
    if not (store / "tenants").is_dir():
        return [f"{store} is not a store (no tenants/)"]
    for t in _tenants(store, tenant):
        if what in ("values", "all"):
            bad = [r["id"] for r in _records(t) if not _valid(r.get("score"))]
            found += [f"{t.name}: invalid score in {rid}" for rid in bad]
        if what in ("index", "all") and not _index_ok(t):
            found.append(f"{t.name}: index.json does not match records.jsonl")
    if what in ("wal", "all"):
        found += [f"wal: corrupt segment {s.name}" for s in sorted((store / "wal").glob("*.log")) if not _wal_ok(s)]
    return found


def init(store: Path) -> None:
    for name, scores in (("tenant_a", [0.5, float("nan"), 0.9]), ("tenant_b", [0.1, 0.7])):
        tenant = store / "tenants" / name
        tenant.mkdir(parents=True, exist_ok=True)
        _write_records(tenant, [{"id": f"{name}-{i}", "score": s} for i, s in enumerate(scores)])
        (tenant / "index.json").write_text(json.dumps({"ids": [f"{name}-0"]}))  # stale
    (store / "wal").mkdir(exist_ok=True)
    (store / "wal" / "000001.log").write_text('{"op": "put", "id": "tenant_a-0"}\n')
    (store / "wal" / "000002.log").write_text('{"op": "put", "id": "tenant_a-1"\n')  # torn write
    (store / "backups").mkdir(exist_ok=True)


def sanitise(store: Path, tenant: str | None) -> None:
    for t in _tenants(store, tenant):
        records = _records(t)
        for r in records:
            score = r.get("score")
            if not isinstance(score, int | float) or not math.isfinite(score):
                r["score"] = 0.0
            else:
                r["score"] = min(max(float(score), 0.0), 1.0)
        _write_records(t, records)


def quarantine_wal(store: Path) -> None:
    aside = store / "wal-corrupt"
    for segment in sorted((store / "wal").glob("*.log")):
        if not _wal_ok(segment):
            aside.mkdir(exist_ok=True)
            segment.rename(aside / segment.name)
            print(f"moved {segment.name} to {aside}")


def rebuild_index(store: Path, tenant: str | None) -> None:
    for t in _tenants(store, tenant):
        (t / "index.json").write_text(json.dumps({"ids": [r["id"] for r in _records(t)]}))


def reset_tenant(store: Path, tenant: str) -> None:
    t = store / "tenants" / tenant
    if not t.is_dir():
        sys.exit(f"no tenant {tenant!r} in {store}")
    _write_records(t, [])
    rebuild_index(store, tenant)


def backup(store: Path) -> None:
    folder = store / "backups"
    folder.mkdir(exist_ok=True)
    number = len(list(folder.glob("backup-*.tar.gz"))) + 1
    target = folder / f"backup-{number:04d}.tar.gz"
    with tarfile.open(target, "w:gz") as tar:
        tar.add(store / "tenants", arcname="tenants")
    print(f"wrote {target}")


def restore_latest(store: Path) -> None:
    backups = sorted((store / "backups").glob("backup-*.tar.gz"))
    if not backups:
        sys.exit(f"no backup in {store / 'backups'}")
    shutil.rmtree(store / "tenants", ignore_errors=True)
    with tarfile.open(backups[-1], "r:gz") as tar:
        tar.extractall(store, filter="data")
    print(f"restored {backups[-1].name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="storectl", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["init", "check", "sanitise", "quarantine-wal", "rebuild-index", "reset-tenant", "backup", "restore-latest", "readonly", "is-readonly"])
    parser.add_argument("store", type=Path)
    parser.add_argument("arg", nargs="?", help="tenant (reset-tenant), on|off (readonly)")
    parser.add_argument("--what", choices=["values", "wal", "index", "all"], default="all")
    parser.add_argument("--tenant")
    a = parser.parse_args(argv)
    store: Path = a.store
    if a.command == "init":
        init(store)
    elif a.command == "check":
        found = problems(store, a.what, a.tenant)
        print("\n".join(found) or f"{a.what}: ok")
        return 1 if found else 0
    elif a.command == "sanitise":
        sanitise(store, a.tenant)
    elif a.command == "quarantine-wal":
        quarantine_wal(store)
    elif a.command == "rebuild-index":
        rebuild_index(store, a.tenant)
    elif a.command == "reset-tenant":
        reset_tenant(store, a.arg or a.tenant)
    elif a.command == "backup":
        backup(store)
    elif a.command == "restore-latest":
        restore_latest(store)
    elif a.command == "readonly":
        flag = store / "READONLY"
        flag.touch() if a.arg == "on" else flag.unlink(missing_ok=True)
    else:
        readonly = (store / "READONLY").exists()
        print("read-only" if readonly else "writable")
        return 0 if readonly else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
