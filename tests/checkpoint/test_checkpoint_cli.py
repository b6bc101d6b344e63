"""The checkpoint, rollback, backup and restore commands, through click, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ckpt_trees import mutate, tree_state
from click.testing import CliRunner

from medic.cli import cli
from medic.cli._main import _register

_register()


def _medic(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return r.exit_code, r.output


def test_create_list_show_diff_rollback_round_trip(tree: Path, tmp_path: Path) -> None:
    """A user checkpoints, edits, sees the diff, rolls back, and the tree is as it was."""
    store = str(tmp_path / "store")
    want = tree_state(tree)
    code, out = _medic("checkpoint", "create", str(tree), "--name", "base", "--store-dir", store)
    assert code == 0
    assert "checkpoint" in out
    assert "40 files" in out
    code, out = _medic("checkpoint", "list", "--store-dir", store, "--json")
    [doc] = json.loads(out)
    assert doc["name"] == "base"
    assert doc["files"] == 40
    mutate(tree, seed=1, modify=2, delete=1, add=1)
    code, out = _medic("checkpoint", "diff", "base", "--store-dir", store, "--json")
    actions = sorted(c["action"] for c in json.loads(out)["changes"])
    assert actions == ["remove", "restore", "restore", "restore"]
    code, out = _medic("rollback", "base", "--dry-run", "--store-dir", store)
    assert "would change 3 restored, 1 removed" in out
    code, out = _medic("rollback", "base", "--store-dir", store)
    assert code == 0
    assert "rolled back to" in out
    assert tree_state(tree) == want
    code, out = _medic("checkpoint", "show", "base", "--files", "--store-dir", store)
    assert "d0/f0.bin" in out
    code, out = _medic("checkpoint", "verify", "base", "--tree", "--store-dir", store, "--json")
    assert json.loads(out)["ok"] is True


def test_verify_exits_non_zero_on_a_damaged_store(tree: Path, tmp_path: Path) -> None:
    """A missing blob makes `checkpoint verify` list the problem and exit 1."""
    store = tmp_path / "store"
    _medic("checkpoint", "create", str(tree), "--store-dir", str(store))
    next((store / "objects").glob("??/*")).unlink()
    code, out = _medic("checkpoint", "verify", "--store-dir", str(store))
    assert code == 1
    assert "missing" in out


def test_prune_keeps_the_newest(tree: Path, tmp_path: Path) -> None:
    """prune --keep-last 1 leaves one checkpoint; without a policy it is a clear error."""
    store = str(tmp_path / "store")
    for i in range(3):
        (tree / "n.txt").write_text(str(i))
        _medic("checkpoint", "create", str(tree), "--store-dir", store)
    code, out = _medic("checkpoint", "prune", "--keep-last", "1", "--store-dir", store, "--json")
    assert len(json.loads(out)["removed"]) == 2
    code, out = _medic("checkpoint", "prune", "--store-dir", store)
    assert code == 1
    assert "--keep-last" in out


def test_backup_verify_test_and_restore(tree: Path, tmp_path: Path) -> None:
    """backup create/list/verify/test and restore work end to end with --json."""
    repo = str(tmp_path / "repo")
    code, out = _medic("backup", "create", str(tree), "--repo", repo, "--json")
    assert code == 0
    snap = json.loads(out)
    assert snap["kind"] == "full"
    code, out = _medic("backup", "verify", "--repo", repo, "--json")
    assert json.loads(out)["ok"] is True
    code, out = _medic("backup", "test", "--repo", repo)
    assert code == 0
    assert "restore test passed" in out
    code, out = _medic("backup", "list", "--repo", repo)
    assert "verified" in out
    target = tmp_path / "restored"
    code, out = _medic("restore", snap["id"], "--repo", repo, "--target", str(target), "--dry-run")
    assert "would restore" in out
    assert not target.exists()
    code, out = _medic("restore", snap["id"], "--repo", repo, "--target", str(target))
    assert code == 0
    assert tree_state(target) == tree_state(tree)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("rollback",), "either CHECKPOINT or --resume"),
        (("rollback", "nope"), "no checkpoint store"),
        (("rollback", "--resume"), "no checkpoint store"),
        (("checkpoint", "create", "missing-dir"), "not a directory"),
        (("restore", "x", "--repo", "r", "--target", "t"), "no checkpoint store"),
    ],
)
def test_errors_are_one_line_and_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], message: str
) -> None:
    """User mistakes end in one line naming the problem and a non-zero exit, no traceback."""
    monkeypatch.chdir(tmp_path)
    code, out = _medic(*args)
    assert code != 0
    assert message in out
    assert "Traceback" not in out


def test_default_store_is_dot_medic_in_the_current_directory(tmp_path: Path) -> None:
    """Without --store-dir, checkpoints go to .medic/checkpoints where medic runs."""
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "a.txt").write_text("a")
    r = subprocess.run(
        [sys.executable, "-m", "medic", "checkpoint", "create", "work"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / ".medic" / "checkpoints" / "medic-store.json").is_file()
