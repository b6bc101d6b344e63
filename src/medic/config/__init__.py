"""The assembly layer's parsers of user files: here, runbook files."""

from medic.config._runbooks import (
    RUNBOOK_SUFFIXES,
    load_runbook_file,
    load_runbooks,
    parse_runbook,
)

__all__ = ["RUNBOOK_SUFFIXES", "load_runbook_file", "load_runbooks", "parse_runbook"]
