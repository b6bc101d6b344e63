"""Commands for checkpoints, rollback, backups and restore.

The checkpoint store defaults to `.medic/checkpoints` beside the config file (or
in the current directory), like the tracker's store; backups always name their
repository with `--repo`. Long work draws a progress bar on a terminal; `--json`
prints one JSON document instead of prose.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from medic.app import RuntimePaths
from medic.checkpoint import (
    Manifest,
    RollbackResult,
    Store,
    create_backup,
    plan,
    prune,
    restore,
    restore_test,
    rollback,
    verify_backups,
    verify_blobs,
    verify_tree,
)
from medic.cli._main import Obj, cli

F = TypeVar("F", bound=Callable[..., Any])


def _store_option(f: F) -> F:
    return click.option(
        "--store-dir",
        envvar="MEDIC_CHECKPOINTS",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Checkpoint store (env MEDIC_CHECKPOINTS). "
        "Default: .medic/checkpoints beside the config file, or in the current directory.",
    )(f)


def _repo_option(f: F) -> F:
    return click.option(
        "--repo",
        envvar="MEDIC_BACKUP_REPO",
        required=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="Backup repository directory (env MEDIC_BACKUP_REPO).",
    )(f)


def _json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)


def _store(ctx: click.Context, store_dir: Path | None) -> Store:
    obj: Obj = ctx.find_object(Obj) or Obj(store=None, config=None)
    return Store(store_dir or RuntimePaths.checkpoints_for(obj.config))


@contextmanager
def _bar(label: str, *, quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr when a person is watching; nothing under --json or a pipe."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    # rich only when a person is watching: a script's checkpoint does not pay for it.
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn(label),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _emit(as_json: bool, doc: object, text: str) -> None:
    click.echo(json.dumps(doc, indent=2, default=str) if as_json else text)


def _summary(m: Manifest) -> dict[str, Any]:
    return {
        "id": m.id,
        "name": m.name,
        "kind": m.kind,
        "created_at": m.created_at.isoformat(),
        "parent": m.parent,
        "files": m.files,
        "bytes": m.size,
        "roots": [{"path": r.path, "label": r.label, "git": r.git} for r in m.roots],
        "databases": [{"path": d.path, "label": d.label, "bytes": d.size} for d in m.databases],
        "stats": m.stats,
    }


def _line(m: Manifest) -> str:
    roots = ", ".join(r.path for r in m.roots) + "".join(f" +db {d.path}" for d in m.databases)
    name = f" [{m.name}]" if m.name else ""
    return f"{m.id}{name}  {m.kind}  {m.files} files  {_human(m.size)}  {roots}"


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# -- medic checkpoint ----------------------------------------------------------


@cli.group()
def checkpoint() -> None:
    """Snapshots of directories and SQLite databases that rollback can return to."""


@checkpoint.command("create")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--name", default="", help="A name to find the checkpoint by later.")
@click.option("--db", "dbs", multiple=True, type=click.Path(path_type=Path), help="SQLite file.")
@_store_option
@_json_option
@click.pass_context
def checkpoint_create(
    ctx: click.Context,
    paths: tuple[Path, ...],
    name: str,
    dbs: tuple[Path, ...],
    store_dir: Path | None,
    as_json: bool,
) -> None:
    """Checkpoint PATH... (directories) and --db databases."""
    store = _store(ctx, store_dir)
    with _bar("checkpoint", quiet=as_json) as progress:
        m = store.create(paths, name=name, dbs=dbs, progress=progress)
    secs = m.stats.get("duration_s", 0.0)
    new = _human(m.stats.get("new_bytes", 0))
    _emit(as_json, _summary(m), f"checkpoint {m.id}: {m.files} files, {new} new, {secs:.3f} s")


@checkpoint.command("list")
@_store_option
@_json_option
@click.pass_context
def checkpoint_list(ctx: click.Context, store_dir: Path | None, as_json: bool) -> None:
    """List checkpoints, oldest first."""
    store = _store(ctx, store_dir)
    every = store.checkpoints() if store.exists() else []
    _emit(as_json, [_summary(m) for m in every], "\n".join(_line(m) for m in every) or "none")


@checkpoint.command("show")
@click.argument("ref")
@click.option("--files", is_flag=True, help="List every entry too.")
@_store_option
@_json_option
@click.pass_context
def checkpoint_show(
    ctx: click.Context, ref: str, files: bool, store_dir: Path | None, as_json: bool
) -> None:
    """Show one checkpoint (by id, id prefix, name or 'latest')."""
    m = _store(ctx, store_dir).get(ref)
    doc = _summary(m)
    lines = [_line(m), f"created {m.created_at.isoformat()}"]
    for r in m.roots:
        head = f" (git {r.git['ref']} {r.git['commit'][:12]})" if r.git else ""
        lines.append(f"  {r.path}: {r.files} files, {_human(r.size)}{head}")
    if files:
        doc["entries"] = {r.label: [e.encode() for e in r.entries] for r in m.roots}
        lines += [
            f"    {e.type} {e.mode:04o} {e.size:>10} {e.path}" for r in m.roots for e in r.entries
        ]
    _emit(as_json, doc, "\n".join(lines))


@checkpoint.command("diff")
@click.argument("ref")
@_store_option
@_json_option
@click.pass_context
def checkpoint_diff(ctx: click.Context, ref: str, store_dir: Path | None, as_json: bool) -> None:
    """What a rollback to REF would change in the live tree."""
    store = _store(ctx, store_dir)
    m = store.get(ref)
    changes = [
        (w, os.path.join(p.root.path, path)) for p in plan(store, m) for w, path in p.changes()
    ]
    doc = {"checkpoint": m.id, "changes": [{"action": w, "path": p} for w, p in changes]}
    text = "\n".join(f"{w:8} {p}" for w, p in changes) or f"no changes since {m.id}"
    _emit(as_json, doc, text)


@checkpoint.command("verify")
@click.argument("ref", required=False)
@click.option("--tree", is_flag=True, help="Re-hash the live tree against REF instead.")
@_store_option
@_json_option
@click.pass_context
def checkpoint_verify(
    ctx: click.Context, ref: str | None, tree: bool, store_dir: Path | None, as_json: bool
) -> None:
    """Re-hash the blobs of REF (default: every checkpoint), or with --tree the live files."""
    store = _store(ctx, store_dir)
    store.require()
    if tree and ref is None:
        raise click.UsageError("--tree needs a CHECKPOINT to compare with")
    with _bar("verify", quiet=as_json) as progress:
        if tree:
            result = verify_tree(store, store.get(str(ref)), progress=progress)
        else:
            targets = [store.get(ref)] if ref else store.checkpoints()
            result = verify_blobs(store, targets, progress=progress)
    doc = {
        "ok": result.ok,
        "checked": result.checked,
        "bytes": result.bytes,
        "problems": list(result.problems),
        "duration_s": result.duration_s,
    }
    what = "files" if tree else "blobs"
    text = "\n".join(
        [
            *result.problems,
            f"{result.checked} {what} checked in "
            f"{result.duration_s:.3f} s: {'ok' if result.ok else 'PROBLEMS'}",
        ]
    )
    _emit(as_json, doc, text)
    if not result.ok:
        ctx.exit(1)


@checkpoint.command("prune")
@click.option("--keep-last", type=click.IntRange(min=0), default=0, help="Keep the newest N.")
@click.option("--keep-daily", type=click.IntRange(min=0), default=0, help="Keep one a day, N days.")
@click.option("--dry-run", is_flag=True, help="Say what would go; remove nothing.")
@_store_option
@_json_option
@click.pass_context
def checkpoint_prune(
    ctx: click.Context,
    keep_last: int,
    keep_daily: int,
    dry_run: bool,
    store_dir: Path | None,
    as_json: bool,
) -> None:
    """Remove checkpoints outside --keep-last/--keep-daily and the blobs only they used."""
    r = prune(_store(ctx, store_dir), keep_last=keep_last, keep_daily=keep_daily, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    text = (
        f"{verb} {len(r.removed)} checkpoints and {r.blobs_removed} blobs "
        f"({_human(r.bytes_freed)}); kept {len(r.kept)}"
    )
    _emit(as_json, r.__dict__, text)


# -- medic rollback --------------------------------------------------------------


def _rollback_doc(r: RollbackResult) -> dict[str, Any]:
    doc = dict(r.__dict__)
    doc["changes"] = [{"action": w, "path": p} for w, p in r.changes]
    return doc


@cli.command("rollback")
@click.argument("ref", required=False)
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--resume", is_flag=True, help="Finish a rollback that was interrupted.")
@_store_option
@_json_option
@click.pass_context
def rollback_command(
    ctx: click.Context,
    ref: str | None,
    dry_run: bool,
    resume: bool,
    store_dir: Path | None,
    as_json: bool,
) -> None:
    """Bring the checkpointed trees and databases back to CHECKPOINT, then verify."""
    if resume == bool(ref):
        raise click.UsageError("give either CHECKPOINT or --resume")
    r = rollback(_store(ctx, store_dir), ref, dry_run=dry_run, resume=resume)
    lines = [f"{w:8} {p}" for w, p in r.changes] if dry_run else []
    head = (
        "would change" if dry_run else f"rolled back to {r.checkpoint_id} in {r.duration_s:.3f} s:"
    )
    lines.append(
        f"{head} {r.restored} restored, {r.deleted} removed, {r.created_dirs} dirs created, "
        f"{r.relinked} symlinks, {r.attrs} attributes, {r.databases} databases"
    )
    lines += [f"note: {g}" for g in r.git_moved]
    _emit(as_json, _rollback_doc(r), "\n".join(lines))


# -- medic backup / restore -------------------------------------------------------


@cli.group()
def backup() -> None:
    """Full and incremental backups into a repository directory, verified and restore-tested."""


@backup.command("create")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--db", "dbs", multiple=True, type=click.Path(path_type=Path), help="SQLite file.")
@click.option("--full", is_flag=True, help="Re-read every file instead of trusting the index.")
@click.option("--name", default="", help="A name for the snapshot.")
@_repo_option
@_json_option
def backup_create(
    paths: tuple[Path, ...],
    dbs: tuple[Path, ...],
    full: bool,
    name: str,
    repo: Path,
    as_json: bool,
) -> None:
    """Back up PATH... and --db databases into --repo."""
    with _bar("backup", quiet=as_json) as progress:
        m = create_backup(Store(repo), paths, dbs=dbs, full=full, name=name, progress=progress)
    secs = m.stats.get("duration_s", 0.0)
    new = _human(m.stats.get("new_bytes", 0))
    _emit(as_json, _summary(m), f"{m.kind} backup {m.id}: {m.files} files, {new} new, {secs:.3f} s")


@backup.command("list")
@_repo_option
@_json_option
def backup_list(repo: Path, as_json: bool) -> None:
    """List the snapshots in --repo, oldest first, with when each was last verified."""
    store = Store(repo)
    store.require()
    every = store.checkpoints()
    doc = [{**_summary(m), "verified_at": store.verified_at(m.id)} for m in every]
    lines = []
    for m in every:
        v = store.verified_at(m.id)
        lines.append(_line(m) + (f"  verified {v.isoformat()}" if v else "  unverified"))
    _emit(as_json, doc, "\n".join(lines) or "none")


@backup.command("verify")
@click.argument("snapshot", required=False)
@_repo_option
@_json_option
@click.pass_context
def backup_verify(ctx: click.Context, snapshot: str | None, repo: Path, as_json: bool) -> None:
    """Re-read and re-hash every blob of SNAPSHOT (default: all snapshots)."""
    with _bar("verify", quiet=as_json) as progress:
        snaps, problems, blobs = verify_backups(Store(repo), snapshot, progress=progress)
    doc = {
        "ok": not problems,
        "snapshots": [m.id for m in snaps],
        "blobs": blobs,
        "problems": problems,
    }
    text = "\n".join(
        [
            *problems,
            f"{len(snaps)} snapshots, {blobs} blobs re-hashed: "
            f"{'ok' if not problems else 'PROBLEMS'}",
        ]
    )
    _emit(as_json, doc, text)
    if problems:
        ctx.exit(1)


@backup.command("test")
@click.argument("snapshot", required=False)
@_repo_option
@_json_option
@click.pass_context
def backup_test(ctx: click.Context, snapshot: str | None, repo: Path, as_json: bool) -> None:
    """Restore SNAPSHOT (default: the newest) into a temporary directory and compare."""
    m, problems = restore_test(Store(repo), snapshot)
    doc = {"ok": not problems, "snapshot": m.id, "files": m.files, "problems": problems}
    verdict = "restore test passed" if not problems else "restore test FAILED"
    _emit(as_json, doc, "\n".join([*problems, f"{m.id}: {verdict} ({m.files} files)"]))
    if problems:
        ctx.exit(1)


@cli.command("restore")
@click.argument("snapshot")
@click.option("--target", required=True, type=click.Path(path_type=Path), help="Empty or new dir.")
@click.option("--dry-run", is_flag=True, help="Check the snapshot and say what would be written.")
@_repo_option
@_json_option
def restore_command(snapshot: str, target: Path, dry_run: bool, repo: Path, as_json: bool) -> None:
    """Restore SNAPSHOT from --repo into --target; unsafe snapshots are refused whole."""
    with _bar("restore", quiet=as_json) as progress:
        r = restore(Store(repo), snapshot, target, dry_run=dry_run, progress=progress)
    verb = "would restore" if dry_run else "restored"
    text = (
        f"{verb} {r.snapshot_id} into {r.target}: {r.files} files, {r.dirs} dirs, "
        f"{r.links} symlinks, {r.databases} databases, {_human(r.bytes)}"
        + ("" if dry_run else f" in {r.duration_s:.3f} s")
    )
    _emit(as_json, r.__dict__, text)
