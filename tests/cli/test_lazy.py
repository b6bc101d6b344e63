"""The root command loads command modules on demand, from a table that cannot drift from them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from medic.cli._main import COMMANDS, _register, cli

_register()

# Everything below the CLI that a command may or may not need.
HEAVY = {"sqlalchemy", "alembic", "pydantic", "httpx", "medic.app._app", "medic.config"}
HEAVY |= {"medic.alerts", "medic.tracker", "medic.recovery", "medic.checkpoint", "rich"}


def test_the_table_names_every_registered_command() -> None:
    """Each command the modules register is in the table, and the table names no other."""
    assert set(cli.commands) == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_table_knows_each_commands_module_and_help(name: str) -> None:
    """The table names the module that defines the command and the short help click derives."""
    module, short_help = COMMANDS[name]
    command = cli.commands[name]
    assert command.callback is not None
    assert command.callback.__module__ == f"medic.cli.{module}"
    assert short_help == command.get_short_help_str(limit=10_000)
    # Shortened for any terminal, the table's help reads as the command's own.
    stand_in = click.Command(name, help=short_help)
    for limit in range(10, 130):
        assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit), limit


@pytest.mark.parametrize("columns", [50, 64, 80, 120])
def test_the_help_listing_is_clicks_own(columns: int) -> None:
    """With every command loaded, the root's listing is the one click.Group would print."""
    ctx = click.Context(cli, info_name="medic", terminal_width=columns)
    ours, clicks = ctx.make_formatter(), ctx.make_formatter()
    cli.format_commands(ctx, ours)
    click.Group.format_commands(cli, ctx, clicks)
    assert ours.getvalue() == clicks.getvalue()
    assert all(f"  {name} " in ours.getvalue() for name in COMMANDS)


# `python -m medic ARGS`, then the modules it imported as the last line of stderr
# (-X importtime would miss those imported through importlib).
PROBE = """
import atexit, json, runpy, sys
atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv[0] = "medic"
runpy.run_module("medic", run_name="__main__", alter_sys=True)
"""


def _medic(cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """`python -m medic ARGS` in a fresh interpreter, and the modules it imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIC_")}
    env["COLUMNS"] = "80"
    run = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True, text=True, timeout=60, cwd=cwd, env=env,
    )  # fmt: skip
    return run, set(json.loads(run.stderr.splitlines()[-1]))


def _heavy(imported: set[str]) -> set[str]:
    return {m for m in imported for h in HEAVY if m == h or m.startswith(h + ".")}


@pytest.mark.parametrize("flag", ["--help", "-h", "--version"])
def test_help_and_version_import_no_command(tmp_path: Path, flag: str) -> None:
    """`medic --help` and `--version` answer without importing any command or what it needs."""
    run, imported = _medic(tmp_path, flag)
    assert run.returncode == 0, run.stderr
    assert "medic.cli._main" in imported
    assert not {m for m in imported if m.endswith("_commands")}
    assert not _heavy(imported)


def test_help_lists_every_command_as_the_loaded_cli_does(tmp_path: Path) -> None:
    """The lazy listing, from the table, is byte for byte the help of the loaded commands."""
    run, _ = _medic(tmp_path, "--help")
    assert run.returncode == 0, run.stderr
    # COLUMNS=80 gives click's formatter 78 columns.
    ctx = click.Context(cli, info_name="medic", terminal_width=78, **cli.context_settings)
    loaded = cli.get_help(ctx)
    assert run.stdout == loaded + "\n"
    for name in COMMANDS:
        assert f"\n  {name} " in run.stdout


TRACKER_SKIPS = {"medic.app", "medic.config", "pydantic", "medic.alerts", "medic.recovery", "httpx"}
CHECKPOINT_SKIPS = {"medic.tracker", "sqlalchemy", "alembic", "medic.app._app", "medic.config"}


@pytest.mark.parametrize(
    ("args", "skips"),
    [
        (["--store", "medic.db", "incidents", "list"], TRACKER_SKIPS),
        (["--store", "medic.db", "issues", "list"], TRACKER_SKIPS),
        (["--store", "medic.db", "kpis", "--since", "1d"], TRACKER_SKIPS),
        (["checkpoint", "list", "--store-dir", "checkpoints"], CHECKPOINT_SKIPS | {"rich"}),
    ],
)
def test_a_command_imports_only_what_it_needs(
    tmp_path: Path, args: list[str], skips: set[str]
) -> None:
    """A tracker command skips the app, the config and alerts; a checkpoint command the tracker."""
    run, imported = _medic(tmp_path, *args)
    assert run.returncode == 0, run.stderr
    assert not {m for m in imported for s in skips if m == s or m.startswith(s + ".")}


def test_status_reaches_the_socket_without_the_app(tmp_path: Path) -> None:
    """`medic status` needs the control client only: no store, no config, no app, no events."""
    run, imported = _medic(tmp_path, "status")
    assert run.returncode == 1  # nothing is running here
    assert "medic.app._control" in imported
    assert not _heavy(imported)
    assert "medic.events" not in imported  # only `up` prints events
