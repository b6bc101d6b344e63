"""What the tracker commands share: opening the store, durations, JSON and Rich tables.

Every string that came from the record is put in a table as `rich.text.Text`,
never as markup, so a message holding ``[bold]`` or an escape sequence prints as
written instead of restyling the terminal.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from medic.cli._main import Obj
from medic.clock import parse_duration as _parse_duration
from medic.errors import InvalidInput
from medic.tracker import Tracker, jsonable

__all__ = [
    "actor_option",
    "ago",
    "clean",
    "console",
    "echo_json",
    "json_option",
    "open_tracker",
    "parse_duration",
    "table",
    "when",
]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def open_tracker(ctx: click.Context) -> Tracker:
    obj = ctx.find_object(Obj)
    if obj is None:
        raise click.UsageError("medic: run through the root command")
    tracker = obj.open_tracker()
    ctx.call_on_close(tracker.close)
    return tracker


def console() -> Console:
    """A console on the current stdout: the terminal's width, or 120 columns into a pipe."""
    out = Console(highlight=False, soft_wrap=False)
    if not out.is_terminal and not os.environ.get("COLUMNS"):
        out = Console(highlight=False, soft_wrap=False, width=120)
    return out


def echo_json(value: Any) -> None:
    click.echo(json.dumps(jsonable(value), indent=2, ensure_ascii=False))


def json_option(func: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(
        func
    )


def actor_option(func: Any) -> Any:
    return click.option(
        "--actor",
        default=lambda: os.environ.get("USER") or "cli",
        show_default="$USER",
        help="Who does this, for the timeline.",
    )(func)


def parse_duration(value: str, what: str) -> timedelta:
    """The kernel's duration parser ('250ms', '15m', '7d', '1h30m'), with the option named."""
    try:
        return _parse_duration(value)
    except ValueError as exc:
        raise InvalidInput(f"{what}: {exc}") from None


def clean(value: object, limit: int = 200) -> Text:
    """Record text for a terminal cell: control characters shown, not obeyed; one line."""
    text = _CONTROL.sub("�", str(value)).replace("\n", " ⏎ ").replace("\t", " ")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return Text(text)


def when(moment: datetime | None) -> str:
    return "—" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "—"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if seconds < 0:
        return when(moment)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def table(
    title: str | None, headers: Sequence[str], rows: Iterable[Sequence[object]], **kw: Any
) -> Table:
    out = Table(title=title, title_justify="left", header_style="bold", **kw)
    for header in headers:
        out.add_column(header, overflow="fold")
    for row in rows:
        out.add_row(*(cell if isinstance(cell, Text) else clean(cell) for cell in row))
    return out
