"""`Tracker`: the one door to the record, for the engine, the faces and users' code.

Safe to share between threads (the engine pools connections) and to open from
several processes on one SQLite file or one PostgreSQL database (every write
holds the store's write lock for one short transaction).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from medic.clock import Clock, system_clock
from medic.errors import IllegalTransition, InvalidInput, NotFound
from medic.events import Signal
from medic.taxonomy import GroupingRule, Severity
from medic.tracker import _queries as q
from medic.tracker import _tables as t
from medic.tracker._engine import Database, translate
from medic.tracker._kpi_sql import sql_kpis
from medic.tracker._kpis import KpiReport
from medic.tracker._model import (
    DEFAULT_SEVERITY_POLICIES,
    OPEN_INCIDENT_STATES,
    IncidentStatus,
    IssueCategory,
    IssueStatus,
    IssueSubstatus,
    ResolutionKind,
    ResolutionReason,
    SelfHealing,
    SeverityPolicy,
    TimelineKind,
    check_incident_transition,
    check_issue_transition,
)
from medic.tracker._record import MAX_MESSAGE, Recorder, _timeline_row, clean_text, dumps, epoch
from medic.tracker._views import (
    EventView,
    IncidentView,
    IssueView,
    Page,
    PostmortemView,
    RecordResult,
    RecoveryAttemptView,
    TimelineEntry,
)

__all__ = ["ISSUE_FIELDS", "POSTMORTEM_SECTIONS", "Tracker"]

# Seed 000's issue template: the fields a person may edit.
ISSUE_FIELDS = frozenset(
    {
        "title",
        "severity",
        "assigned_to",
        "reported_by",
        "description",
        "impact",
        "root_cause",
        "resolution",
        "prevention",
        "related_files",
        "related_issues",
        "category",
        "owner",
        "response_target_s",
        "self_healing",
    }
)
POSTMORTEM_SECTIONS = (
    "summary",
    "impact",
    "root_causes",
    "trigger",
    "resolution",
    "detection",
    "went_well",
    "went_wrong",
    "got_lucky",
    "supporting_information",
)
RECOVERY_OUTCOMES = frozenset({"success", "failure", "timeout", "skipped"})
ACTION_ITEM_TYPES = frozenset({"mitigate", "prevent", "process", "other"})


class Tracker:
    """Records signals into issues, incidents and timelines; answers questions about them."""

    def __init__(
        self,
        url: str,
        *,
        clock: Clock = system_clock,
        grouping_rules: Sequence[GroupingRule] = (),
        severity_policies: Mapping[Severity, SeverityPolicy] | None = None,
        categories: Sequence[IssueCategory] = (),
        migrate: bool = True,
    ) -> None:
        self.db = Database(url)
        self.clock = clock
        self.severity_policies = dict(severity_policies or DEFAULT_SEVERITY_POLICIES)
        self._recorder = Recorder(rules=grouping_rules, categories=categories)
        if migrate:
            self.db.migrate()

    def __repr__(self) -> str:
        return f"Tracker({self.db.display_url!r})"

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.dispose()

    @property
    def url(self) -> str:
        return self.db.display_url

    def _now(self) -> float:
        return self.clock.now().timestamp()

    # -- recording -----------------------------------------------------------------------

    def record(self, signal: Signal) -> RecordResult:
        """Record one signal in its own committed transaction."""
        return self.record_many([signal])[0]

    def record_many(self, signals: Iterable[Signal]) -> list[RecordResult]:
        """Record signals in one transaction: all of them are stored, or none."""
        now = self._now()
        batch = self._recorder.prepare(signals, now)
        if not batch:
            return []
        try:
            if self.db.dialect == "sqlite":
                with self.db.write_sqlite() as raw:
                    results, links = self._recorder.write(raw, batch, now)
            else:
                with self.db.write() as conn:
                    results, links = self._recorder.write(conn, batch, now)
        except SQLAlchemyError as exc:
            raise translate(exc, self.url) from exc
        self._recorder.remember(links)
        return results

    # -- incident transitions --------------------------------------------------------

    def acknowledge(self, incident_id: int, *, actor: str, note: str | None = None) -> IncidentView:
        """A human has taken the incident: escalation of if-not-acknowledged levels stops."""
        return self._transition(
            incident_id,
            IncidentStatus.ACKNOWLEDGED,
            actor=actor,
            note=note,
            stamp="acknowledged_at",
        )

    def mitigate(self, incident_id: int, *, actor: str, note: str | None = None) -> IncidentView:
        """The impact has stopped, though the cause may remain."""
        return self._transition(
            incident_id, IncidentStatus.MITIGATED, actor=actor, note=note, stamp="mitigated_at"
        )

    def resolve(
        self,
        incident_id: int,
        *,
        actor: str,
        kind: ResolutionKind | str = ResolutionKind.HUMAN,
        reason: ResolutionReason | str = ResolutionReason.FIXED,
        note: str | None = None,
    ) -> IncidentView:
        """The service is fully working again; records who or what resolved it and why."""
        kind = _enum(ResolutionKind, kind, "resolution kind")
        reason = _enum(ResolutionReason, reason, "resolution reason")
        return self._transition(
            incident_id,
            IncidentStatus.RESOLVED,
            actor=actor,
            note=note,
            stamp="resolved_at",
            values={"resolution_kind": kind.value, "resolution_reason": reason.value},
            details={"resolution_kind": kind.value, "resolution_reason": reason.value},
        )

    def reopen(self, incident_id: int, *, actor: str, note: str | None = None) -> IncidentView:
        """A resolved incident fails again: the same outage continues, not a new one.

        Its trigger and impact start stay; mitigation, resolution and the
        escalation timer are cleared so the ladder runs again from its level.
        """
        return self._transition(
            incident_id,
            IncidentStatus.TRIGGERED,
            actor=actor,
            note=note or "reopened",
            stamp="resolved_at",
            values={
                "resolved_at": None,
                "mitigated_at": None,
                "resolution_kind": None,
                "resolution_reason": None,
                "next_escalation_at": None,
                "escalation_loop": 0,
            },
            details={"reopened": True},
        )

    def close_incident(
        self, incident_id: int, *, actor: str, note: str | None = None
    ) -> IncidentView:
        """Closed: the follow-up (postmortem, action items) is done."""
        return self._transition(
            incident_id, IncidentStatus.CLOSED, actor=actor, note=note, stamp="closed_at"
        )

    def cancel(self, incident_id: int, *, actor: str, note: str | None = None) -> IncidentView:
        """A false positive: closed without counting as an outage in availability."""
        return self._transition(
            incident_id,
            IncidentStatus.CANCELLED,
            actor=actor,
            note=note,
            stamp="closed_at",
            values={"resolution_reason": ResolutionReason.FALSE_POSITIVE.value},
        )

    def merge(self, incident_id: int, *, into: int, actor: str) -> IncidentView:
        """Fold a duplicate incident into another; its issues are linked to the survivor."""
        if incident_id == into:
            raise InvalidInput(f"incident {incident_id}: cannot merge an incident into itself")
        with self._write() as conn:
            target = q.get_incident(conn, into)
            if (
                target.status not in OPEN_INCIDENT_STATES
                and target.status != IncidentStatus.RESOLVED
            ):
                raise IllegalTransition(f"incident {into}", target.status, "merge target")
            source = q.get_incident(conn, incident_id)
            check_incident_transition(incident_id, source.status, IncidentStatus.MERGED)
            now = self._now()
            conn.execute(
                update(t.incidents)
                .where(t.incidents.c.id == incident_id)
                .values(
                    status=IncidentStatus.MERGED.value,
                    is_open=False,
                    merged_into=into,
                    closed_at=now,
                    resolution_reason=ResolutionReason.DUPLICATE.value,
                )
            )
            for issue_id in set(source.issue_ids) - set(target.issue_ids):
                conn.execute(insert(t.incident_issues), {"incident_id": into, "issue_id": issue_id})
            conn.execute(
                update(t.incidents)
                .where(t.incidents.c.id == into)
                .values(
                    signal_count=t.incidents.c.signal_count + source.signal_count,
                    impact_started_at=min(
                        epoch(target.impact_started_at), epoch(source.impact_started_at)
                    ),
                )
            )
            conn.execute(
                update(t.events)
                .where(t.events.c.incident_id == incident_id)
                .values(incident_id=into)
            )
            for at_id, other, msg in (
                (incident_id, into, f"merged into incident {into}"),
                (into, incident_id, f"incident {incident_id} merged into this one"),
            ):
                conn.execute(
                    insert(t.timeline),
                    _timeline_row(
                        at_id,
                        TimelineKind.MERGED,
                        msg,
                        now,
                        actor=actor,
                        actor_kind="user",
                        details={"other": other},
                    ),
                )
            return q.get_incident(conn, incident_id)

    def _transition(
        self,
        incident_id: int,
        target: IncidentStatus,
        *,
        actor: str,
        note: str | None,
        stamp: str,
        values: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
    ) -> IncidentView:
        actor = _actor(actor)
        with self._write() as conn:
            current = _incident_status(conn, incident_id)
            check_incident_transition(incident_id, current, target)
            now = self._now()
            changes: dict[str, Any] = {"status": target.value, stamp: now, **(values or {})}
            changes["is_open"] = target in OPEN_INCIDENT_STATES
            if target is IncidentStatus.RESOLVED:
                # Resolving implies the impact stopped; keep an earlier mitigation time.
                row = conn.execute(
                    select(t.incidents.c.mitigated_at).where(t.incidents.c.id == incident_id)
                ).scalar_one()
                if row is None:
                    changes["mitigated_at"] = now
            conn.execute(update(t.incidents).where(t.incidents.c.id == incident_id).values(changes))
            message = f"{current} → {target.value}" + (f": {note}" if note else "")
            conn.execute(
                insert(t.timeline),
                _timeline_row(
                    incident_id,
                    TimelineKind.STATUS_CHANGED,
                    message,
                    now,
                    actor=actor,
                    actor_kind="user",
                    details={"from": current, "to": target.value, **(details or {})},
                ),
            )
            return q.get_incident(conn, incident_id)

    def set_severity(
        self, incident_id: int, severity: Severity | str, *, actor: str
    ) -> IncidentView:
        sev = _severity(severity)
        with self._write() as conn:
            current = q.get_incident(conn, incident_id)
            if current.severity == sev:
                return current
            conn.execute(
                update(t.incidents).where(t.incidents.c.id == incident_id).values(severity=int(sev))
            )
            conn.execute(
                insert(t.timeline),
                _timeline_row(
                    incident_id,
                    TimelineKind.SEVERITY_CHANGED,
                    f"severity {current.severity} → {sev}",
                    self._now(),
                    actor=_actor(actor),
                    actor_kind="user",
                    details={"from": str(current.severity), "to": str(sev)},
                ),
            )
            return q.get_incident(conn, incident_id)

    def set_escalation(
        self,
        incident_id: int,
        *,
        level: int,
        next_at: datetime | None,
        actor: str = "medic",
        message: str | None = None,
    ) -> IncidentView:
        """Move the incident to escalation level L1–L4 and say when the next step is due."""
        if level not in (1, 2, 3, 4):
            raise InvalidInput(f"escalation level must be 1–4, got {level!r}")
        with self._write() as conn:
            current = q.get_incident(conn, incident_id)
            conn.execute(
                update(t.incidents)
                .where(t.incidents.c.id == incident_id)
                .values(
                    escalation_level=level,
                    next_escalation_at=epoch(next_at) if next_at else None,
                )
            )
            if level != current.escalation_level:
                conn.execute(
                    insert(t.timeline),
                    _timeline_row(
                        incident_id,
                        TimelineKind.ESCALATED,
                        message or f"escalated L{current.escalation_level} → L{level}",
                        self._now(),
                        actor=_actor(actor),
                        actor_kind="automation",
                        details={"from": current.escalation_level, "to": level},
                    ),
                )
            return q.get_incident(conn, incident_id)

    def due_escalations(
        self, *, now: datetime | None = None, limit: int = 100
    ) -> list[IncidentView]:
        """Open incidents whose escalation timer is due or was never armed, oldest first."""
        at = epoch(now) if now else self._now()
        c = t.incidents.c
        with self._read() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    select(c.id)
                    .where(
                        c.is_open.is_(True),
                        (c.next_escalation_at <= at) | c.next_escalation_at.is_(None),
                    )
                    .order_by(c.next_escalation_at.is_(None).desc(), c.next_escalation_at, c.id)
                    .limit(max(1, min(limit, q.MAX_PAGE)))
                )
            ]
            return [q.get_incident(conn, i) for i in ids]

    def claim_escalation(
        self,
        incident_id: int,
        *,
        expected_level: int,
        expected_next_at: datetime | None,
        level: int,
        next_at: datetime | None,
        expected_loop: int = 0,
        loop: int = 0,
        actor: str = "medic",
        message: str | None = None,
    ) -> bool:
        """Move an escalation timer only if nobody else did: compare-and-set.

        Several agents (or a restarted medic) may see the same due timer; exactly
        one claim succeeds, so each step fires once. Returns whether this call won.
        A change of level or loop lands on the timeline as `escalated`.
        """
        if level not in (1, 2, 3, 4):
            raise InvalidInput(f"escalation level must be 1–4, got {level!r}")
        c = t.incidents.c
        expected = epoch(expected_next_at) if expected_next_at else None
        with self._write() as conn:
            _incident_status(conn, incident_id)
            condition = [
                c.id == incident_id,
                c.is_open.is_(True),
                c.escalation_level == expected_level,
                c.escalation_loop == expected_loop,
                c.next_escalation_at.is_(None)
                if expected is None
                else c.next_escalation_at == expected,
            ]
            won = conn.execute(
                update(t.incidents)
                .where(*condition)
                .values(
                    escalation_level=level,
                    escalation_loop=loop,
                    next_escalation_at=epoch(next_at) if next_at else None,
                )
            ).rowcount
            if not won:
                return False
            if (level, loop) != (expected_level, expected_loop):
                conn.execute(
                    insert(t.timeline),
                    _timeline_row(
                        incident_id,
                        TimelineKind.ESCALATED,
                        message or f"escalated L{expected_level} → L{level}",
                        self._now(),
                        actor=_actor(actor),
                        actor_kind="automation",
                        details={"from": expected_level, "to": level, "loop": loop},
                    ),
                )
            return True

    def record_notification(
        self,
        incident_id: int,
        *,
        level: str,
        channel: str,
        target: str,
        kind: str,
        delivered: bool,
        attempts: int = 1,
        error: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """One notice sent (or not) about an incident; it also lands on the timeline."""
        when = epoch(at) if at else self._now()
        with self._write() as conn:
            _incident_status(conn, incident_id)
            conn.execute(
                insert(t.notifications),
                {
                    "incident_id": incident_id,
                    "level": clean_text(level, 20),
                    "channel": clean_text(channel, 40),
                    "target": clean_text(target, 500),
                    "kind": clean_text(kind, 40),
                    "sent_at": when,
                    "delivered": delivered,
                    "attempts": attempts,
                    "error": clean_text(error, 2000) if error else None,
                },
            )
            outcome = "sent" if delivered else f"failed after {attempts} attempt(s)"
            conn.execute(
                insert(t.timeline),
                _timeline_row(
                    incident_id,
                    TimelineKind.NOTIFIED,
                    f"{kind} notice via {channel} to {target}: {outcome}",
                    when,
                    actor="medic",
                    actor_kind="automation",
                    details={"channel": channel, "level": level, "delivered": delivered},
                ),
            )

    def notifications(self, incident_id: int) -> list[dict[str, Any]]:
        """Every notice recorded for an incident, oldest first."""
        n = t.notifications.c
        with self._read() as conn:
            _incident_status(conn, incident_id)
            rows = conn.execute(
                select(t.notifications)
                .where(n.incident_id == incident_id)
                .order_by(n.sent_at, n.id)
            )
            return [
                {
                    **r._mapping,
                    "sent_at": q.dt(r._mapping["sent_at"]),
                    "delivered": bool(r._mapping["delivered"]),
                }
                for r in rows
            ]

    def set_roles(
        self,
        incident_id: int,
        *,
        commander: str | None = None,
        roles: Mapping[str, str] | None = None,
    ) -> IncidentView:
        with self._write() as conn:
            current = q.get_incident(conn, incident_id)
            merged = {**current.roles, **dict(roles or {})}
            conn.execute(
                update(t.incidents)
                .where(t.incidents.c.id == incident_id)
                .values(commander=commander or current.commander, roles=dumps(merged))
            )
            return q.get_incident(conn, incident_id)

    def add_note(self, incident_id: int, text: str, *, actor: str) -> TimelineEntry:
        """A comment on the incident's timeline."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("note: text must not be empty")
        return self.add_timeline(
            incident_id, kind=TimelineKind.COMMENT, message=text, actor=actor, actor_kind="user"
        )

    def add_timeline(
        self,
        incident_id: int,
        *,
        kind: TimelineKind | str,
        message: str,
        actor: str,
        actor_kind: str = "automation",
        details: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> TimelineEntry:
        """Append an entry (recovery started, notified, runbook step, …) to the timeline."""
        kind = _enum(TimelineKind, kind, "timeline kind")
        with self._write() as conn:
            _incident_status(conn, incident_id)
            row = _timeline_row(
                incident_id,
                kind,
                clean_text(message, MAX_MESSAGE),
                epoch(at) if at else self._now(),
                actor=_actor(actor),
                actor_kind=actor_kind,
                details=dict(details or {}),
            )
            entry_id = conn.execute(insert(t.timeline).returning(t.timeline.c.id), row).scalar_one()
            entries = q.list_timeline(conn, incident_id=incident_id, limit=q.MAX_PAGE)
        return next(e for e in entries if e.id == entry_id)

    def record_recovery(
        self,
        incident_id: int,
        *,
        action: str,
        attempt: int,
        started_at: datetime,
        ended_at: datetime | None,
        outcome: str | None,
        error: str | None = None,
        evidence: Mapping[str, Any] | None = None,
        actor: str = "medic",
    ) -> RecoveryAttemptView:
        """One recovery action and how it went; also lands on the timeline."""
        if outcome is not None and outcome not in RECOVERY_OUTCOMES:
            raise InvalidInput(
                f"recovery outcome {outcome!r}; expected one of {', '.join(sorted(RECOVERY_OUTCOMES))}"
            )
        if not action or attempt < 1:
            raise InvalidInput("recovery attempt needs an action and an attempt number ≥ 1")
        started = epoch(started_at)
        ended = epoch(ended_at) if ended_at else None
        with self._write() as conn:
            _incident_status(conn, incident_id)
            attempt_id = conn.execute(
                insert(t.recovery_attempts).returning(t.recovery_attempts.c.id),
                {
                    "incident_id": incident_id,
                    "action": clean_text(action, 200),
                    "attempt": attempt,
                    "started_at": started,
                    "ended_at": ended,
                    "outcome": outcome,
                    "error": clean_text(error, MAX_MESSAGE) if error else None,
                    "evidence": dumps(dict(evidence or {})),
                },
            ).scalar_one()
            kind = {
                None: TimelineKind.RECOVERY_STARTED,
                "success": TimelineKind.RECOVERY_SUCCEEDED,
            }.get(outcome, TimelineKind.RECOVERY_FAILED)
            took = f" in {ended - started:.3f}s" if ended is not None else ""
            conn.execute(
                insert(t.timeline),
                _timeline_row(
                    incident_id,
                    kind,
                    f"{action} attempt {attempt}: {outcome or 'started'}{took}",
                    ended if ended is not None else started,
                    actor=_actor(actor),
                    actor_kind="automation",
                    details={"attempt_id": attempt_id, "action": action, "outcome": outcome},
                ),
            )
            attempts = q.list_recovery_attempts(conn, incident_id)
        return next(a for a in attempts if a.id == attempt_id)

    # -- issues ----------------------------------------------------------------------------

    def create_issue(
        self,
        *,
        service: str,
        title: str,
        severity: Severity | str = Severity.SEV3,
        kind: str = "unknown",
        reported_by: str = "user",
        **fields: Any,
    ) -> IssueView:
        """File an issue by hand (seed 000's template), with no signal behind it yet."""
        values = _issue_fields(fields)
        sev = _severity(severity)
        now = self._now()
        grouping_inputs = {"manual": True}
        with self._write() as conn:
            issue_id = conn.execute(
                insert(t.issues).returning(t.issues.c.id),
                {
                    "service": _actor(service),
                    "title": clean_text(_required(title, "title"), 500),
                    "kind": kind,
                    "severity": int(sev),
                    "status": IssueStatus.UNRESOLVED.value,
                    "substatus": IssueSubstatus.NEW.value,
                    "first_seen": now,
                    "last_seen": now,
                    "times_seen": 0,
                    "reported_by": _actor(reported_by),
                    "grouping_variant": "manual",
                    "grouping_inputs": dumps(grouping_inputs),
                    **values,
                },
            ).scalar_one()
            return q.get_issue(conn, issue_id)

    def edit_issue(self, issue_id: int, **fields: Any) -> IssueView:
        """Change template fields (assignee, root cause, prevention, …); unknown fields are refused."""
        values = _issue_fields(fields)
        if not values:
            raise InvalidInput("issue edit: nothing to change")
        with self._write() as conn:
            q.get_issue(conn, issue_id)
            conn.execute(update(t.issues).where(t.issues.c.id == issue_id).values(values))
            return q.get_issue(conn, issue_id)

    def resolve_issue(
        self,
        issue_id: int,
        *,
        actor: str,
        resolution: str | None = None,
        release: str | None = None,
    ) -> IssueView:
        """Resolved: a new occurrence will mark it regressed."""
        values: dict[str, Any] = {"resolved_at": self._now()}
        if resolution:
            values["resolution"] = clean_text(resolution, MAX_MESSAGE)
        if release:
            values["last_release"] = release
        return self._issue_transition(issue_id, IssueStatus.RESOLVED, actor, values)

    def ignore_issue(self, issue_id: int, *, actor: str) -> IssueView:
        """Ignored: occurrences are still counted but never reopen it."""
        return self._issue_transition(issue_id, IssueStatus.IGNORED, actor, {})

    def unresolve_issue(self, issue_id: int, *, actor: str) -> IssueView:
        return self._issue_transition(
            issue_id, IssueStatus.UNRESOLVED, actor, {"substatus": IssueSubstatus.ONGOING.value}
        )

    def _issue_transition(
        self, issue_id: int, target: IssueStatus, actor: str, values: dict[str, Any]
    ) -> IssueView:
        with self._write() as conn:
            current = q.get_issue(conn, issue_id)
            if current.merged_into is not None:
                raise IllegalTransition(f"issue {issue_id}", "merged", target.value)
            check_issue_transition(issue_id, current.status, target)
            conn.execute(
                update(t.issues)
                .where(t.issues.c.id == issue_id)
                .values(status=target.value, **values)
            )
            conn.execute(
                insert(t.timeline),
                _timeline_row(
                    None,
                    TimelineKind.STATUS_CHANGED,
                    f"issue {current.status} → {target.value}",
                    self._now(),
                    actor=_actor(actor),
                    actor_kind="user",
                    issue_id=issue_id,
                    details={"from": current.status, "to": target.value},
                ),
            )
            return q.get_issue(conn, issue_id)

    def merge_issues(self, sources: Sequence[int], *, into: int, actor: str) -> IssueView:
        """Fold issues into one: their hashes, events and incident links move to the survivor.

        Every grouping hash is kept, so future signals that would have gone to a
        merged issue land in the survivor.
        """
        ids = sorted(set(sources) - {into})
        if not ids:
            raise InvalidInput("issue merge: name at least one issue other than the target")
        with self._write() as conn:
            target = q.get_issue(conn, into)
            if target.merged_into is not None:
                raise InvalidInput(f"issue {into} was itself merged into {target.merged_into}")
            total = 0
            first, last = target.first_seen.timestamp(), target.last_seen.timestamp()
            sev = int(target.severity)
            for source_id in ids:
                source = q.get_issue(conn, source_id)
                if source.merged_into is not None:
                    raise InvalidInput(
                        f"issue {source_id} is already merged into {source.merged_into}"
                    )
                total += source.times_seen
                first = min(first, source.first_seen.timestamp())
                last = max(last, source.last_seen.timestamp())
                sev = min(sev, int(source.severity))
            conn.execute(
                update(t.issue_hashes)
                .where(t.issue_hashes.c.issue_id.in_(ids))
                .values(issue_id=into)
            )
            conn.execute(update(t.events).where(t.events.c.issue_id.in_(ids)).values(issue_id=into))
            links = conn.execute(
                select(t.incident_issues.c.incident_id)
                .where(t.incident_issues.c.issue_id.in_(ids))
                .distinct()
            ).all()
            existing = set(target.incident_ids)
            for (incident_id,) in links:
                if incident_id not in existing:
                    conn.execute(
                        insert(t.incident_issues), {"incident_id": incident_id, "issue_id": into}
                    )
                    existing.add(incident_id)
            conn.execute(t.incident_issues.delete().where(t.incident_issues.c.issue_id.in_(ids)))
            conn.execute(
                update(t.issues)
                .where(t.issues.c.id.in_(ids))
                .values(merged_into=into, times_seen=0)
            )
            conn.execute(
                update(t.issues)
                .where(t.issues.c.id == into)
                .values(
                    times_seen=t.issues.c.times_seen + total,
                    first_seen=first,
                    last_seen=last,
                    severity=sev,
                )
            )
            conn.execute(
                insert(t.timeline),
                _timeline_row(
                    None,
                    TimelineKind.MERGED,
                    f"merged issues {', '.join(map(str, ids))} into this one",
                    self._now(),
                    actor=_actor(actor),
                    actor_kind="user",
                    issue_id=into,
                    details={"merged": ids},
                ),
            )
            return q.get_issue(conn, into)

    def add_issue_hash(self, issue_id: int, *, hash: str, version: str, variant: str) -> None:
        """Attach a hash from another grouping version, so an upgrade does not split history."""
        with self._write() as conn:
            q.get_issue(conn, issue_id)
            try:
                conn.execute(
                    insert(t.issue_hashes),
                    {
                        "hash": hash,
                        "grouping_version": version,
                        "issue_id": issue_id,
                        "variant": variant,
                        "inputs": "{}",
                    },
                )
            except IntegrityError as exc:
                raise InvalidInput(f"hash {hash} ({version}) already belongs to an issue") from exc

    # -- postmortems -----------------------------------------------------------------------

    def save_postmortem(
        self,
        incident_id: int,
        *,
        status: str | None = None,
        authors: Sequence[str] = (),
        **sections: str,
    ) -> PostmortemView:
        unknown = set(sections) - set(POSTMORTEM_SECTIONS)
        if unknown:
            raise InvalidInput(
                f"postmortem: unknown section(s) {', '.join(sorted(unknown))}; "
                f"expected {', '.join(POSTMORTEM_SECTIONS)}"
            )
        with self._write() as conn:
            _incident_status(conn, incident_id)
            values: dict[str, Any] = {
                k: clean_text(v, 20000) for k, v in sections.items() if v is not None
            }
            values["updated_at"] = self._now()
            if status:
                values["status"] = status
            if authors:
                values["authors"] = dumps(list(authors))
            exists = conn.execute(
                select(t.postmortems.c.incident_id).where(
                    t.postmortems.c.incident_id == incident_id
                )
            ).first()
            if exists:
                conn.execute(
                    update(t.postmortems)
                    .where(t.postmortems.c.incident_id == incident_id)
                    .values(values)
                )
            else:
                conn.execute(insert(t.postmortems), {"incident_id": incident_id, **values})
            result = q.get_postmortem(conn, incident_id)
        assert result is not None
        return result

    def add_action_item(
        self,
        incident_id: int,
        *,
        text: str,
        type: str = "prevent",
        owner: str | None = None,
        tracking_url: str | None = None,
    ) -> PostmortemView:
        if type not in ACTION_ITEM_TYPES:
            raise InvalidInput(
                f"action item type {type!r}; expected one of {', '.join(sorted(ACTION_ITEM_TYPES))}"
            )
        with self._write() as conn:
            _incident_status(conn, incident_id)
            conn.execute(
                insert(t.action_items),
                {
                    "incident_id": incident_id,
                    "text": clean_text(_required(text, "text"), 2000),
                    "type": type,
                    "owner": owner,
                    "tracking_url": tracking_url,
                    "created_at": self._now(),
                },
            )
            result = q.get_postmortem(conn, incident_id)
        assert result is not None
        return result

    # -- reads -------------------------------------------------------------------------------

    def incident(self, incident_id: int) -> IncidentView:
        with self._read() as conn:
            return q.get_incident(conn, incident_id)

    def incidents(
        self,
        *,
        service: str | None = None,
        status: Sequence[str] | str = (),
        severity: Severity | str | None = None,
        since: datetime | None = None,
        cursor: int | None = None,
        limit: int = 50,
    ) -> Page[IncidentView]:
        statuses = [status] if isinstance(status, str) else list(status)
        for s in statuses:
            _enum(IncidentStatus, s, "incident status")
        with self._read() as conn:
            return q.list_incidents(
                conn,
                service=service,
                status=statuses,
                severity=_severity(severity) if severity is not None else None,
                since=epoch(since) if since else None,
                cursor=cursor,
                limit=limit,
            )

    def open_incident(self, dedup_key: str) -> IncidentView | None:
        """The open incident for a dedup key, if any (the supervisor's `service:NAME`)."""
        with self._read() as conn:
            row = conn.execute(
                select(t.incidents.c.id).where(
                    t.incidents.c.dedup_key == dedup_key, t.incidents.c.is_open.is_(True)
                )
            ).first()
            return q.get_incident(conn, row[0]) if row else None

    def issue(self, issue_id: int) -> IssueView:
        with self._read() as conn:
            return q.get_issue(conn, issue_id)

    def issues(
        self,
        *,
        service: str | None = None,
        status: Sequence[str] | str = (),
        cursor: int | None = None,
        limit: int = 50,
    ) -> Page[IssueView]:
        statuses = [status] if isinstance(status, str) else list(status)
        for s in statuses:
            _enum(IssueStatus, s, "issue status")
        with self._read() as conn:
            return q.list_issues(conn, service=service, status=statuses, cursor=cursor, limit=limit)

    def timeline(
        self, incident_id: int, *, limit: int = 1000, newest: bool = False
    ) -> list[TimelineEntry]:
        """Oldest first; `newest` picks the last `limit` entries (a notice's summary)."""
        with self._read() as conn:
            _incident_status(conn, incident_id)
            return q.list_timeline(conn, incident_id=incident_id, limit=limit, newest=newest)

    def issue_timeline(self, issue_id: int, *, limit: int = 1000) -> list[TimelineEntry]:
        with self._read() as conn:
            return q.list_timeline(conn, issue_id=issue_id, limit=limit)

    def events(
        self, *, issue_id: int | None = None, incident_id: int | None = None, limit: int = 100
    ) -> list[EventView]:
        with self._read() as conn:
            return q.list_events(conn, issue_id=issue_id, incident_id=incident_id, limit=limit)

    def recovery_attempts(self, incident_id: int) -> list[RecoveryAttemptView]:
        with self._read() as conn:
            return q.list_recovery_attempts(conn, incident_id)

    def postmortem(self, incident_id: int) -> PostmortemView | None:
        with self._read() as conn:
            _incident_status(conn, incident_id)
            return q.get_postmortem(conn, incident_id)

    def kpis(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        service: str | None = None,
    ) -> KpiReport:
        """KPIs over incidents triggered in [since, until) (default: the last 30 days)."""
        now = self._now()
        until_ts = epoch(until) if until else now
        since_ts = epoch(since) if since else until_ts - 30 * 86400
        if since_ts >= until_ts:
            raise InvalidInput("kpis: the window is empty (since must be before until)")
        with self._read() as conn:
            return sql_kpis(
                conn,
                since=since_ts,
                until=until_ts,
                service=service,
                policies=self.severity_policies,
                now=now,
            )

    def counts(self) -> dict[str, int]:
        """How many rows each table holds: a cheap health view of the store."""
        with self._read() as conn:
            return {
                name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for name, table in (
                    ("events", t.events),
                    ("issues", t.issues),
                    ("incidents", t.incidents),
                    ("timeline", t.timeline),
                )
            }

    # -- plumbing ----------------------------------------------------------------------------

    def _write(self) -> Any:
        return _Translating(self.db.write(), self.url)

    def _read(self) -> Any:
        return _Translating(self.db.read(), self.url)


class _Translating:
    """A context manager that turns driver errors into StoreUnavailable, keeping medic's own."""

    def __init__(self, inner: Any, url: str) -> None:
        self.inner = inner
        self.url = url

    def __enter__(self) -> Connection:
        try:
            return self.inner.__enter__()  # type: ignore[no-any-return]
        except SQLAlchemyError as exc:
            raise translate(exc, self.url) from exc

    def __exit__(self, *exc: Any) -> bool:
        try:
            return bool(self.inner.__exit__(*exc))
        except SQLAlchemyError as err:
            raise translate(err, self.url) from err


def _incident_status(conn: Connection, incident_id: int) -> str:
    if not isinstance(incident_id, int) or isinstance(incident_id, bool):
        raise InvalidInput(f"incident id must be an integer, got {incident_id!r}")
    row = conn.execute(select(t.incidents.c.status).where(t.incidents.c.id == incident_id)).first()
    if row is None:
        raise NotFound(f"no incident {incident_id}")
    return str(row[0])


E = TypeVar("E", bound=Enum)


def _enum(cls: type[E], value: Any, what: str) -> E:
    try:
        return cls(value)
    except ValueError:
        choices = ", ".join(str(m.value) for m in cls)
        raise InvalidInput(f"unknown {what} {value!r}; expected one of: {choices}") from None


def _severity(value: Severity | str | int) -> Severity:
    try:
        return Severity.parse(value)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def _actor(value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("actor: must be a non-empty name")
    return clean_text(value.strip(), 200)


def _required(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what}: must not be empty")
    return value


def _issue_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - ISSUE_FIELDS
    if unknown:
        raise InvalidInput(
            f"issue: unknown field(s) {', '.join(sorted(unknown))}; "
            f"expected {', '.join(sorted(ISSUE_FIELDS))}"
        )
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None:
            continue
        if key == "severity":
            out[key] = int(_severity(value))
        elif key == "self_healing":
            out[key] = _enum(SelfHealing, value, "self-healing coverage").value
        elif key in ("related_files", "related_issues"):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if key == "related_issues":
                try:
                    value = [int(v) for v in value]
                except (TypeError, ValueError):
                    raise InvalidInput(
                        f"related_issues: expected issue ids, got {value!r}"
                    ) from None
            out[key] = dumps(list(value))
        elif key == "response_target_s":
            out[key] = float(value)
        else:
            out[key] = clean_text(str(value), MAX_MESSAGE)
    return out
