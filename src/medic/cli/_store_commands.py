"""Whole-record commands: the post-incident report, export/import, `db upgrade`, `demo`."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import click

from medic.cli._incident_commands import print_incidents
from medic.cli._issue_commands import print_issues
from medic.cli._kpi_commands import kpi_table
from medic.cli._main import Obj, cli
from medic.cli._render import console, echo_json, json_option, open_tracker
from medic.errors import InvalidInput
from medic.tracker import (
    ImportFailed,
    build_report,
    export_record,
    import_record,
    record_demo,
    render_report,
    upgrade_store,
)

__all__: list[str] = []


@cli.command("report")
@click.argument("incident_id", type=int, required=False)
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default="-")
@click.pass_context
def report_command(ctx: click.Context, incident_id: int | None, fmt: str, output: str) -> None:
    """The post-incident report, pre-filled from the record (default: the latest incident).

    The Google SRE book's postmortem template, as Markdown or self-contained HTML.
    """
    tracker = open_tracker(ctx)
    if incident_id is None:
        latest = tracker.incidents(limit=1).items
        if not latest:
            raise InvalidInput("report: the store holds no incident yet")
        incident_id = latest[0].id
    report = build_report(tracker, incident_id)
    text = render_report(report, format="html" if fmt == "html" else "md")
    if output == "-":
        click.echo(text, nl=False)
    else:
        _write_atomically(Path(output), text)
        click.echo(f"wrote {output}", err=True)


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[TextIO]:
    """Write beside the target and rename, so a failure never leaves half a file behind."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot write: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
        os.replace(tmp, path)
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot write: {exc.strerror or exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_atomically(path: Path, text: str) -> None:
    with _atomic(path) as handle:
        handle.write(text)


@cli.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default="-")
@click.pass_context
def export_command(ctx: click.Context, output: str) -> None:
    """Write the whole record as JSON Lines.

    One row per line with a `type` field, in the order `medic import` replays them.
    """
    tracker = open_tracker(ctx)
    if output == "-":
        counts = export_record(tracker, sys.stdout)
    else:
        with _atomic(Path(output)) as handle:
            counts = export_record(tracker, handle)
    summary = ", ".join(f"{n} {name}" for name, n in counts.items() if n)
    click.echo(f"exported {summary or 'an empty store'}", err=True)


@cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@json_option
@click.pass_context
def import_command(ctx: click.Context, path: str, as_json: bool) -> None:
    """Load an export: all of it, or nothing on a bad line.

    Into an empty store ids are kept; into a non-empty one rows already present are
    skipped, so importing the same file twice changes nothing.
    """
    tracker = open_tracker(ctx)
    try:
        with click.open_file(path, "rb") as stream:
            result = import_record(tracker, stream)
    except ImportFailed as exc:
        for line in exc.errors:
            click.echo(f"{path}: {line}", err=True)
        raise
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if as_json:
        echo_json(result)
        return
    added = ", ".join(f"{n} {name}" for name, n in result.inserted.items() if n) or "nothing new"
    known = sum(result.skipped.values())
    ids = "ids kept" if result.kept_ids else "new ids assigned"
    click.echo(f"imported {added} ({known} row(s) already present; {ids})")


@cli.group("db")
def db_group() -> None:
    """The store's schema."""


@db_group.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Migrate the store to the newest schema (Alembic).

    A fresh store migrates itself when first opened; this does it on demand.
    """
    obj = ctx.find_object(Obj)
    url = obj.store_url() if obj else ".medic/medic.db"
    revision = upgrade_store(url)
    click.echo(f"store at revision {revision}")


@cli.command("demo")
@click.option("--seed", default=7, show_default=True, type=int, help="Same seed, same stream.")
@click.option("--days", default=7.0, show_default=True, type=click.FloatRange(0.1, 365))
@click.option(
    "--episodes", default=36, show_default=True, type=click.IntRange(1, 10_000), help="Outages."
)
@click.pass_context
def demo_command(ctx: click.Context, seed: int, days: float, episodes: int) -> None:
    """Record realistic failures from four services; show them.

    A week of outages of a web app, an API fleet, a storage service and a worker,
    healed by medic or handled by people; then the issues, incidents and KPIs.
    """
    obj = ctx.find_object(Obj)
    url = obj.store_url() if obj else ".medic/medic.db"
    summary = record_demo(url, seed=seed, days=days, episodes=episodes)
    tracker = open_tracker(ctx)
    if summary.skipped == summary.episodes:
        click.echo(f"the demo stream for seed {seed} is already in {tracker.url}")
    else:
        click.echo(
            f"recorded {summary.signals} signals from {summary.episodes - summary.skipped} "
            f"outages over {days:g} days into {tracker.url}"
        )
    print_issues(tracker.issues(limit=20).items)
    print_incidents(tracker.incidents(limit=15).items, title="Latest incidents")
    until = datetime.now(UTC)
    report = tracker.kpis(since=until - timedelta(days=days), until=until)
    console().print(kpi_table(report))
    click.echo("next: medic incidents show ID · medic issues show ID · medic report ID")
