"""docs/tracker.md is true: every command in it runs as written, in order, with the exit it states."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from medic.cli._main import _register, cli

_register()

DOC = Path(__file__).resolve().parents[2] / "docs" / "tracker.md"
BLOCK = re.compile(r"```(\w+)([^\n]*)\n(.*?)```", re.DOTALL)
EXITS = re.compile(r"#\s*exits (\d+)")


def _blocks() -> list[tuple[str, str, str]]:
    return [(m[1], m[2].strip(), m[3]) for m in BLOCK.finditer(DOC.read_text(encoding="utf-8"))]


def test_the_doc_has_commands_for_every_tracker_face() -> None:
    """The page shows signal, ingest, issues, incidents, report, export, import, db and demo."""
    commands = " ".join(body for lang, _, body in _blocks() if lang == "sh")
    for name in (
        "medic signal",
        "medic ingest",
        "medic issues show",
        "medic issues new",
        "medic issues edit",
        "medic issues merge",
        "medic issues resolve",
        "medic issues ignore",
        "medic incidents ack",
        "medic incidents mitigate",
        "medic incidents resolve",
        "medic incidents close",
        "medic incidents note",
        "medic incidents postmortem",
        "medic incidents action-item",
        "medic report",
        "medic export",
        "import",
        "medic db upgrade",
        "demo",
    ):
        assert name in commands, f"{name} is not shown in {DOC.name}"


def test_the_doc_names_every_export_row_type() -> None:
    """The export format section lists every row type, in replay order."""
    from medic.tracker import ROW_TYPES

    text = " ".join(DOC.read_text(encoding="utf-8").split())
    listed = ", ".join(f"`{name}`" for name in ROW_TYPES)
    assert listed in text


def test_every_command_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each `medic …` line of the doc in an empty directory; files come from its blocks."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner(env={"MEDIC_STORE": None, "USER": "docs", "COLUMNS": "120"})
    ran = 0
    for lang, name, body in _blocks():
        if name and lang != "sh":
            (tmp_path / name).write_text(body, encoding="utf-8")
    for lang, _, body in _blocks():
        if lang != "sh":
            continue
        for line in body.splitlines():
            if not line.startswith("medic "):
                continue
            expected = EXITS.search(line)
            code = int(expected[1]) if expected else 0
            args = shlex.split(line, comments=True)[1:]
            result = runner.invoke(cli, args)
            assert result.exit_code == code, (
                f"{line!r} exited {result.exit_code}, the doc says {code}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
            if expected:
                said = line.split(f"exits {code}:", 1)[-1].strip()
                assert said in result.stderr, f"{line!r}: stderr was {result.stderr!r}"
            ran += 1
    assert ran >= 25
    assert (tmp_path / "incident-1.html").read_text().startswith("<!DOCTYPE html>")
