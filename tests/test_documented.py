"""The docs keep up with the code: every command and event name is documented."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

import medic.events
from medic.cli import cli
from medic.cli._main import _register

ROOT = Path(__file__).resolve().parent.parent


def _docs_text() -> str:
    parts = [(ROOT / "README.md").read_text()]
    parts += [p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(parts)


def _command_paths(group: click.Group, prefix: str = "medic") -> list[str]:
    paths = []
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        paths.append(path)
        if isinstance(command, click.Group):
            paths.extend(_command_paths(command, path))
    return paths


_register()


@pytest.mark.parametrize("path", _command_paths(cli))
def test_every_cli_command_is_documented(path: str) -> None:
    """Each `medic …` command appears in README.md or docs/ by its full name."""
    words = path.split()
    pattern = r"\b" + r"\s+(?:\[?[-\w=./ ]*\]?\s+)?".join(map(re.escape, words)) + r"\b"
    assert re.search(pattern, _docs_text()), f"`{path}` is not mentioned in README.md or docs/"


@pytest.mark.parametrize("name", sorted(medic.events.__all__))
def test_every_event_name_is_documented(name: str) -> None:
    """Each public event type is named in the docs."""
    assert re.search(rf"\b{re.escape(name)}\b", _docs_text()), f"event {name} is not documented"
