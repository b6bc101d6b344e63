"""Helpers for checkpoint tests: build small trees, mutate them, and read their exact state."""

from __future__ import annotations

import hashlib
import os
import random
import stat
from pathlib import Path

State = dict[str, tuple[str, str, int]]


def tree_state(root: Path) -> State:
    """Every path below `root` (skipping .medic) with its type, content hash or target, mode."""
    out: State = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".medic"]
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st = p.lstat()
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", os.readlink(p), 0)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", "", mode)
            else:
                out[rel] = ("f", hashlib.sha256(p.read_bytes()).hexdigest(), mode)
    return out


def make_tree(root: Path, *, files: int = 40, seed: int = 1, big: int = 0) -> Path:
    """A small mixed tree: text files in a few dirs, a symlink, optional larger binaries."""
    rng = random.Random(seed)
    for i in range(files):
        d = root / f"d{i % 4}"
        d.mkdir(parents=True, exist_ok=True)
        if i % 3 == 0:
            (d / f"f{i}.bin").write_bytes(rng.randbytes(rng.randint(1, 40_000)))
        else:
            (d / f"f{i}.txt").write_text(f"line {i}\n" * rng.randint(1, 3000))
    for j in range(big):
        (root / f"big{j}.bin").write_bytes(rng.randbytes(1 << 20))
    (root / "link").symlink_to("d0/f1.txt")
    (root / "empty").mkdir()
    return root


def mutate(root: Path, *, seed: int, modify: int, delete: int, add: int) -> None:
    """Same-size overwrites, deletions and additions (including a new directory)."""
    rng = random.Random(seed)
    files = sorted(
        p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and ".medic" not in p.parts
    )
    chosen = rng.sample(files, min(len(files), modify + delete))
    for p in chosen[:modify]:
        data = bytearray(p.read_bytes())
        if data:
            data[rng.randrange(len(data))] ^= 0xFF
        p.write_bytes(bytes(data))
    for p in chosen[modify:]:
        p.unlink()
    for k in range(add):
        sub = root / f"added{seed}" / f"x{k % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"new{k}.txt").write_text(f"new {k}\n" * 50)
