"""Commands that read and write the tracker: signals, ingest, issues and incidents.

Input is validated by the tracker's own wire parser (the same one the HTTP API
uses), so `medic signal` and a JSONL line accept exactly the same things.
Reports, export/import, `db upgrade` and `demo` live in `_store_commands`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import IO, Any

import click

from medic.cli._main import cli
from medic.cli._render import echo_json, json_option, open_tracker
from medic.errors import InvalidInput
from medic.events import Signal
from medic.tracker import (
    MAX_PAYLOAD_BYTES,
    RecordResult,
    Tracker,
    parse_signal_line,
    read_lines,
)
from medic.tracker import signal_from_json as _signal_from_json

__all__: list[str] = []

BATCH = 1000
MAX_BAD_SHOWN = 100


@cli.command("signal")
@click.option("--service", required=True, help="The service that failed.")
@click.option("--message", required=True, help="What was seen.")
@click.option("--kind", help="connection, timeout, auth, permission, resource, data-integrity, …")
@click.option("--severity", help="SEV1 (worst) to SEV4.")
@click.option("--fingerprint", multiple=True, help="Group into an issue by this (repeatable).")
@click.option("--dedup-key", help="Group into an incident by this (default: service:NAME).")
@click.option(
    "--action",
    type=click.Choice(["trigger", "acknowledge", "mitigate", "resolve"]),
    default="trigger",
    show_default=True,
    help="What the signal does to its incident.",
)
@click.option("--source", default="cli", show_default=True, help="Who reports it.")
@click.option("--external-id", help="Idempotency key: the same source + id is stored once.")
@click.option("--probe", help="The health probe that failed.")
@click.option("--reason", help="Why the probe failed.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A tag (repeatable).")
@json_option
@click.pass_context
def signal_command(ctx: click.Context, /, as_json: bool, **options: Any) -> None:
    """Record one failure signal.

    It lands in an issue (by fingerprint) and an incident (by dedup key).
    """
    payload: dict[str, Any] = {k: v for k, v in options.items() if v not in (None, (), "")}
    if "fingerprint" in payload:
        payload["fingerprint"] = list(payload["fingerprint"])
    if "tags" in payload:
        payload["tags"] = dict(_tag(t) for t in payload["tags"])
    signal = _signal_from_json(payload, where="signal")
    result = open_tracker(ctx).record(signal)
    if as_json:
        echo_json(result)
        return
    click.echo(_describe(result))


def _tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise InvalidInput(f"--tag: expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def _describe(r: RecordResult) -> str:
    if r.duplicate:
        return (
            f"already recorded as event {r.event_id} (issue {r.issue_id}, incident {r.incident_id})"
        )
    parts = [f"recorded event {r.event_id}"]
    if r.issue_id is not None:
        parts.append(f"issue {r.issue_id}{' (new)' if r.new_issue else ''}")
    if r.incident_id is not None:
        parts.append(f"incident {r.incident_id}{' (new)' if r.new_incident else ''}")
    else:
        parts.append("no open incident for its dedup key")
    return " → ".join(parts)


# -- ingest --------------------------------------------------------------------------


@cli.command("ingest")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@json_option
@click.pass_context
def ingest_command(ctx: click.Context, path: str, as_json: bool) -> None:
    """Record the signals of a JSON Lines file ('-': stdin).

    Bad lines are reported with their line numbers on stderr and skipped; the good
    ones are recorded in batches. Exits 1 when any line was bad.
    """
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    tracker = open_tracker(ctx)
    name = "<stdin>" if path == "-" else path
    stats = {
        "lines": 0,
        "recorded": 0,
        "duplicates": 0,
        "bad": 0,
        "new_issues": 0,
        "new_incidents": 0,
    }
    err = Console(stderr=True, highlight=False)

    def bad(message: str) -> None:
        stats["bad"] += 1
        if stats["bad"] <= MAX_BAD_SHOWN:
            click.echo(message, err=True)

    stream = click.open_file(path, "rb")
    size = _size(stream)
    progress = Progress(
        TextColumn("ingest"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    with stream, progress:
        task = progress.add_task("ingest", total=size)
        batch: list[tuple[int, Signal]] = []
        unreported = 0
        for number, raw, consumed in read_lines(stream, limit=MAX_PAYLOAD_BYTES):
            unreported += consumed
            stats["lines"] += 1
            if raw is None:
                bad(f"{name}:{number}: line longer than {MAX_PAYLOAD_BYTES} bytes")
                continue
            if not raw.strip():
                continue
            try:
                batch.append((number, parse_signal_line(raw, where=f"{name}:{number}")))
            except InvalidInput as exc:
                bad(str(exc))
            if len(batch) >= BATCH:
                _flush(tracker, batch, stats, bad, name)
                progress.advance(task, unreported)
                unreported = 0
        _flush(tracker, batch, stats, bad, name)
        progress.advance(task, unreported)
    if stats["bad"] > MAX_BAD_SHOWN:
        click.echo(f"{name}: … and {stats['bad'] - MAX_BAD_SHOWN} more bad lines", err=True)
    if as_json:
        echo_json({"file": name, **stats})
    else:
        click.echo(
            f"{name}: {stats['recorded']} signal(s) recorded ({stats['duplicates']} already "
            f"known), {stats['new_issues']} new issue(s), {stats['new_incidents']} new "
            f"incident(s); {stats['bad']} bad line(s) skipped"
        )
    if stats["bad"]:
        ctx.exit(1)


def _size(stream: IO[bytes]) -> int | None:
    try:
        return os.fstat(stream.fileno()).st_size or None
    except (OSError, ValueError, AttributeError):
        return None


def _flush(
    tracker: Tracker,
    batch: list[tuple[int, Signal]],
    stats: dict[str, int],
    bad: Callable[[str], None],
    name: str,
) -> None:
    if not batch:
        return
    try:
        results = tracker.record_many([s for _, s in batch])
    except InvalidInput:
        # The wire parser and the recorder disagree about one line: find it, keep the rest.
        results = []
        for number, signal in batch:
            try:
                results.append(tracker.record(signal))
            except InvalidInput as exc:
                bad(f"{name}:{number}: {exc}")
    for r in results:
        stats["duplicates" if r.duplicate else "recorded"] += 1
        stats["new_issues"] += r.new_issue
        stats["new_incidents"] += r.new_incident
    batch.clear()
