"""Verify, diff and prune: keeping a store honest and bounded.

Verification re-reads bytes, never trusts stat: `verify_blobs` re-hashes what
the store holds, `verify_tree` re-hashes the live tree against a checkpoint.
Pruning deletes manifests first and unreferenced blobs after, so a kill between
the two leaves only garbage that the next prune sweeps, never a manifest that
names a missing blob.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass

from medic.checkpoint._fs import Progress, fsync_dir, no_space_guard
from medic.checkpoint._manifest import FILE, Entry, Manifest
from medic.checkpoint._scan import Index, hash_file, in_batches, walk
from medic.checkpoint._store import Store, db_companions
from medic.errors import InvalidInput

__all__ = ["PruneResult", "VerifyResult", "prune", "select_kept", "verify_blobs", "verify_tree"]


@dataclass(frozen=True)
class VerifyResult:
    """What a verification read and what did not match."""

    checked: int
    bytes: int
    problems: tuple[str, ...]
    duration_s: float

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_blobs(
    store: Store, manifests: Iterable[Manifest], *, progress: Progress | None = None
) -> VerifyResult:
    """Re-read and re-hash every blob the manifests name; missing or altered ones are problems."""
    started = store.clock.monotonic()
    digests: set[str] = set()
    sizes: dict[str, int] = {}
    for m in manifests:
        for r in m.roots:
            for e in r.entries:
                if e.type == FILE:
                    digests.add(e.digest)
                    sizes[e.digest] = e.size
        for d in m.databases:
            digests.add(d.digest)
            sizes[d.digest] = d.size
    ordered = sorted(digests)
    total = sum(sizes.values())
    done = 0
    problems = []
    check = store.blobs.check
    for batch, results in in_batches(ordered, lambda b: [check(d) for d in b]):
        for digest, good in zip(batch, results, strict=True):
            if not good:
                state = "missing" if not store.blobs.has(digest) else "altered"
                problems.append(f"blob {digest} is {state}")
            done += sizes[digest]
        if progress is not None:
            progress(done, total)
    return VerifyResult(len(ordered), total, tuple(problems), store.clock.monotonic() - started)


def verify_tree(
    store: Store, manifest: Manifest, *, progress: Progress | None = None
) -> VerifyResult:
    """Re-hash the live files of every root against the checkpoint (no stat shortcuts)."""
    started = store.clock.monotonic()
    exclude = {str(store.path)} | {c for d in manifest.databases for c in db_companions(d.path)}
    problems: list[str] = []
    checked = 0
    total = manifest.size
    done = 0
    for root in manifest.roots:
        want = {e.path: e for e in root.entries}
        found, _ = walk(root.path, exclude)
        have = dict(found)
        problems += [
            f"added {os.path.join(root.path, p)}" for p in sorted(have.keys() - want.keys())
        ]
        files = [e for e in root.entries if e.type == FILE and e.path in have]
        problems += [
            f"missing {os.path.join(root.path, p)}" for p in sorted(want.keys() - have.keys())
        ]

        def hashes(batch: list[Entry], base: str = root.path) -> list[str | None]:
            out: list[str | None] = []
            for e in batch:
                try:
                    out.append(hash_file(os.path.join(base, e.path)).digest)
                except OSError:
                    out.append(None)
            return out

        for batch, digests in in_batches(files, hashes):
            for e, digest in zip(batch, digests, strict=True):
                checked += 1
                done += e.size
                if digest != e.digest:
                    problems.append(f"modified {os.path.join(root.path, e.path)}")
            if progress is not None:
                progress(done, total)
    return VerifyResult(checked, done, tuple(problems), store.clock.monotonic() - started)


@dataclass(frozen=True)
class PruneResult:
    """Which checkpoints a prune kept and removed, and the blob bytes it freed."""

    kept: tuple[str, ...]
    removed: tuple[str, ...]
    blobs_removed: int
    bytes_freed: int
    dry_run: bool


def select_kept(manifests: list[Manifest], *, keep_last: int, keep_daily: int) -> set[str]:
    """The ids a keep-last-N / keep-daily-N policy keeps (newest per UTC day for daily)."""
    newest_first = sorted(manifests, key=lambda m: (m.created_at, m.id), reverse=True)
    kept = {m.id for m in newest_first[:keep_last]}
    days: list[str] = []
    for m in newest_first:
        day = m.created_at.date().isoformat()
        if day not in days:
            if len(days) >= keep_daily:
                break
            days.append(day)
            kept.add(m.id)
    return kept


def prune(
    store: Store, *, keep_last: int, keep_daily: int = 0, dry_run: bool = False
) -> PruneResult:
    """Remove checkpoints outside the policy, then every blob no remaining one names."""
    if keep_last < 0 or keep_daily < 0 or (keep_last == 0 and keep_daily == 0):
        raise InvalidInput("prune needs --keep-last N or --keep-daily N (at least one above 0)")
    store.require()
    with store.lock(), no_space_guard(store.path):
        every = store.checkpoints()
        kept = select_kept(every, keep_last=keep_last, keep_daily=keep_daily)
        pending = store.pending_rollback()
        if pending is not None:
            kept.add(pending)
        removed = [m for m in every if m.id not in kept]
        live_digests: set[str] = set()
        for m in every:
            if m.id in kept:
                live_digests |= m.digests()
        garbage = [(d, p) for d, p in store.blobs.all() if d not in live_digests]
        freed = sum(p.stat().st_size for _, p in garbage)
        if not dry_run:
            for m in removed:
                (store.manifests / f"{m.id}.json").unlink()
                (store.verified_dir / f"{m.id}.json").unlink(missing_ok=True)
            fsync_dir(store.manifests)
            # the indexes forget the blobs durably before they go: a kill between the two
            # must not leave an index that a later checkpoint trusts for a deleted blob
            _forget_in_indexes(store, {d for d, _ in garbage})
            for _, p in garbage:
                p.unlink(missing_ok=True)
    return PruneResult(
        kept=tuple(m.id for m in every if m.id in kept),
        removed=tuple(m.id for m in removed),
        blobs_removed=len(garbage),
        bytes_freed=freed,
        dry_run=dry_run,
    )


def _forget_in_indexes(store: Store, gone: set[str]) -> None:
    """Drop index entries whose blobs were swept, so no later checkpoint trusts them."""
    if not gone or not store.index_dir.is_dir():
        return
    for f in store.index_dir.glob("*.json"):
        idx = Index.load(store.index_dir, _root_of(f))
        if not idx.entries:
            f.unlink(missing_ok=True)
            continue
        idx.entries = {k: v for k, v in idx.entries.items() if v[1] not in gone}
        idx.save(store.index_dir, durable=True)


def _root_of(index_file: os.PathLike[str]) -> str:
    try:
        with open(index_file, "rb") as f:
            return str(json.load(f)["root"])
    except (OSError, ValueError, KeyError):
        return ""
