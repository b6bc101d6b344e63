"""The root `medic` command, its global options and how errors reach the user.

Every failure the user can cause ends as one line on stderr naming the problem
and a non-zero exit; a traceback means a medic bug.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from medic._version import __version__
from medic.errors import MedicError, UserError

if TYPE_CHECKING:
    from medic.tracker import Tracker

__all__ = ["Obj", "cli", "main"]

DEFAULT_CONFIG = "medic.toml"


@dataclass
class Obj:
    """What the root command hands to every subcommand."""

    store: str | None
    config: Path | None

    def open_tracker(self) -> Tracker:
        """The store as the config describes it: its grouping rules, severities, categories."""
        from medic.config import load_config, tracker_settings
        from medic.tracker import Tracker

        if self.config is not None and self.config.is_file():
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


class MedicGroup(click.Group):
    """Turns medic's own errors into one clear line and an exit code."""

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
    # Each face module adds its commands to `cli`; importing it is registering it.
    import medic.cli._alert_commands
    import medic.cli._checkpoint_commands
    import medic.cli._runbook_commands  # noqa: F401
    from medic.cli import _kpi_commands, _supervisor_commands, _tracker_commands  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `medic` console script."""
    _register()
    cli.main(args=argv, prog_name="medic", standalone_mode=True)
