"""What separates a live tree from a checkpoint: the plan a rollback carries out.

The plan is computed from a stat walk (hashing only files whose stat the index
cannot vouch for), so a rollback costs O(changed files) plus one walk, whatever
the size of the tree. `medic checkpoint diff` shows the same plan.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from medic.checkpoint._manifest import DIR, FILE, LINK, Entry, Root
from medic.checkpoint._scan import Index, Scan, scan_tree

__all__ = ["RootPlan", "plan_root"]


@dataclass
class RootPlan:
    """The changes that bring one root back to its checkpointed entries."""

    root: Root
    scan: Scan
    remove: list[Entry] = field(default_factory=list)
    mkdirs: list[Entry] = field(default_factory=list)
    restore: list[Entry] = field(default_factory=list)
    links: list[Entry] = field(default_factory=list)
    attrs: list[Entry] = field(default_factory=list)
    index_dirty: bool = False

    @property
    def empty(self) -> bool:
        return not (self.remove or self.mkdirs or self.restore or self.links or self.attrs)

    def changes(self) -> list[tuple[str, str]]:
        """(what, path) pairs a person reads: added paths get removed, and so on."""
        out = [("remove", e.path) for e in self.remove]
        out += [("mkdir", e.path) for e in self.mkdirs]
        out += [("restore", e.path) for e in self.restore]
        out += [("relink", e.path) for e in self.links]
        out += [("attrs", e.path) for e in self.attrs]
        return out


def _depth(path: str) -> int:
    return path.count("/")


def plan_root(root: Root, *, index: Index, exclude: set[str]) -> RootPlan:
    """Compare the live directory with `root`'s entries and list what must change."""
    want = {e.path: e for e in root.entries}
    # the scan hands back the checkpoint's own entry for every path it finds unchanged,
    # so the comparison below is one identity test per path for most of the tree
    scan = scan_tree(root.path, blobs=None, index=index, exclude=exclude, reuse=want, ordered=False)
    have = {e.path: e for e in scan.entries}
    plan = RootPlan(root, scan)
    plan.index_dirty = scan.hashed_files > 0 or scan.index.entries != index.entries
    plan.remove = [have[path] for path in have.keys() - want.keys()]
    have_get = have.get
    for path, target in want.items():
        now = have_get(path)
        if now is target:
            continue
        if now is None or now.type != target.type:
            if now is not None:
                plan.remove.append(now)
            if target.type == DIR:
                plan.mkdirs.append(target)
            elif target.type == FILE:
                plan.restore.append(target)
            else:
                plan.links.append(target)
        elif target.type == FILE:
            if now.digest != target.digest:
                plan.restore.append(target)
            elif now.mode != target.mode or now.mtime_ns != target.mtime_ns:
                plan.attrs.append(target)
        elif target.type == LINK:
            if now.target != target.target:
                plan.links.append(target)
        elif now.mode != target.mode:
            plan.attrs.append(target)
    plan.remove += [Entry(path, FILE, 0) for path in scan.leftovers]
    plan.remove.sort(key=lambda e: (-_depth(e.path), e.path))
    plan.mkdirs.sort(key=lambda e: (_depth(e.path), e.path))
    # a removed directory takes what is below it along; list only the top of each
    removed_dirs = {e.path for e in plan.remove if e.type == DIR}
    plan.remove = [
        e for e in plan.remove if not _under_any(posixpath.dirname(e.path), removed_dirs)
    ]
    return plan


def _under_any(path: str, dirs: set[str]) -> bool:
    while path:
        if path in dirs:
            return True
        path = posixpath.dirname(path)
    return False
