"""The git HEAD of a checkpointed directory, read from the repository's files.

Reading `.git/HEAD` and the ref directly costs microseconds and needs no git
binary; a checkpoint records where the code was so a rollback can say whether
HEAD has moved since (rollback restores files, never git history).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["git_head"]

_MAX_UP = 64


def _git_dir(start: Path) -> Path | None:
    here = start
    for _ in range(_MAX_UP):
        candidate = here / ".git"
        if candidate.is_dir():
            return candidate
        if candidate.is_file():
            text = candidate.read_text(errors="replace").strip()
            if text.startswith("gitdir:"):
                gd = Path(text.removeprefix("gitdir:").strip())
                return gd if gd.is_absolute() else (here / gd).resolve()
        if here.parent == here:
            return None
        here = here.parent
    return None


def _common_dir(git_dir: Path) -> Path:
    common = git_dir / "commondir"
    if common.is_file():
        p = Path(common.read_text().strip())
        return p if p.is_absolute() else (git_dir / p).resolve()
    return git_dir


def git_head(path: str | Path) -> dict[str, str] | None:
    """{'commit': sha, 'ref': name} for the repository holding `path`, or None outside one."""
    try:
        git_dir = _git_dir(Path(path))
        if git_dir is None:
            return None
        head = (git_dir / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return {"commit": head, "ref": "HEAD"}
        ref = head.removeprefix("ref:").strip()
        for base in (git_dir, _common_dir(git_dir)):
            loose = base / ref
            if loose.is_file():
                return {"commit": loose.read_text().strip(), "ref": ref}
        packed = _common_dir(git_dir) / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                sha, _, name = line.partition(" ")
                if name == ref:
                    return {"commit": sha, "ref": ref}
        return {"commit": "", "ref": ref}
    except OSError:
        return None
