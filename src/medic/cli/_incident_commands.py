"""`medic incidents …`: outages in time, their lifecycle and their timeline."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
from rich.text import Text

from medic.cli._main import cli
from medic.cli._render import (
    Grid,
    actor_option,
    ago,
    clean,
    console,
    echo_json,
    json_option,
    open_tracker,
    parse_duration,
    table,
    when,
)
from medic.errors import InvalidInput
from medic.tracker import (
    POSTMORTEM_SECTIONS,
    IncidentStatus,
    IncidentView,
    ResolutionKind,
    ResolutionReason,
)

__all__: list[str] = []


@cli.group("incidents")
def incidents_group() -> None:
    """Outages in time, and their lifecycle.

    triggered → acknowledged → mitigated → resolved → closed, or cancelled.
    """


@incidents_group.command("list")
@click.option("--service", help="Only this service.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in IncidentStatus]),
    help="Only these statuses (repeatable).",
)
@click.option("--open", "only_open", is_flag=True, help="Only triggered, acknowledged, mitigated.")
@click.option("--severity", help="Only this severity (SEV1–SEV4).")
@click.option("--since", help="Only those triggered in the last 30m, 24h, 7d, …")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--cursor", type=int, help="The next_cursor of the previous page.")
@json_option
@click.pass_context
def list_incidents(
    ctx: click.Context,
    service: str | None,
    statuses: tuple[str, ...],
    only_open: bool,
    severity: str | None,
    since: str | None,
    limit: int,
    cursor: int | None,
    as_json: bool,
) -> None:
    """Incidents, newest first."""
    wanted = list(statuses)
    if only_open:
        wanted += [s.value for s in IncidentStatus if s.value in _OPEN]
    start = datetime.now(UTC) - parse_duration(since, "--since") if since else None
    page = open_tracker(ctx).incidents(
        service=service, status=wanted, severity=severity, since=start, cursor=cursor, limit=limit
    )
    if as_json:
        echo_json(page)
        return
    print_incidents(page.items)
    if page.next_cursor is not None:
        click.echo(f"more: medic incidents list --cursor {page.next_cursor}")


_OPEN = {"triggered", "acknowledged", "mitigated"}


def print_incidents(items: list[IncidentView], title: str = "Incidents") -> None:
    console().print(
        Grid(
            title,
            ["ID", "Sev", "Status", "Service", "Title", "Triggered", "Lasted", "Resolved by", "L"],
            [
                [
                    i.id,
                    i.severity,
                    i.status,
                    i.service,
                    clean(i.title, 48),
                    ago(i.triggered_at),
                    _lasted(i),
                    (i.resolution_kind or "").replace("_", " ") or "—",
                    f"L{i.escalation_level}",
                ]
                for i in items
            ],
        )
    )


def _lasted(i: IncidentView) -> str:
    end = i.resolved_at or i.closed_at
    if end is None:
        return "ongoing" if i.status in _OPEN else "—"
    seconds = (end - i.impact_started_at).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


@incidents_group.command("show")
@click.argument("incident_id", type=int)
@json_option
@click.pass_context
def show_incident(ctx: click.Context, incident_id: int, as_json: bool) -> None:
    """One incident: timestamps, issues, recovery, timeline."""
    tracker = open_tracker(ctx)
    incident = tracker.incident(incident_id)
    issues = [tracker.issue(i) for i in incident.issue_ids[:50]]
    attempts = tracker.recovery_attempts(incident_id)
    timeline = tracker.timeline(incident_id)
    if as_json:
        echo_json(
            {
                "incident": incident,
                "issues": issues,
                "recovery_attempts": attempts,
                "timeline": timeline,
            }
        )
        return
    out = console()
    fields: list[tuple[str, object]] = [
        ("Service", incident.service),
        ("Severity", incident.severity),
        ("Status", incident.status),
        ("Dedup key", incident.dedup_key),
        ("Signals", incident.signal_count),
        (
            "Escalation",
            f"L{incident.escalation_level}"
            + (
                f", next at {when(incident.next_escalation_at)}"
                if incident.next_escalation_at
                else ""
            ),
        ),
        ("Commander", incident.commander or "—"),
        ("Resolution", f"{incident.resolution_kind or '—'} / {incident.resolution_reason or '—'}"),
        ("Related", ", ".join(f"#{i}" for i in incident.related) or "—"),
    ]
    if incident.merged_into is not None:
        fields.append(("Merged into", f"#{incident.merged_into}"))
    for label, moment in (
        ("Impact started", incident.impact_started_at),
        ("Detected", incident.detected_at),
        ("Triggered", incident.triggered_at),
        ("Acknowledged", incident.acknowledged_at),
        ("Mitigated", incident.mitigated_at),
        ("Resolved", incident.resolved_at),
        ("Closed", incident.closed_at),
    ):
        fields.append((label, when(moment)))
    out.print(Text(f"Incident #{incident.id}: {clean(incident.title, 300)}", style="bold"))
    out.print(table(None, ["Field", "Value"], fields))
    out.print(
        table(
            "Issues behind it",
            ["Issue", "Sev", "Status", "Title", "Seen"],
            [[f"#{i.id}", i.severity, i.status, clean(i.title, 80), i.times_seen] for i in issues],
        )
    )
    if attempts:
        out.print(
            table(
                "Recovery attempts",
                ["Started", "Action", "Attempt", "Outcome", "Took", "Error"],
                [
                    [
                        when(a.started_at),
                        a.action,
                        a.attempt,
                        a.outcome or "running",
                        f"{a.duration_s:.2f}s" if a.duration_s is not None else "—",
                        clean(a.error or "", 60),
                    ]
                    for a in attempts
                ],
            )
        )
    out.print(
        table(
            "Timeline",
            ["At", "Actor", "Kind", "Entry"],
            [
                [when(e.at), f"{e.actor} ({e.actor_kind})", e.kind, clean(e.message, 100)]
                for e in timeline
            ],
        )
    )


def _transition(verb: str, help_text: str) -> None:
    """One command per lifecycle step; the tracker's table decides what is legal."""

    @incidents_group.command(verb, help=help_text)
    @click.argument("incident_id", type=int)
    @click.option("--note", help="Why, for the timeline.")
    @actor_option
    @json_option
    @click.pass_context
    def command(
        ctx: click.Context, incident_id: int, note: str | None, actor: str, as_json: bool
    ) -> None:
        tracker = open_tracker(ctx)
        method = {
            "ack": tracker.acknowledge,
            "mitigate": tracker.mitigate,
            "close": tracker.close_incident,
            "cancel": tracker.cancel,
        }[verb]
        _done(method(incident_id, actor=actor, note=note), as_json)


_transition("ack", "Acknowledge: a person has taken the incident; paging stops.")
_transition("mitigate", "Mitigated: the impact stopped, though the cause may remain.")
_transition("close", "Close a resolved incident: the follow-up is done.")
_transition("cancel", "Cancel a false positive: it does not count as an outage.")


@incidents_group.command("resolve")
@click.argument("incident_id", type=int)
@click.option(
    "--kind",
    type=click.Choice([k.value for k in ResolutionKind]),
    default=ResolutionKind.HUMAN.value,
    show_default=True,
    help="Who or what ended it.",
)
@click.option(
    "--reason",
    type=click.Choice([r.value for r in ResolutionReason]),
    default=ResolutionReason.FIXED.value,
    show_default=True,
)
@click.option("--note", help="Why, for the timeline.")
@actor_option
@json_option
@click.pass_context
def resolve_incident(
    ctx: click.Context,
    incident_id: int,
    kind: str,
    reason: str,
    note: str | None,
    actor: str,
    as_json: bool,
) -> None:
    """Resolved: the service works again."""
    incident = open_tracker(ctx).resolve(
        incident_id, actor=actor, kind=kind, reason=reason, note=note
    )
    _done(incident, as_json)


@incidents_group.command("note")
@click.argument("incident_id", type=int)
@click.argument("text")
@actor_option
@json_option
@click.pass_context
def note_incident(
    ctx: click.Context, incident_id: int, text: str, actor: str, as_json: bool
) -> None:
    """Add a comment to the incident's timeline."""
    entry = open_tracker(ctx).add_note(incident_id, text, actor=actor)
    if as_json:
        echo_json(entry)
    else:
        click.echo(f"noted on incident #{incident_id} at {when(entry.at)}")


def _done(incident: IncidentView, as_json: bool) -> None:
    if as_json:
        echo_json(incident)
    else:
        click.echo(f"incident #{incident.id} is {incident.status}: {clean(incident.title, 100)}")


@incidents_group.command("merge")
@click.argument("incident_id", type=int)
@click.option("--into", "target", type=int, required=True, help="The incident that survives.")
@actor_option
@json_option
@click.pass_context
def merge_incident(
    ctx: click.Context, incident_id: int, target: int, actor: str, as_json: bool
) -> None:
    """Fold a duplicate incident into another; its issues and events move along."""
    _done(open_tracker(ctx).merge(incident_id, into=target, actor=actor), as_json)


@incidents_group.command("severity")
@click.argument("incident_id", type=int)
@click.argument("severity")
@actor_option
@json_option
@click.pass_context
def set_severity(
    ctx: click.Context, incident_id: int, severity: str, actor: str, as_json: bool
) -> None:
    """Change the severity (SEV1–SEV4); the change lands on the timeline."""
    _done(open_tracker(ctx).set_severity(incident_id, severity, actor=actor), as_json)


def _postmortem_options(func: Any) -> Any:
    for section in reversed(POSTMORTEM_SECTIONS):
        func = click.option(f"--{section.replace('_', '-')}", section)(func)
    return func


@incidents_group.command("postmortem")
@click.argument("incident_id", type=int)
@click.option("--author", "authors", multiple=True, help="Repeatable; replaces the authors.")
@click.option("--status", help="draft, in review, complete, …")
@_postmortem_options
@json_option
@click.pass_context
def write_postmortem(
    ctx: click.Context,
    /,
    incident_id: int,
    authors: tuple[str, ...],
    status: str | None,
    as_json: bool,
    **sections: str | None,
) -> None:
    """Write sections of the postmortem that `medic report` prints."""
    given = {k: v for k, v in sections.items() if v is not None}
    if not given and not authors and not status:
        raise InvalidInput("postmortem: give at least one section, --author or --status")
    view = open_tracker(ctx).save_postmortem(incident_id, status=status, authors=authors, **given)
    if as_json:
        echo_json(view)
    else:
        click.echo(f"postmortem of incident #{incident_id} saved ({view.status})")


@incidents_group.command("action-item")
@click.argument("incident_id", type=int)
@click.argument("text")
@click.option(
    "--type",
    "item_type",
    type=click.Choice(["mitigate", "prevent", "process", "other"]),
    default="prevent",
    show_default=True,
)
@click.option("--owner")
@click.option("--bug", "tracking_url", help="Where the work is tracked.")
@json_option
@click.pass_context
def add_action_item(
    ctx: click.Context,
    incident_id: int,
    text: str,
    item_type: str,
    owner: str | None,
    tracking_url: str | None,
    as_json: bool,
) -> None:
    """Add an action item to the incident's postmortem."""
    view = open_tracker(ctx).add_action_item(
        incident_id, text=text, type=item_type, owner=owner, tracking_url=tracking_url
    )
    if as_json:
        echo_json(view)
    else:
        click.echo(f"incident #{incident_id} has {len(view.action_items)} action item(s)")
