"""docs/checkpoints.md: every command block runs as written, and every command is documented."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "checkpoints.md"


@pytest.mark.slow
def test_every_command_block_runs_as_written(tmp_path: Path) -> None:
    """The sh blocks, run in order in an empty directory, all succeed."""
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 5
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("MEDIC_CHECKPOINTS", None)
    for block in blocks:
        r = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert r.returncode == 0, f"block failed:\n{block}\n{r.stdout}\n{r.stderr}"
    assert (tmp_path / "restored" / "data" / "conf" / "app.ini").read_text() == "workers = 8\n"


def test_every_command_and_event_is_documented() -> None:
    """Each checkpoint command and event name appears in the docs."""
    text = DOC.read_text()
    for words in [
        "checkpoint create",
        "checkpoint list",
        "checkpoint show",
        "checkpoint diff",
        "checkpoint verify",
        "checkpoint prune",
        "rollback --resume",
        "backup create",
        "backup verify",
        "backup test",
        "backup list",
        "medic restore",
        "CheckpointCreated",
        "RollbackCompleted",
        "RollbackFailed",
        "BackupCreated",
        "BackupFailed",
        "BackupVerified",
        "BackupTested",
        "RestoreCompleted",
        "RpoBreached",
    ]:
        assert words in text, words
