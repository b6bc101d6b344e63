"""What the tracker commands share: opening the store, durations, JSON and Rich tables.

Every string that came from the record is put in a table as `rich.text.Text` or
a plain `Segment`, never as markup, so a message holding ``[bold]`` or an escape sequence prints as
written instead of restyling the terminal.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click
from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text

from medic.cli._main import Obj
from medic.clock import parse_duration as _parse_duration
from medic.errors import InvalidInput

if TYPE_CHECKING:
    from medic.tracker import Tracker

__all__ = [
    "Grid",
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
    from medic.tracker import jsonable  # the tracker's JSON rules, loaded only when printing

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
    return Text(_one_line(value, limit))


def _one_line(value: object, limit: int = 200) -> str:
    text = _CONTROL.sub("�", str(value)).replace("\n", " ⏎ ").replace("\t", " ")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


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


class Grid:
    """A list as a table drawn like Rich's, one line per row, cells cut to fit instead of wrapped.

    Rich's `Table` measures, pads and wraps every cell as its own renderable, which
    cost a 50-row `medic incidents list` several times the query behind it (issue 2
    asks for p99 < 50 ms on a big store). A list is scanned row by row, so a cell cut
    with an ellipsis reads as well as a wrapped one, and drawing the lines directly
    costs a few milliseconds. Cells go through `clean`, so record text is shown,
    never obeyed.
    """

    def __init__(
        self,
        title: str | None,
        headers: Sequence[str],
        rows: Iterable[Sequence[object]],
    ) -> None:
        self.title = title
        self.headers = [_one_line(h) for h in headers]
        self.rows = [[_one_line(cell) for cell in row] for row in rows]

    def widths(self, max_width: int) -> list[int]:
        """Each column as wide as its widest cell; to fit, the widest is cut first.

        Columns keep their header's width (at least 8) while another can give; only a
        terminal too narrow for that cuts them further, down to 3.
        """
        widths = [cell_len(h) for h in self.headers]
        for row in self.rows:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], cell_len(cell))
        excess = sum(widths) + 3 * len(widths) + 1 - max_width
        for floors in ([max(cell_len(h), 8) for h in self.headers], [3] * len(widths)):
            while excess > 0:
                above = [i for i, w in enumerate(widths) if w > floors[i]]
                if not above:
                    break
                widest = max(above, key=widths.__getitem__)
                widths[widest] -= 1
                excess -= 1
        return widths

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        widths = self.widths(options.max_width)
        line = Segment.line()

        def bar(left: str, fill: str, mid: str, end: str) -> list[Segment]:
            return [Segment(left + mid.join(fill * (w + 2) for w in widths) + end), line]

        def cells(values: Sequence[str], edge: str, style: Style | None = None) -> list[Segment]:
            fitted = []
            for value, width in zip(values, widths, strict=True):
                size = cell_len(value)
                if size > width:
                    fitted.append(set_cell_size(value, width - 1) + "…")
                else:
                    fitted.append(value + " " * (width - size))
            return [Segment(f"{edge} " + f" {edge} ".join(fitted) + f" {edge}", style), line]

        if self.title:
            yield Segment(self.title, console.get_style("table.title"))
            yield line
        yield from bar("┏", "━", "┳", "┓")
        yield from cells(self.headers, "┃", console.get_style("table.header"))
        yield from bar("┡", "━", "╇", "┩")
        for row in self.rows:
            yield from cells(row, "│")
        yield from bar("└", "─", "┴", "┘")
