"""The project's strict gates run as part of the one test command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(("ruff", "check", "src", "tests", "bench"), id="ruff-check"),
        pytest.param(("ruff", "format", "--check", "src", "tests", "bench"), id="ruff-format"),
        pytest.param(("mypy",), id="mypy-strict"),
        pytest.param(("lint-imports",), id="import-layers"),
    ],
)
def test_gate_passes(argv: tuple[str, ...]) -> None:
    """ruff, mypy --strict and the layer contracts of DESIGN.md all pass."""
    tool = BIN / argv[0]
    result = _run(str(tool), *argv[1:])
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}"


def test_import_medic_stays_light() -> None:
    """`import medic` pulls in neither SQLAlchemy nor a web or CLI framework."""
    code = (
        "import sys, medic, medic.taxonomy, medic.events, medic.clock;"
        "bad = [m for m in ('sqlalchemy', 'click', 'rich', 'pydantic', 'starlette') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
