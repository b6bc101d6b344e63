"""The docs keep up with the code: every config key and supervisor command is documented."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from pydantic import BaseModel

from medic.config import MedicConfig, parse_config
from medic.config import _schema as schema

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _keys() -> set[str]:
    keys: set[str] = set()
    models: list[type[BaseModel]] = [
        obj for obj in vars(schema).values()
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj is not BaseModel
    ]  # fmt: skip
    for model in models:
        keys.update(model.model_fields)
    return keys


@pytest.mark.parametrize("key", sorted(_keys()))
def test_every_config_key_is_in_the_configuration_docs(key: str) -> None:
    """A key the schema accepts but docs/configuration.md never mentions is a doc bug."""
    assert f"`{key}`" in (DOCS / "configuration.md").read_text()


def test_the_configuration_example_is_valid() -> None:
    """The example at the end of docs/configuration.md passes validation."""
    text = (DOCS / "configuration.md").read_text()
    example = re.findall(r"```toml\n(.*?)```", text, re.S)[-1]
    config = parse_config(example, path=Path("example.toml"), env={"DATABASE_URL": "postgres://x"})
    assert isinstance(config.model, MedicConfig)


@pytest.mark.parametrize(
    "command", ["check", "up", "status", "start", "stop", "restart", "logs", "reload", "down"]
)
def test_every_supervisor_command_is_documented_and_registered(command: str) -> None:
    """Each supervisor command exists in the CLI and in docs/supervisor.md's table."""
    from medic.cli._main import _register, cli

    _register()
    assert isinstance(cli.commands.get(command), click.Command)
    assert f"`medic {command}" in (DOCS / "supervisor.md").read_text()
