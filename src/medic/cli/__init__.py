"""The command line: `medic …`. Click lives here and nowhere else."""

from medic.cli._main import cli, main

__all__ = ["cli", "main"]
