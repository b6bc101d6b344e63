"""The root `medic` command, its global options and how errors reach the user.

Every failure the user can cause ends as one line on stderr naming the problem
and a non-zero exit; a traceback means a medic bug.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from medic._version import __version__
from medic.errors import MedicError, UserError

if TYPE_CHECKING:
    from medic.tracker import Tracker

__all__ = ["COMMANDS", "Obj", "cli", "main"]

DEFAULT_CONFIG = "medic.toml"


@dataclass
class Obj:
    """What the root command hands to every subcommand."""

    store: str | None
    config: Path | None

    def open_tracker(self) -> Tracker:
        """The store as the config describes it: its grouping rules, severities, categories."""
        from medic.tracker import Tracker

        if self.config is not None and self.config.is_file():
            # Only a config needs medic.config (pydantic and every section's model).
            from medic.config import load_config, tracker_settings

            return tracker_settings(load_config(self.config)).open(self.store_url())
        return Tracker(self.store_url())

    def store_url(self) -> str:
        """The store's URL: --store, then $MEDIC_STORE, then .medic/medic.db beside the config.

        Without a config file the default store lives in the current directory.
        """
        if self.store:
            return self.store
        base = self.config.resolve().parent if self.config is not None else Path.cwd()
        return str(base / ".medic" / "medic.db")


# Every top-level command: the module (under medic.cli) that defines it and the
# short help click derives from its docstring. `medic --help` and `--version`
# read this table instead of importing the command modules, which pull in
# SQLAlchemy, pydantic and the app; tests/cli/test_lazy.py fails when the
# table and the modules disagree.
COMMANDS: dict[str, tuple[str, str]] = {
    "alerts": (
        "_alert_commands",
        "Alert channels from medic.toml: list them, send a test notification.",
    ),
    "backup": (
        "_checkpoint_commands",
        "Full and incremental backups into a repository directory, verified and restore-tested.",
    ),
    "check": ("_supervisor_commands", "Validate medic.toml without running anything."),
    "checkpoint": (
        "_checkpoint_commands",
        "Snapshots of directories and SQLite databases that rollback can return to.",
    ),
    "db": ("_store_commands", "The store's schema."),
    "demo": ("_store_commands", "Record realistic failures from four services; show them."),
    "down": (
        "_supervisor_commands",
        "Stop every service (reverse dependency order) and end `medic up`.",
    ),
    "export": ("_store_commands", "Write the whole record as JSON Lines."),
    "import": ("_store_commands", "Load an export: all of it, or nothing on a bad line."),
    "incidents": ("_incident_commands", "Outages in time, and their lifecycle."),
    "ingest": ("_tracker_commands", "Record the signals of a JSON Lines file ('-': stdin)."),
    "issues": ("_issue_commands", "Classes of failure, grouped by fingerprint."),
    "kpis": (
        "_kpi_commands",
        "MTTD, MTTA, MTTR (four kinds), MTBF, availability and rates over a window.",
    ),
    "logs": ("_supervisor_commands", "Print SERVICE's recent output (and follow it with -f)."),
    "reload": (
        "_supervisor_commands",
        "Apply medic.toml changes, restarting only the services that changed.",
    ),
    "report": (
        "_store_commands",
        "The post-incident report, pre-filled from the record (default: the latest incident).",
    ),
    "restart": ("_supervisor_commands", "Stop SERVICE gracefully and start it again."),
    "restore": (
        "_checkpoint_commands",
        "Restore SNAPSHOT from --repo into --target; unsafe snapshots are refused whole.",
    ),
    "rollback": (
        "_checkpoint_commands",
        "Bring the checkpointed trees and databases back to CHECKPOINT, then verify.",
    ),
    "runbook": (
        "_runbook_commands",
        "Declared procedures: context → action → verification, with dry run and confirmation.",
    ),
    "signal": ("_tracker_commands", "Record one failure signal."),
    "start": (
        "_supervisor_commands",
        "Start SERVICE now (skips any backoff or crash-loop cooldown).",
    ),
    "status": (
        "_supervisor_commands",
        "Each service: state, pid, uptime, restarts, health and the last probe result.",
    ),
    "stop": (
        "_supervisor_commands",
        "Stop SERVICE gracefully; it stays stopped until `medic start`.",
    ),
    "up": (
        "_supervisor_commands",
        "Start every service and keep them alive until Ctrl-C, SIGTERM or `medic down`.",
    ),
}


class MedicGroup(click.Group):
    """Loads a command's module only when that command runs, and turns medic's errors into one line.

    Importing a command module registers its commands on `cli` (through the
    `@cli.command` decorators), so the group only has to import the module the
    table names; the help listing needs no import at all.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(f"medic.cli.{COMMANDS[cmd_name][0]}")
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # As click.Group.format_commands, but a command not loaded yet is shown by
        # a stand-in carrying its table help, which click shortens the same way.
        rows: list[tuple[str, Callable[[int], str]]] = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name) or click.Command(name, help=COMMANDS[name][1])
            if not command.hidden:
                rows.append((name, command.get_short_help_str))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, short(limit)) for name, short in rows])

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            raise click.ClickException(str(exc)) from exc
        except MedicError as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc


@click.group(cls=MedicGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="medic")
@click.option(
    "--store",
    envvar="MEDIC_STORE",
    metavar="URL",
    help="Store URL or SQLite path (env MEDIC_STORE). "
    "Default: .medic/medic.db beside the config file, or in the current directory.",
)
@click.option(
    "-c",
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"medic.toml to use (default: ./{DEFAULT_CONFIG} when it exists).",
)
@click.pass_context
def cli(ctx: click.Context, store: str | None, config: Path | None) -> None:
    """medic keeps services alive and tells the truth about their failures."""
    if config is None and Path(DEFAULT_CONFIG).is_file():
        config = Path(DEFAULT_CONFIG)
    ctx.obj = Obj(store=store, config=config)


def _register() -> None:
    """Load every command module, so that `cli.commands` holds them all (for tests and docs)."""
    for module in sorted({module for module, _ in COMMANDS.values()}):
        importlib.import_module(f"medic.cli.{module}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `medic` console script."""
    cli.main(args=argv, prog_name="medic", standalone_mode=True)
