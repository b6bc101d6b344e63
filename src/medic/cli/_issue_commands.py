"""`medic issues …`: classes of failure, and why each signal was grouped where it was."""

from __future__ import annotations

import os
from typing import Any

import click
from rich.console import Group
from rich.panel import Panel
from rich.text import Text

from medic.cli._main import cli
from medic.cli._render import (
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
from medic.taxonomy import Kind
from medic.tracker import IssueStatus, IssueView, SelfHealing

__all__: list[str] = []

# Seed 000 names severities in words; medic's are SEV1–SEV4.
SEVERITY_WORDS = {"CRITICAL": "SEV1", "HIGH": "SEV2", "MEDIUM": "SEV3", "LOW": "SEV4"}
VARIANTS = {
    "client-fingerprint": "the signal carried its own fingerprint",
    "exception-frames": "exception type + in-app stack frames (module.function; no line numbers)",
    "exception-value": "exception type + its value with numbers, ids and paths masked",
    "probe": "the failing health probe and its reason",
    "message": "the message with numbers, hex, UUIDs, IPs, host:port, paths, quotes, times masked",
    "manual": "filed by hand with `medic issues new`",
}
ORDER = "client fingerprint > grouping rules > exception frames > exception value > probe > message"


@cli.group("issues")
def issues_group() -> None:
    """Classes of failure, grouped by fingerprint.

    Seed 000's issue template with Sentry's lifecycle: unresolved, resolved, ignored.
    """


@issues_group.command("list")
@click.option("--service", help="Only this service.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in IssueStatus]),
    help="Only these statuses (repeatable).",
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--cursor", type=int, help="The next_cursor of the previous page.")
@json_option
@click.pass_context
def list_issues(
    ctx: click.Context,
    service: str | None,
    statuses: tuple[str, ...],
    limit: int,
    cursor: int | None,
    as_json: bool,
) -> None:
    """Issues, newest first."""
    page = open_tracker(ctx).issues(service=service, status=statuses, cursor=cursor, limit=limit)
    if as_json:
        echo_json(page)
        return
    print_issues(page.items)
    if page.next_cursor is not None:
        click.echo(f"more: medic issues list --cursor {page.next_cursor}")


def print_issues(items: list[IssueView], title: str = "Issues") -> None:
    console().print(
        table(
            title,
            ["ID", "Sev", "Status", "Service", "Kind", "Title", "Seen", "Last seen", "Healing"],
            [
                [
                    i.id,
                    i.severity,
                    f"{i.status}/{i.substatus}",
                    i.service,
                    i.kind,
                    clean(i.title, 48),
                    i.times_seen,
                    ago(i.last_seen),
                    i.self_healing,
                ]
                for i in items
            ],
        )
    )


@issues_group.command("show")
@click.argument("issue_id", type=int)
@click.option("--events", "n_events", default=5, show_default=True, type=click.IntRange(0, 100))
@json_option
@click.pass_context
def show_issue(ctx: click.Context, issue_id: int, n_events: int, as_json: bool) -> None:
    """One issue: its template fields, and why its signals were grouped together."""
    tracker = open_tracker(ctx)
    issue = tracker.issue(issue_id)
    events = tracker.events(issue_id=issue_id, limit=n_events) if n_events else []
    timeline = tracker.issue_timeline(issue_id, limit=50)
    if as_json:
        echo_json({"issue": issue, "events": events, "timeline": timeline})
        return
    out = console()
    fields = [
        ("Service", issue.service),
        ("Severity", str(issue.severity)),
        ("Status", f"{issue.status} / {issue.substatus}"),
        ("Kind", issue.kind),
        ("Culprit", issue.culprit or "—"),
        ("Seen", f"{issue.times_seen}× from {when(issue.first_seen)} to {when(issue.last_seen)}"),
        ("Reported by", issue.reported_by),
        ("Assigned to", issue.assigned_to or "—"),
        ("Category / owner", f"{issue.category or '—'} / {issue.owner or '—'}"),
        ("Response target", f"{issue.response_target_s:g} s" if issue.response_target_s else "—"),
        ("Self-healing", issue.self_healing),
        ("Releases", f"{issue.first_release or '—'} … {issue.last_release or '—'}"),
        ("Incidents", ", ".join(f"#{i}" for i in issue.incident_ids) or "—"),
    ]
    if issue.merged_into is not None:
        fields.append(("Merged into", f"#{issue.merged_into}"))
    if issue.resolved_at is not None:
        fields.append(("Resolved at", when(issue.resolved_at)))
    out.print(Text(f"Issue #{issue.id}: {clean(issue.title, 300)}", style="bold"))
    out.print(table(None, ["Field", "Value"], fields))
    for label, value in (
        ("Description", issue.description),
        ("Impact", issue.impact),
        ("Root cause", issue.root_cause),
        ("Resolution", issue.resolution),
        ("Prevention", issue.prevention),
    ):
        if value:
            out.print(Panel(Text(value), title=label, title_align="left"))
    if issue.related_files or issue.related_issues:
        out.print(
            Text(
                f"Related files: {', '.join(issue.related_files) or '—'}; "
                f"related issues: {', '.join(f'#{i}' for i in issue.related_issues) or '—'}"
            )
        )
    out.print(_grouping(issue))
    if events:
        out.print(
            table(
                f"Latest {len(events)} event(s)",
                ["Event", "Occurred", "Source", "Message", "Incident"],
                [
                    [
                        e.id,
                        when(e.occurred_at),
                        e.source,
                        clean(e.message, 80),
                        e.incident_id or "—",
                    ]
                    for e in events
                ],
            )
        )
    if timeline:
        out.print(
            table(
                "Issue timeline",
                ["At", "Actor", "Entry"],
                [[when(e.at), e.actor, clean(e.message, 100)] for e in timeline],
            )
        )


def _grouping(issue: IssueView) -> Group:
    """Why these signals are one issue: the variant that won, its inputs, every hash kept."""
    variant = issue.grouping_variant
    meaning = VARIANTS.get(variant) or (
        f"the configured grouping rule {variant[5:]!r}" if variant.startswith("rule:") else variant
    )
    lines = Text()
    lines.append("Grouped by ", style="bold")
    lines.append(f"{variant}: {meaning}.\n")
    lines.append(f"The first that applies wins: {ORDER}.\n")
    lines.append("Inputs that won:\n", style="bold")
    for key, value in issue.grouping_inputs.items():
        lines.append(f"  {key}: {_inputs_text(value)}\n")
    hashes = table(
        f"Grouping hashes kept ({len(issue.hashes)}): a signal with any of them lands here",
        ["Hash", "Version", "Variant", "Inputs"],
        [
            [h["hash"], h["grouping_version"], h["variant"], clean(_inputs_text(h["inputs"]), 120)]
            for h in issue.hashes
        ],
    )
    return Group(Panel(lines, title="Grouping", title_align="left"), hashes)


def _inputs_text(value: Any) -> str:
    if isinstance(value, list):
        return " → ".join(map(str, value)) if value else "—"
    if isinstance(value, dict):
        return "; ".join(f"{k}={_inputs_text(v)}" for k, v in value.items()) or "—"
    return str(value)


def template_options(func: Any) -> Any:
    """Seed 000's template fields as options, shared by `new` and `edit`."""
    options = [
        click.option("--severity", help="SEV1–SEV4, or CRITICAL/HIGH/MEDIUM/LOW."),
        click.option("--assigned-to"),
        click.option("--reported-by"),
        click.option("--description"),
        click.option("--impact"),
        click.option("--root-cause"),
        click.option("--resolution"),
        click.option("--prevention"),
        click.option("--related-file", "related_files", multiple=True, help="Repeatable."),
        click.option("--related-issue", "related_issues", multiple=True, type=int),
        click.option("--category", help="Security, Performance, Test failures, …"),
        click.option("--owner", help="Who owns the category."),
        click.option("--response-target", help="How fast it must be answered: 30m, 1h, 24h."),
        click.option("--self-healing", type=click.Choice([s.value for s in SelfHealing])),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _fields(options: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in options.items() if v not in (None, ())}
    if "severity" in fields:
        sev = str(fields["severity"]).strip().upper()
        fields["severity"] = SEVERITY_WORDS.get(sev, sev)
    if "response_target" in fields:
        fields["response_target_s"] = parse_duration(
            fields.pop("response_target"), "--response-target"
        ).total_seconds()
    for key in ("related_files", "related_issues"):
        if key in fields:
            fields[key] = list(fields[key])
    return fields


@issues_group.command("new")
@click.option("--service", required=True)
@click.option("--title", required=True)
@click.option("--kind", default="unknown", show_default=True)
@template_options
@json_option
@click.pass_context
def new_issue(
    ctx: click.Context, /, service: str, title: str, kind: str, as_json: bool, **options: Any
) -> None:
    """File an issue by hand, with seed 000's template fields."""
    try:
        kind = Kind.parse(kind).value
    except ValueError as exc:
        raise InvalidInput(f"--kind: {exc}") from None
    fields = _fields(options)
    fields.setdefault("reported_by", os.environ.get("USER") or "cli")
    issue = open_tracker(ctx).create_issue(service=service, title=title, kind=kind, **fields)
    _done(issue, as_json, "filed")


@issues_group.command("edit")
@click.argument("issue_id", type=int)
@click.option("--title")
@template_options
@json_option
@click.pass_context
def edit_issue(ctx: click.Context, /, issue_id: int, as_json: bool, **options: Any) -> None:
    """Change an issue's template fields."""
    issue = open_tracker(ctx).edit_issue(issue_id, **_fields(options))
    _done(issue, as_json, "updated")


@issues_group.command("resolve")
@click.argument("issue_id", type=int)
@click.option("--resolution", help="What fixed it.")
@click.option("--release", help="The release that carries the fix.")
@actor_option
@json_option
@click.pass_context
def resolve_issue(
    ctx: click.Context,
    issue_id: int,
    resolution: str | None,
    release: str | None,
    actor: str,
    as_json: bool,
) -> None:
    """Mark an issue resolved; a new occurrence will mark it regressed."""
    issue = open_tracker(ctx).resolve_issue(
        issue_id, actor=actor, resolution=resolution, release=release
    )
    _done(issue, as_json, "resolved")


@issues_group.command("ignore")
@click.argument("issue_id", type=int)
@actor_option
@json_option
@click.pass_context
def ignore_issue(ctx: click.Context, issue_id: int, actor: str, as_json: bool) -> None:
    """Ignore an issue: occurrences are still counted but never reopen it."""
    _done(open_tracker(ctx).ignore_issue(issue_id, actor=actor), as_json, "ignored")


@issues_group.command("reopen")
@click.argument("issue_id", type=int)
@actor_option
@json_option
@click.pass_context
def reopen_issue(ctx: click.Context, issue_id: int, actor: str, as_json: bool) -> None:
    """Mark a resolved or ignored issue unresolved again."""
    _done(open_tracker(ctx).unresolve_issue(issue_id, actor=actor), as_json, "reopened")


@issues_group.command("merge")
@click.argument("sources", nargs=-1, type=int, required=True)
@click.option("--into", "target", type=int, required=True, help="The issue that survives.")
@actor_option
@json_option
@click.pass_context
def merge_issues(
    ctx: click.Context, sources: tuple[int, ...], target: int, actor: str, as_json: bool
) -> None:
    """Fold issues into one; their grouping hashes move along, so no history splits."""
    issue = open_tracker(ctx).merge_issues(list(sources), into=target, actor=actor)
    _done(issue, as_json, f"merged {', '.join(f'#{s}' for s in sources)} into")


def _done(issue: IssueView, as_json: bool, verb: str) -> None:
    if as_json:
        echo_json(issue)
    else:
        click.echo(f"{verb} issue #{issue.id} ({issue.status}): {clean(issue.title, 100)}")
