"""The read side: lists and details as plain dataclasses, keyset-paginated.

Lists page by id descending with a cursor (the last id seen) rather than an
offset, so the first page of a million incidents costs the same as of ten, and
a page does not shift when new incidents arrive.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, select

from medic.errors import NotFound
from medic.taxonomy import Severity
from medic.tracker import _tables as t
from medic.tracker._views import (
    ActionItem,
    EventView,
    IncidentView,
    IssueView,
    Page,
    PostmortemView,
    RecoveryAttemptView,
    TimelineEntry,
)

__all__ = [
    "MAX_PAGE",
    "dt",
    "get_incident",
    "get_issue",
    "get_postmortem",
    "list_events",
    "list_incidents",
    "list_issues",
    "list_recovery_attempts",
    "list_timeline",
]

MAX_PAGE = 1000


def dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _json(text: str | None, default: Any) -> Any:
    if not text:
        return default
    return json.loads(text)


def _limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_PAGE))


def _incident(row: Row[Any], issue_ids: list[int] | None = None) -> IncidentView:
    m = row._mapping
    return IncidentView(
        id=m["id"],
        title=m["title"],
        summary=m["summary"],
        service=m["service"],
        severity=Severity(m["severity"]),
        status=m["status"],
        dedup_key=m["dedup_key"],
        impact_started_at=_dt(m["impact_started_at"]),
        detected_at=_dt(m["detected_at"]),
        triggered_at=_dt(m["triggered_at"]),
        acknowledged_at=dt(m["acknowledged_at"]),
        mitigated_at=dt(m["mitigated_at"]),
        resolved_at=dt(m["resolved_at"]),
        closed_at=dt(m["closed_at"]),
        escalation_level=m["escalation_level"],
        next_escalation_at=dt(m["next_escalation_at"]),
        resolution_kind=m["resolution_kind"],
        resolution_reason=m["resolution_reason"],
        commander=m["commander"],
        roles=_json(m["roles"], {}),
        related=_json(m["related"], []),
        merged_into=m["merged_into"],
        exclude_from_metrics=bool(m["exclude_from_metrics"]),
        signal_count=m["signal_count"],
        last_signal_at=dt(m["last_signal_at"]),
        escalation_loop=m["escalation_loop"],
        issue_ids=issue_ids or [],
    )


def _issue(
    row: Row[Any], hashes: list[dict[str, Any]] | None = None, incident_ids: list[int] | None = None
) -> IssueView:
    m = row._mapping
    return IssueView(
        id=m["id"],
        service=m["service"],
        title=m["title"],
        culprit=m["culprit"],
        kind=m["kind"],
        severity=Severity(m["severity"]),
        status=m["status"],
        substatus=m["substatus"],
        first_seen=_dt(m["first_seen"]),
        last_seen=_dt(m["last_seen"]),
        times_seen=m["times_seen"],
        reported_by=m["reported_by"],
        assigned_to=m["assigned_to"],
        description=m["description"],
        impact=m["impact"],
        root_cause=m["root_cause"],
        resolution=m["resolution"],
        prevention=m["prevention"],
        related_files=_json(m["related_files"], []),
        related_issues=_json(m["related_issues"], []),
        category=m["category"],
        owner=m["owner"],
        response_target_s=m["response_target_s"],
        self_healing=m["self_healing"],
        resolved_at=dt(m["resolved_at"]),
        first_release=m["first_release"],
        last_release=m["last_release"],
        grouping_variant=m["grouping_variant"],
        grouping_inputs=_json(m["grouping_inputs"], {}),
        merged_into=m["merged_into"],
        hashes=hashes or [],
        incident_ids=incident_ids or [],
    )


def get_incident(conn: Connection, incident_id: int) -> IncidentView:
    row = conn.execute(select(t.incidents).where(t.incidents.c.id == incident_id)).first()
    if row is None:
        raise NotFound(f"no incident {incident_id}")
    links = conn.execute(
        select(t.incident_issues.c.issue_id)
        .where(t.incident_issues.c.incident_id == incident_id)
        .order_by(t.incident_issues.c.issue_id)
    )
    return _incident(row, [r[0] for r in links])


def list_incidents(
    conn: Connection,
    *,
    service: str | None = None,
    status: Sequence[str] = (),
    severity: Severity | None = None,
    since: float | None = None,
    cursor: int | None = None,
    limit: int = 50,
) -> Page[IncidentView]:
    c = t.incidents.c
    query = select(t.incidents).order_by(c.id.desc()).limit(_limit(limit) + 1)
    if service:
        query = query.where(c.service == service)
    if status:
        query = query.where(c.status.in_(list(status)))
    if severity is not None:
        query = query.where(c.severity == int(severity))
    if since is not None:
        query = query.where(c.triggered_at >= since)
    if cursor is not None:
        query = query.where(c.id < cursor)
    rows = conn.execute(query).all()
    more = len(rows) > _limit(limit)
    rows = rows[: _limit(limit)]
    return Page([_incident(r) for r in rows], rows[-1]._mapping["id"] if more else None)


def get_issue(conn: Connection, issue_id: int) -> IssueView:
    row = conn.execute(select(t.issues).where(t.issues.c.id == issue_id)).first()
    if row is None:
        raise NotFound(f"no issue {issue_id}")
    h = t.issue_hashes.c
    hashes = [
        {"hash": r[0], "grouping_version": r[1], "variant": r[2], "inputs": _json(r[3], {})}
        for r in conn.execute(
            select(h.hash, h.grouping_version, h.variant, h.inputs)
            .where(h.issue_id == issue_id)
            .order_by(h.grouping_version, h.hash)
        )
    ]
    incidents = [
        r[0]
        for r in conn.execute(
            select(t.incident_issues.c.incident_id)
            .where(t.incident_issues.c.issue_id == issue_id)
            .order_by(t.incident_issues.c.incident_id)
        )
    ]
    return _issue(row, hashes, incidents)


def list_issues(
    conn: Connection,
    *,
    service: str | None = None,
    status: Sequence[str] = (),
    cursor: int | None = None,
    limit: int = 50,
    include_merged: bool = False,
) -> Page[IssueView]:
    c = t.issues.c
    query = select(t.issues).order_by(c.id.desc()).limit(_limit(limit) + 1)
    if service:
        query = query.where(c.service == service)
    if status:
        query = query.where(c.status.in_(list(status)))
    if not include_merged:
        query = query.where(c.merged_into.is_(None))
    if cursor is not None:
        query = query.where(c.id < cursor)
    rows = conn.execute(query).all()
    more = len(rows) > _limit(limit)
    rows = rows[: _limit(limit)]
    return Page([_issue(r) for r in rows], rows[-1]._mapping["id"] if more else None)


def list_timeline(
    conn: Connection,
    *,
    incident_id: int | None = None,
    issue_id: int | None = None,
    limit: int = 1000,
    newest: bool = False,
) -> list[TimelineEntry]:
    """Entries oldest first: the first `limit` of them, or with `newest` the last `limit`."""
    c = t.timeline.c
    order = (c.at.desc(), c.id.desc()) if newest else (c.at, c.id)
    query = select(t.timeline).order_by(*order).limit(_limit(limit))
    if incident_id is not None:
        query = query.where(c.incident_id == incident_id)
    if issue_id is not None:
        query = query.where(c.issue_id == issue_id)
    rows = [r._mapping for r in conn.execute(query)]
    if newest:
        rows.reverse()
    return [
        TimelineEntry(
            id=m["id"],
            incident_id=m["incident_id"],
            issue_id=m["issue_id"],
            at=_dt(m["at"]),
            actor_kind=m["actor_kind"],
            actor=m["actor"],
            kind=m["kind"],
            message=m["message"],
            details=_json(m["details"], {}),
            event_id=m["event_id"],
        )
        for m in rows
    ]


def list_events(
    conn: Connection,
    *,
    issue_id: int | None = None,
    incident_id: int | None = None,
    limit: int = 100,
) -> list[EventView]:
    c = t.events.c
    query = select(t.events).order_by(c.id.desc()).limit(_limit(limit))
    if issue_id is not None:
        query = query.where(c.issue_id == issue_id)
    if incident_id is not None:
        query = query.where(c.incident_id == incident_id)
    return [
        EventView(
            id=m["id"],
            source=m["source"],
            external_id=m["external_id"],
            received_at=_dt(m["received_at"]),
            occurred_at=_dt(m["occurred_at"]),
            service=m["service"],
            kind=m["kind"],
            severity=Severity(m["severity"]),
            action=m["action"],
            message=m["message"],
            fingerprint=m["fingerprint"],
            dedup_key=m["dedup_key"],
            issue_id=m["issue_id"],
            incident_id=m["incident_id"],
        )
        for m in (r._mapping for r in conn.execute(query))
    ]


def list_recovery_attempts(conn: Connection, incident_id: int) -> list[RecoveryAttemptView]:
    c = t.recovery_attempts.c
    rows = conn.execute(
        select(t.recovery_attempts).where(c.incident_id == incident_id).order_by(c.started_at, c.id)
    )
    return [
        RecoveryAttemptView(
            id=m["id"],
            incident_id=m["incident_id"],
            action=m["action"],
            attempt=m["attempt"],
            started_at=_dt(m["started_at"]),
            ended_at=dt(m["ended_at"]),
            outcome=m["outcome"],
            error=m["error"],
            evidence=_json(m["evidence"], {}),
        )
        for m in (r._mapping for r in rows)
    ]


def get_postmortem(conn: Connection, incident_id: int) -> PostmortemView | None:
    row = conn.execute(
        select(t.postmortems).where(t.postmortems.c.incident_id == incident_id)
    ).first()
    a = t.action_items.c
    items = [
        ActionItem(
            id=m["id"],
            incident_id=m["incident_id"],
            text=m["text"],
            type=m["type"],
            owner=m["owner"],
            tracking_url=m["tracking_url"],
            status=m["status"],
        )
        for m in (
            r._mapping
            for r in conn.execute(
                select(t.action_items).where(a.incident_id == incident_id).order_by(a.id)
            )
        )
    ]
    if row is None and not items:
        return None
    m = row._mapping if row is not None else {}
    return PostmortemView(
        incident_id=incident_id,
        status=m.get("status", "draft"),
        authors=_json(m.get("authors"), []),
        summary=m.get("summary"),
        impact=m.get("impact"),
        root_causes=m.get("root_causes"),
        trigger=m.get("trigger"),
        resolution=m.get("resolution"),
        detection=m.get("detection"),
        went_well=m.get("went_well"),
        went_wrong=m.get("went_wrong"),
        got_lucky=m.get("got_lucky"),
        supporting_information=m.get("supporting_information"),
        action_items=items,
    )
