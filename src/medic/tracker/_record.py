"""Recording signals: grouping into issues and incidents in one short write transaction.

A batch is planned in memory and flushed with a handful of bulk statements, so
the cost per signal is one row in `events` plus its share of a few updates:

1. idempotency: signals whose (source, external_id) is already stored are skipped;
2. issues: looked up by grouping hash (every hash an issue ever had is kept);
   new ones are inserted, known ones get their counters and regressions;
3. incidents: one open incident per dedup key; a trigger joins it or opens a new
   one (a trigger after resolve opens a new incident linked to the old one, as in
   PagerDuty); acknowledge, mitigate and resolve signals move it along;
4. the events, timeline entries and incident↔issue links are inserted in bulk.

Signals are applied in the order given, so a trigger followed by a resolve in the
same batch ends resolved.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    ClauseElement,
    Connection,
    Executable,
    bindparam,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.compiler import SQLCompiler

from medic.errors import InvalidInput, MedicInternalError, StoreUnavailable
from medic.events import Action, ExceptionInfo, Frame, Signal
from medic.taxonomy import GROUPING_VERSION, Grouper, Grouping, GroupingRule, Severity
from medic.tracker import _tables as t
from medic.tracker._model import (
    IncidentStatus,
    IssueCategory,
    IssueStatus,
    IssueSubstatus,
    ResolutionKind,
    ResolutionReason,
    TimelineKind,
)
from medic.tracker._views import RecordResult

# The write transaction: the bare sqlite3 connection on SQLite (see
# `Database.write_sqlite`), a SQLAlchemy connection on PostgreSQL.
Conn = Connection | sqlite3.Connection

__all__ = ["MAX_MESSAGE", "Recorder", "clean_text", "dumps", "epoch"]

MAX_MESSAGE = 8192
MAX_NAME = 200
DEFAULT_SEVERITY = Severity.SEV3
_DEFAULT_SEVERITY = int(DEFAULT_SEVERITY)


def dumps(value: Any) -> str:
    return _ENCODE(value)


# Built once: json.dumps with options makes a new JSONEncoder on every call.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


def epoch(moment: datetime) -> float:
    """UTC epoch seconds; a naive datetime is taken to be UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def clean_text(value: str, limit: int) -> str:
    """Text any database accepts: no NUL bytes (PostgreSQL refuses them), bounded length."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return value


def _name(value: str, what: str) -> str:
    if value in _GOOD_NAMES:
        return value
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidInput(f"{what}: must be a non-empty string")
    if len(text) > MAX_NAME or not text.isprintable():
        raise InvalidInput(f"{what}: {value[:60]!r} is too long or holds control characters")
    if text == value and len(_GOOD_NAMES) < 10_000:
        _GOOD_NAMES.add(value)
    return text


# Service and source names repeat endlessly; remember the ones already checked (bounded).
_GOOD_NAMES: set[str] = set()


@dataclass(slots=True)
class _Issue:
    id: int
    status: str
    substatus: str
    severity: int
    times_seen: int
    first_seen: float
    last_seen: float
    last_release: str | None
    touched: bool = False

    @property
    def ongoing(self) -> bool:
        """Unresolved and past `new`: another sighting changes only counters and times."""
        return self.status == "unresolved" and self.substatus != "new"

    def saw(self, p: _Prepared) -> None:
        """Count one more signal of this ongoing issue."""
        self.touched = True
        self.times_seen += 1
        if p.occurred > self.last_seen:
            self.last_seen = p.occurred
        if p.occurred < self.first_seen:
            self.first_seen = p.occurred
        if p.severity < self.severity:
            self.severity = p.severity
        if p.signal.release:
            self.last_release = p.signal.release


@dataclass(slots=True)
class _Incident:
    id: int
    dedup_key: str
    status: str
    severity: int
    impact_started_at: float
    acknowledged_at: float | None
    mitigated_at: float | None
    resolved_at: float | None
    signal_count: int
    last_signal_at: float | None
    resolution_kind: str | None = None
    resolution_reason: str | None = None
    new_links: set[int] = field(default_factory=set)
    touched: bool = False
    moved: bool = False  # its status changed: the flush rewrites the indexed columns too

    def saw(self, p: _Prepared, issue_id: int | None) -> None:
        """Count one more trigger of this open incident, no more severe than it already is."""
        self.touched = True
        self.signal_count += 1
        last = self.last_signal_at
        if last is None or p.detected > last:
            self.last_signal_at = p.detected
        if p.occurred < self.impact_started_at:
            self.impact_started_at = p.occurred
        if issue_id is not None:
            self.new_links.add(issue_id)


@dataclass(slots=True)
class _Prepared:
    signal: Signal
    service: str
    source: str
    key: str
    severity: int
    occurred: float
    detected: float
    message: str
    grouping: Grouping | None
    external_id: str | None = None  # as stored: cleaned, so lookups find what was written


class Recorder:
    """Turns signals into rows. Holds no connection: each call gets a write transaction."""

    def __init__(
        self, *, rules: Sequence[GroupingRule] = (), categories: Sequence[IssueCategory] = ()
    ) -> None:
        self.rules = tuple(rules)
        self.categories = tuple(categories)
        self._group = Grouper(self.rules)
        # Incident↔issue links already stored. Links are never removed while both ends
        # receive signals and ids are never reused, so a remembered link stays true.
        self._links: set[tuple[int, int]] = set()

    def prepare(self, signals: Iterable[Signal], now: float) -> list[_Prepared]:
        """Validate and group outside the write lock: the lock is held only for the database."""
        out: list[_Prepared] = []
        grouper = self._group
        trigger = Action.TRIGGER
        for index, s in enumerate(signals):
            if type(s) is not Signal and not isinstance(s, Signal):
                raise InvalidInput(
                    f"signal {index}: expected a medic.events.Signal, got {type(s).__name__}"
                )
            service = s.service
            if service not in _GOOD_NAMES:
                service = _name(service, f"signal {index}: service")
            source = s.source
            if source not in _GOOD_NAMES:
                source = _name(source, f"signal {index}: source")
            message = s.message
            if type(message) is not str or len(message) > MAX_MESSAGE or "\x00" in message:
                if not isinstance(message, str):
                    raise InvalidInput(f"signal {index}: message must be a string")
                message = clean_text(message, MAX_MESSAGE)
            at = s.detected_at
            detected = now if at is None else at.timestamp() if at.tzinfo else epoch(at)
            at = s.occurred_at
            occurred = detected if at is None else at.timestamp() if at.tzinfo else epoch(at)
            if occurred > detected:
                occurred = detected
            key = s.dedup_key
            if not key:
                key = f"service:{service}"
            elif len(key) > 500 or "\x00" in key:
                key = clean_text(key, 500)
            severity = _DEFAULT_SEVERITY if s.severity is None else int(s.severity)
            ext = s.external_id or None
            if ext is not None and (len(ext) > 200 or "\x00" in ext):
                ext = clean_text(ext, 200)
            out.append(
                _Prepared(
                    s,
                    service,
                    source,
                    key,
                    severity,
                    occurred,
                    detected,
                    message,
                    grouper(s) if s.action is trigger else None,
                    ext,
                )
            )
        return out

    def write(
        self, conn: Conn, batch: list[_Prepared], now: float
    ) -> tuple[list[RecordResult], list[tuple[int, int]]]:
        """Apply the batch; returns the results and the incident↔issue links it stored.

        What each signal became is kept in flat lists of ints and the event rows are
        built only while the driver consumes them: a batch then leaves about two
        objects per signal for the garbage collector to track instead of six, and
        its collections were a sixth of the time of a batch.
        """
        stored = self._already_stored(conn, batch)
        issues = self._load_issues(conn, batch)
        incidents = self._load_open_incidents(conn, batch)
        registry = list(incidents.values())  # every incident touched, even once replaced by key
        timeline: list[dict[str, Any]] = []
        n = len(batch)
        issue_of: list[int | None] = [None] * n
        incident_of: list[int | None] = [None] * n
        rows: list[int] = []  # the signals stored as new events, in order
        # A duplicate's event: its stored id, or -1 - the index of its first signal here.
        duplicate: dict[int, int] = {}
        firsts: dict[str, dict[str, int]] = {}  # source → external id → first signal here
        new_issues: set[int] = set()
        new_incidents: set[int] = set()
        for i, p in enumerate(batch):
            ext = p.external_id
            if ext is not None:
                known = stored.get(p.source)
                found = known.get(ext) if known is not None else None
                if found is not None:
                    issue_of[i], incident_of[i], duplicate[i] = found
                    continue
                mine = firsts.get(p.source)
                if mine is None:
                    mine = firsts[p.source] = {}
                first = mine.get(ext)
                if first is not None:
                    issue_of[i] = issue_of[first]
                    incident_of[i] = incident_of[first]
                    duplicate[i] = -1 - first
                    continue
                mine[ext] = i
            issue_id = None
            grouping = p.grouping
            if grouping is not None:
                issue = issues.get(grouping.hash)
                if issue is not None and issue.ongoing:
                    issue.saw(p)  # the common case, kept short
                    issue_id = issue.id
                else:
                    issue_id, new_issue = self._issue_for(conn, p, issues, timeline, now)
                    if new_issue:
                        new_issues.add(i)
                issue_of[i] = issue_id
            incident = incidents.get(p.key)
            if (
                incident is not None
                and p.signal.action is Action.TRIGGER
                and incident.status in _OPEN
                and p.severity >= incident.severity
            ):
                incident.saw(p, issue_id)  # the common case, kept short
                incident_of[i] = incident.id
            else:
                incident, new_incident = self._incident_for(
                    conn, p, issue_id, incidents, timeline, now
                )
                if new_incident and incident is not None:
                    registry.append(incident)
                    new_incidents.add(i)
                if incident is not None:
                    incident_of[i] = incident.id
            rows.append(i)
        absent = 0 if isinstance(conn, sqlite3.Connection) else None
        event_ids = self._insert_events(
            conn,
            (_event_row(batch[i], issue_of[i], incident_of[i], now, absent) for i in rows),
            len(rows),
        )
        self._flush_issues(conn, issues.values())
        links = self._flush_incidents(conn, registry)
        if timeline:
            _run_many(conn, _I_TIMELINE, timeline)
        event_of: list[int | None] = [None] * n
        for i, event_id in zip(rows, event_ids, strict=True):
            event_of[i] = event_id
        results = []
        for i in range(n):
            new_row = event_of[i]
            if new_row is not None:
                results.append(
                    RecordResult(
                        new_row,
                        issue_of[i],
                        incident_of[i],
                        False,
                        i in new_issues,
                        i in new_incidents,
                    )
                )
            else:
                seen = duplicate[i]
                results.append(
                    RecordResult(
                        event_of[-1 - seen] if seen < 0 else seen, issue_of[i], incident_of[i], True
                    )
                )
        return results, links

    # -- idempotency -----------------------------------------------------------------

    def _already_stored(
        self, conn: Conn, batch: list[_Prepared]
    ) -> dict[str, dict[str, tuple[int | None, int | None, int]]]:
        """source → external id → (issue, incident, event) of the signals already stored.

        Asked per source, so the lookup walks the unique (source, external_id) index
        instead of scanning the events table.
        """
        wanted: dict[str, set[str]] = {}
        for p in batch:
            if p.external_id is not None:
                ids = wanted.get(p.source)
                if ids is None:
                    ids = wanted[p.source] = set()
                ids.add(p.external_id)
        found: dict[str, dict[str, tuple[int | None, int | None, int]]] = {}
        for source, ids in wanted.items():
            if isinstance(conn, sqlite3.Connection):
                rows = _sqlite_in(conn, _Q_STORED_SQLITE, (source,), list(ids))
            else:
                rows = list(conn.execute(_Q_STORED_PG, {"source": source, "values": list(ids)}))
            if rows:
                found[source] = {r[0]: (r[1], r[2], r[3]) for r in rows}
        return found

    # -- issues ------------------------------------------------------------------------

    def _load_issues(self, conn: Conn, batch: list[_Prepared]) -> dict[str, _Issue]:
        hashes = {p.grouping.hash for p in batch if p.grouping is not None}
        if not hashes:
            return {}
        if len(hashes) == 1:
            rows = _run(conn, _Q_ISSUE, {"version": GROUPING_VERSION, "hash": next(iter(hashes))})
        elif isinstance(conn, sqlite3.Connection):
            rows = _sqlite_in(conn, _Q_ISSUES_SQLITE, (GROUPING_VERSION,), list(hashes))
        else:
            rows = conn.execute(_Q_ISSUES, {"version": GROUPING_VERSION, "hashes": list(hashes)})
        return {r[0]: _Issue(*r[1:]) for r in rows}

    def _issue_for(
        self,
        conn: Conn,
        p: _Prepared,
        issues: dict[str, _Issue],
        timeline: list[dict[str, Any]],
        now: float,
    ) -> tuple[int, bool]:
        grouping = p.grouping
        assert grouping is not None
        known = issues.get(grouping.hash)
        if known is None:
            known = self._create_issue(conn, p, grouping)
            issues[grouping.hash] = known
            return known.id, True
        known.touched = True
        known.times_seen += 1
        known.last_seen = max(known.last_seen, p.occurred)
        known.first_seen = min(known.first_seen, p.occurred)
        known.severity = min(known.severity, p.severity)
        if p.signal.release:
            known.last_release = p.signal.release
        if known.status == IssueStatus.RESOLVED:
            known.status = IssueStatus.UNRESOLVED
            known.substatus = IssueSubstatus.REGRESSED
            timeline.append(
                _timeline_row(
                    None,
                    TimelineKind.STATUS_CHANGED,
                    "issue regressed: seen again after it was resolved",
                    now,
                    actor=p.source,
                    actor_kind="source",
                    details={"from": "resolved", "to": "unresolved", "substatus": "regressed"},
                    issue_id=known.id,
                )
            )
        elif known.status == IssueStatus.UNRESOLVED and known.substatus == IssueSubstatus.NEW:
            known.substatus = IssueSubstatus.ONGOING
        return known.id, False

    def _create_issue(self, conn: Conn, p: _Prepared, grouping: Grouping) -> _Issue:
        s = p.signal
        exc = s.exception
        if exc is not None:
            title = f"{exc.type}: {exc.value}" if exc.value else exc.type
            in_app = [f for f in exc.frames if f.in_app]
            culprit = f"{in_app[-1].module}.{in_app[-1].function}" if in_app else ""
        else:
            title = s.title or p.message
            culprit = f"probe {s.probe}" if s.probe else ""
        inputs = dumps(grouping.inputs)
        category = next(
            (
                c
                for c in self.categories
                if c.matches(kind=s.kind.value, service=p.service, source=p.source)
            ),
            None,
        )
        issue_id = _insert_returning_id(
            conn,
            _I_ISSUE,
            {
                "service": p.service,
                "title": clean_text(title, 500),
                "culprit": clean_text(culprit, 500),
                "kind": str(s.kind),
                "severity": p.severity,
                "status": IssueStatus.UNRESOLVED.value,
                "substatus": IssueSubstatus.NEW.value,
                "first_seen": p.occurred,
                "last_seen": p.occurred,
                "times_seen": 1,
                "reported_by": p.source,
                "first_release": s.release,
                "last_release": s.release,
                "grouping_variant": grouping.variant,
                "grouping_inputs": inputs,
                "category": category.name if category else None,
                "owner": category.owner if category else None,
                "assigned_to": category.owner if category else None,
                "response_target_s": category.response_target.total_seconds() if category else None,
            },
        )
        _run(
            conn,
            _I_HASH,
            {
                "hash": grouping.hash,
                "grouping_version": grouping.version,
                "issue_id": issue_id,
                "variant": grouping.variant,
                "inputs": inputs,
            },
        )
        return _Issue(
            issue_id, "unresolved", "new", p.severity, 1, p.occurred, p.occurred, s.release
        )

    def _flush_issues(self, conn: Conn, issues: Iterable[_Issue]) -> None:
        rows = [
            {
                "b_id": x.id,
                "b_status": x.status,
                "b_substatus": x.substatus,
                "b_severity": x.severity,
                "b_times_seen": x.times_seen,
                "b_first_seen": x.first_seen,
                "b_last_seen": x.last_seen,
                "b_last_release": x.last_release,
            }
            for x in issues
            if x.touched
        ]
        if rows:
            _run_many(conn, _U_ISSUE, rows)

    # -- incidents ---------------------------------------------------------------------

    def _load_open_incidents(self, conn: Conn, batch: list[_Prepared]) -> dict[str, _Incident]:
        keys = {p.key for p in batch}
        if len(keys) == 1:
            rows = _run(conn, _Q_OPEN_ONE, {"key": next(iter(keys))})
        elif isinstance(conn, sqlite3.Connection):
            rows = _sqlite_in(conn, _Q_OPEN_SQLITE, (), list(keys))
        else:
            rows = conn.execute(_Q_OPEN, {"keys": list(keys)})
        return {r[1]: _Incident(*r) for r in rows}

    def _incident_for(
        self,
        conn: Conn,
        p: _Prepared,
        issue_id: int | None,
        incidents: dict[str, _Incident],
        timeline: list[dict[str, Any]],
        now: float,
    ) -> tuple[_Incident | None, bool]:
        s = p.signal
        inc = incidents.get(p.key)
        if inc is not None and inc.status not in _OPEN:
            inc = None
        created = False
        if s.action is Action.TRIGGER:
            if inc is None:
                inc = self._create_incident(conn, p, now, incidents, timeline)
                incidents[p.key] = inc
                created = True
            else:
                inc.touched = True
                inc.signal_count += 1
                inc.last_signal_at = max(inc.last_signal_at or 0.0, p.detected)
                inc.impact_started_at = min(inc.impact_started_at, p.occurred)
                if p.severity < inc.severity:
                    timeline.append(
                        _timeline_row(
                            inc.id,
                            TimelineKind.SEVERITY_CHANGED,
                            f"severity raised to SEV{p.severity} by a new signal",
                            now,
                            actor=p.source,
                            actor_kind="source",
                            details={"from": f"SEV{inc.severity}", "to": f"SEV{p.severity}"},
                        )
                    )
                    inc.severity = p.severity
            if issue_id is not None:
                inc.new_links.add(issue_id)
            return inc, created
        if inc is None:
            return None, False  # PagerDuty ignores ack/resolve for an unknown dedup key
        target = {
            Action.ACKNOWLEDGE: IncidentStatus.ACKNOWLEDGED,
            Action.MITIGATE: IncidentStatus.MITIGATED,
            Action.RESOLVE: IncidentStatus.RESOLVED,
        }[s.action]
        if inc.status == target or target not in _NEXT[IncidentStatus(inc.status)]:
            return inc, False  # a repeated or out-of-order report changes nothing
        at = p.detected
        inc.touched = True
        inc.moved = True
        old = inc.status
        inc.status = target.value
        if target is IncidentStatus.ACKNOWLEDGED:
            inc.acknowledged_at = at
        elif target is IncidentStatus.MITIGATED:
            inc.mitigated_at = at
        else:
            inc.resolved_at = at
            inc.mitigated_at = inc.mitigated_at or at
            inc.resolution_kind = ResolutionKind.AUTO_RECOVERY.value
            inc.resolution_reason = ResolutionReason.FIXED.value
        timeline.append(
            _timeline_row(
                inc.id,
                TimelineKind.STATUS_CHANGED,
                f"{old} → {target.value}: {p.message}" if p.message else f"{old} → {target.value}",
                at,
                actor=p.source,
                actor_kind="automation",
                details={"from": old, "to": target.value},
            )
        )
        return inc, False

    def _create_incident(
        self,
        conn: Conn,
        p: _Prepared,
        now: float,
        incidents: dict[str, _Incident],
        timeline: list[dict[str, Any]],
    ) -> _Incident:
        s = p.signal
        previous = incidents.get(p.key)
        if previous is not None:
            # Closed earlier in this batch: release its dedup key now (the unique index on
            # open keys would refuse the new incident); its full row is written at flush.
            _run(conn, _U_CLOSE, {"b_id": previous.id})
        related = [previous.id] if previous is not None else self._last_closed(conn, p.key)
        title = clean_text(f"{p.service}: {s.title or p.message}", 300)
        incident_id = _insert_returning_id(
            conn,
            _I_INCIDENT,
            {
                "title": title,
                "service": p.service,
                "severity": p.severity,
                "status": IncidentStatus.TRIGGERED.value,
                "is_open": True,
                "dedup_key": p.key,
                "impact_started_at": p.occurred,
                "detected_at": p.detected,
                "triggered_at": p.detected,  # the alert fires when the failure is detected
                "signal_count": 1,
                "last_signal_at": p.detected,
                "related": dumps(related),
            },
        )
        timeline.append(
            _timeline_row(
                incident_id,
                TimelineKind.SIGNAL_RECEIVED,
                f"triggered by {p.source}: {p.message}",
                p.detected,
                actor=p.source,
                actor_kind="source",
                details={"severity": f"SEV{p.severity}", "kind": str(s.kind), "probe": s.probe},
            )
        )
        return _Incident(
            incident_id, p.key, "triggered", p.severity, p.occurred, None, None, None, 1, p.detected
        )

    def _last_closed(self, conn: Conn, key: str) -> list[int]:
        row = _run(conn, _Q_LAST, {"key": key}).fetchone()
        return [int(row[0])] if row else []

    def _flush_incidents(self, conn: Conn, incidents: list[_Incident]) -> list[tuple[int, int]]:
        rows = []
        counted = []
        links: list[dict[str, int]] = []
        for inc in incidents:
            for issue_id in inc.new_links:
                if (inc.id, issue_id) not in self._links:
                    links.append({"incident_id": inc.id, "issue_id": issue_id})
            if not inc.touched:
                continue
            if not inc.moved:
                counted.append(
                    {
                        "b_id": inc.id,
                        "b_severity": inc.severity,
                        "b_impact": inc.impact_started_at,
                        "b_count": inc.signal_count,
                        "b_last": inc.last_signal_at,
                    }
                )
                continue
            rows.append(
                {
                    "b_id": inc.id,
                    "b_status": inc.status,
                    "b_is_open": inc.status in _OPEN,
                    "b_severity": inc.severity,
                    "b_impact": inc.impact_started_at,
                    "b_ack": inc.acknowledged_at,
                    "b_mit": inc.mitigated_at,
                    "b_res": inc.resolved_at,
                    "b_count": inc.signal_count,
                    "b_last": inc.last_signal_at,
                    "b_rkind": inc.resolution_kind,
                    "b_rreason": inc.resolution_reason,
                }
            )
        if counted:
            _run_many(conn, _U_INCIDENT_COUNTED, counted)
        if rows:
            _run_many(conn, _U_INCIDENT, rows)
        if links:
            sqlite = isinstance(conn, sqlite3.Connection)
            _run_many(conn, _I_LINK_SQLITE if sqlite else _I_LINK_PG, links)
        return [(x["incident_id"], x["issue_id"]) for x in links]

    def remember(self, links: list[tuple[int, int]]) -> None:
        """Note links whose transaction committed (bounded: forgotten wholesale when large)."""
        if len(self._links) > 10_000:
            self._links.clear()
        self._links.update(links)

    # -- events --------------------------------------------------------------------------

    def _insert_events(self, conn: Conn, rows: Iterable[tuple[Any, ...]], count: int) -> list[int]:
        """Insert `count` event rows, made as they are consumed; returns their new ids."""
        if not count:
            return []
        if isinstance(conn, sqlite3.Connection):
            if count == 1:
                return [int(_sqlite_call(conn, _EVENT_INSERT, next(iter(rows))).lastrowid or 0)]
            # One executemany straight into the driver: SQLite cannot batch RETURNING, and
            # with the write lock held and no AUTOINCREMENT gaps the new ids are contiguous.
            _sqlite_call(conn, _EVENT_INSERT, rows, many=True)
            last = int(_sqlite_call(conn, "SELECT max(id) FROM events", ()).fetchone()[0])
            return list(range(last - count + 1, last + 1))
        if conn.dialect.name == "postgresql":
            return _copy_events_pg(conn, rows, count)
        result = conn.execute(
            _I_EVENTS_RETURNING, [dict(zip(_EVENT_COLUMNS, r, strict=True)) for r in rows]
        )
        return [int(r[0]) for r in result]


# Statements are built once: constructing SQLAlchemy expressions per call costs more
# than executing them. IN lists use expanding parameters.
_i, _c, _h, _e = t.issues.c, t.incidents.c, t.issue_hashes.c, t.events.c
_Q_STORED_SQLITE = (
    "SELECT external_id, issue_id, incident_id, id FROM events WHERE source = ? AND external_id IN"
)
# One index probe per wanted id, whatever the table's size: with `external_id = ANY(…)`
# the planner scans a young events table whole, for every batch.
_Q_STORED_PG = text(
    "SELECT e.external_id, e.issue_id, e.incident_id, e.id"
    " FROM unnest(CAST(:values AS varchar[])) AS wanted(external_id)"
    " CROSS JOIN LATERAL (SELECT external_id, issue_id, incident_id, id FROM events"
    " WHERE source = :source AND external_id = wanted.external_id LIMIT 1) AS e"
)
_ISSUES_BASE = (
    select(
        _h.hash,
        _i.id,
        _i.status,
        _i.substatus,
        _i.severity,
        _i.times_seen,
        _i.first_seen,
        _i.last_seen,
        _i.last_release,
    )
    .join(t.issues, _i.id == _h.issue_id)
    .where(_h.grouping_version == bindparam("version"))
)
_Q_ISSUES = _ISSUES_BASE.where(_h.hash.in_(bindparam("hashes", expanding=True)))
# Single-key twins of the IN queries: a plain equality skips expanding-parameter work,
# which is most of the cost of recording one signal at a time.
_Q_ISSUE = _ISSUES_BASE.where(_h.hash == bindparam("hash"))
_OPEN_BASE = select(
    _c.id,
    _c.dedup_key,
    _c.status,
    _c.severity,
    _c.impact_started_at,
    _c.acknowledged_at,
    _c.mitigated_at,
    _c.resolved_at,
    _c.signal_count,
    _c.last_signal_at,
).where(_c.is_open.is_(True))
_Q_OPEN = _OPEN_BASE.where(_c.dedup_key.in_(bindparam("keys", expanding=True)))
_Q_OPEN_ONE = _OPEN_BASE.where(_c.dedup_key == bindparam("key"))
_Q_LAST = select(_c.id).where(_c.dedup_key == bindparam("key")).order_by(_c.id.desc()).limit(1)
# Inserts name their columns, so the statement compiled once for the driver binds exactly
# the values given and the rest take their server defaults.
_ISSUE_COLUMNS = (
    "service", "title", "culprit", "kind", "severity", "status", "substatus", "first_seen",
    "last_seen", "times_seen", "reported_by", "first_release", "last_release",
    "grouping_variant", "grouping_inputs", "category", "owner", "assigned_to",
    "response_target_s",
)  # fmt: skip
_INCIDENT_COLUMNS = (
    "title", "service", "severity", "status", "is_open", "dedup_key", "impact_started_at",
    "detected_at", "triggered_at", "signal_count", "last_signal_at", "related",
)  # fmt: skip
_I_ISSUE = insert(t.issues).values({c: bindparam(c) for c in _ISSUE_COLUMNS}).returning(_i.id)
_I_HASH = insert(t.issue_hashes).values(
    {c: bindparam(c) for c in ("hash", "grouping_version", "issue_id", "variant", "inputs")}
)
_I_INCIDENT = (
    insert(t.incidents).values({c: bindparam(c) for c in _INCIDENT_COLUMNS}).returning(_c.id)
)
# A link may exist already (the incident saw this issue before): the database skips it.
_I_LINK_SQLITE = sqlite_insert(t.incident_issues).on_conflict_do_nothing()
_I_LINK_PG = pg_insert(t.incident_issues).on_conflict_do_nothing()
_I_TIMELINE = insert(t.timeline)
_I_EVENTS_RETURNING = insert(t.events).returning(_e.id, sort_by_parameter_order=True)
_U_ISSUE = (
    update(t.issues)
    .where(_i.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        substatus=bindparam("b_substatus"),
        severity=bindparam("b_severity"),
        times_seen=bindparam("b_times_seen"),
        first_seen=bindparam("b_first_seen"),
        last_seen=bindparam("b_last_seen"),
        last_release=bindparam("b_last_release"),
    )
)
# An incident that only counted more triggers: no indexed column changes, so naming
# none keeps SQLite from rewriting the status and open-key index entries (two of the
# ten pages one recorded signal writes).
_U_INCIDENT_COUNTED = (
    update(t.incidents)
    .where(_c.id == bindparam("b_id"))
    .values(
        severity=bindparam("b_severity"),
        impact_started_at=bindparam("b_impact"),
        signal_count=bindparam("b_count"),
        last_signal_at=bindparam("b_last"),
    )
)
_U_CLOSE = update(t.incidents).where(_c.id == bindparam("b_id")).values(is_open=False)
_U_INCIDENT = (
    update(t.incidents)
    .where(_c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        is_open=bindparam("b_is_open"),
        severity=bindparam("b_severity"),
        impact_started_at=bindparam("b_impact"),
        acknowledged_at=bindparam("b_ack"),
        mitigated_at=bindparam("b_mit"),
        resolved_at=bindparam("b_res"),
        signal_count=bindparam("b_count"),
        last_signal_at=bindparam("b_last"),
        resolution_kind=bindparam("b_rkind"),
        resolution_reason=bindparam("b_rreason"),
    )
)


# On SQLite every statement runs on the bare sqlite3 connection of the transaction,
# compiled once: SQLAlchemy's per-execution work costs several times what SQLite
# spends on these one-row queries, and one committed record() runs six of them.
# PostgreSQL uses SQLAlchemy as usual.
_SQLITE = sqlite_dialect()
_COMPILED: dict[int, tuple[str, tuple[str, ...], dict[str, Any]]] = {}


def _sqlite_sql(stmt: Executable) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    found = _COMPILED.get(id(stmt))
    if found is None:
        compiled = cast(SQLCompiler, cast(ClauseElement, stmt).compile(dialect=_SQLITE))
        found = (str(compiled), tuple(compiled.positiontup or ()), dict(compiled.params))
        _COMPILED[id(stmt)] = found
    return found


def _sqlite_call(
    conn: sqlite3.Connection, sql: str, args: Any, *, many: bool = False
) -> sqlite3.Cursor:
    try:
        if many:
            return conn.executemany(sql, args)
        return conn.execute(sql, args)
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"store write failed: {exc}") from exc


def _sqlite_in(
    conn: sqlite3.Connection, sql: str, fixed: tuple[Any, ...], values: list[Any]
) -> list[Any]:
    """Rows of a query ending in `IN`, given the statement text up to there.

    The text gets one placeholder per value, in chunks well below SQLite's
    bound-variable limit, so no statement is compiled per call.
    """
    out: list[Any] = []
    for i in range(0, len(values), _IN_CHUNK):
        chunk = values[i : i + _IN_CHUNK]
        marks = _MARKS.get(len(chunk))
        if marks is None:
            marks = _MARKS[len(chunk)] = f" ({', '.join('?' * len(chunk))})"
        out.extend(_sqlite_call(conn, sql + marks, (*fixed, *chunk)).fetchall())
    return out


_IN_CHUNK = 500
_MARKS: dict[int, str] = {}
# SQLite's IN queries: the statement text up to `IN`, for `_sqlite_in`.
_Q_ISSUES_SQLITE = _sqlite_sql(_ISSUES_BASE)[0] + " AND issue_hashes.hash IN"
_Q_OPEN_SQLITE = _sqlite_sql(_OPEN_BASE)[0] + " AND incidents.dedup_key IN"


def _run(conn: Conn, stmt: Executable, params: dict[str, Any]) -> Any:
    """Execute one prebuilt statement; returns something with fetchone() and iteration."""
    if not isinstance(conn, sqlite3.Connection):
        return conn.execute(stmt, params)
    sql, order, defaults = _sqlite_sql(stmt)
    return _sqlite_call(conn, sql, tuple(params[k] if k in params else defaults[k] for k in order))


def _insert_returning_id(conn: Conn, stmt: Executable, params: dict[str, Any]) -> int:
    """Insert one row and return its new id (RETURNING works on SQLite ≥ 3.35 and PostgreSQL)."""
    row = _run(conn, stmt, params).fetchone()
    if row is None:
        raise MedicInternalError("an INSERT … RETURNING returned no row")
    return int(row[0])


def _run_many(conn: Conn, stmt: Executable, rows: list[dict[str, Any]]) -> None:
    if not isinstance(conn, sqlite3.Connection):
        conn.execute(stmt, rows)
        return
    sql, order, defaults = _sqlite_sql(stmt)
    args = [tuple(row[k] if k in row else defaults[k] for k in order) for row in rows]
    _sqlite_call(conn, sql, args, many=True)


def _copy_events_pg(conn: Connection, rows: Iterable[tuple[Any, ...]], count: int) -> list[int]:
    """Take ids from the sequence in one query, then COPY the rows: PostgreSQL's fast path.

    A multi-row INSERT … RETURNING of 1,000 rows spends most of its time having the
    driver parse a fresh query text; COPY streams the rows instead.
    """
    import psycopg  # already loaded: this is a PostgreSQL store

    raw = conn.connection.driver_connection
    if raw is None:
        raise MedicInternalError("the PostgreSQL connection has no driver connection")
    try:
        with raw.cursor() as cursor:
            # On the driver's cursor: SQLAlchemy's result wrapping of 1,000 one-column
            # rows costs more than the query.
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence('events', 'id'))"
                " FROM generate_series(1, %s)",
                (count,),
            )
            ids = [int(r[0]) for r in cursor.fetchall()]
        with raw.cursor() as cursor, cursor.copy(_EVENT_COPY) as copy:
            for event_id, row in zip(ids, rows, strict=True):
                copy.write_row((event_id, *row))
    except psycopg.Error as exc:  # the driver's own: SQLAlchemy never saw these statements
        raise StoreUnavailable(f"store write failed: {exc}") from exc
    return ids


_EVENT_COLUMNS = tuple(c.name for c in t.events.columns if c.name != "id")
_EVENT_COPY = (
    f"COPY events (id, {', '.join(c.name for c in t.events.columns if c.name != 'id')}) FROM STDIN"
)
# SQLite's insert: an optional column arrives as 0 when absent (see _event_row). A
# bound parameter has no affinity, so NULLIF(?, 0) keeps every string, "0" included.
_EVENT_OPTIONAL = {
    "external_id", "title", "probe", "reason", "release", "environment", "tags", "exception",
    "issue_id", "incident_id",
}  # fmt: skip
_EVENT_INSERT = (
    f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) VALUES ("
    + ", ".join("NULLIF(?, 0)" if c in _EVENT_OPTIONAL else "?" for c in _EVENT_COLUMNS)
    + ")"
)
_OPEN = {
    s.value
    for s in (IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED, IncidentStatus.MITIGATED)
}
_NEXT = {
    IncidentStatus.TRIGGERED: {
        IncidentStatus.ACKNOWLEDGED,
        IncidentStatus.MITIGATED,
        IncidentStatus.RESOLVED,
    },
    IncidentStatus.ACKNOWLEDGED: {IncidentStatus.MITIGATED, IncidentStatus.RESOLVED},
    IncidentStatus.MITIGATED: {IncidentStatus.RESOLVED},
}


def _event_row(
    p: _Prepared,
    issue_id: int | None,
    incident_id: int | None,
    now: float,
    absent: int | None = None,
) -> tuple[Any, ...]:
    """One events row as a tuple in `_EVENT_COLUMNS` order (the driver takes it as is).

    An absent value is `absent`: None for PostgreSQL; 0 for SQLite, whose insert
    turns it back into NULL (`_EVENT_INSERT`), because Python's sqlite3 binds None
    through its adapter lookup at many times the cost of an int. An empty probe,
    release or environment is absent too, on both databases.
    """
    s = p.signal
    exc = s.exception
    return (
        p.source,
        p.external_id or absent,
        now,
        p.occurred,
        p.detected,
        p.service,
        s.kind._value_,
        p.severity,
        s.action._value_,
        p.message,
        clean_text(s.title, 500) if s.title else absent,
        p.grouping.hash if p.grouping else "",
        p.key,
        s.probe or absent,
        clean_text(s.reason, 500) if s.reason else absent,
        s.release or absent,
        s.environment or absent,
        dumps(dict(s.tags)) if s.tags else absent,
        _exception_json(exc) if exc else absent,
        issue_id or absent,
        incident_id or absent,
    )


def _exception_json(exc: ExceptionInfo) -> str:
    """`dumps` of the exception, with the JSON of its frames remembered (bounded).

    One failure repeats one stack: encoding the frames is most of the work and
    the same answer every time. The text is exactly what `dumps` gives.
    """
    kind, value, frames = exc.type, exc.value, exc.frames
    if type(kind) is str and type(value) is str:
        try:
            encoded = _FRAMES_JSON.get(frames)
        except TypeError:  # a frame holding something unhashable: no shortcut
            encoded = None
        else:
            if encoded is None:
                encoded = dumps(_frames(frames))
                if len(_FRAMES_JSON) >= 256:
                    _FRAMES_JSON.clear()
                _FRAMES_JSON[frames] = encoded
        if encoded is not None:
            return f'{{"type":{_STR(kind)},"value":{_STR(value)},"frames":{encoded}}}'
    return dumps({"type": kind, "value": value, "frames": _frames(frames)})


def _frames(frames: Iterable[Frame]) -> list[dict[str, Any]]:
    return [
        {
            "function": f.function,
            "module": f.module,
            "filename": f.filename,
            "lineno": f.lineno,
            "in_app": f.in_app,
        }
        for f in frames
    ]


_FRAMES_JSON: dict[Any, str] = {}
# How the encoder writes a str when ensure_ascii is off (C-accelerated).
_STR: Callable[[str], str] = json.encoder.encode_basestring


def _timeline_row(
    incident_id: int | None,
    kind: TimelineKind,
    message: str,
    at: float,
    *,
    actor: str,
    actor_kind: str,
    details: dict[str, Any] | None = None,
    issue_id: int | None = None,
    event_id: int | None = None,
) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "issue_id": issue_id,
        "at": at,
        "actor_kind": actor_kind,
        "actor": actor,
        "kind": kind.value,
        "message": clean_text(message, 2000),
        "details": dumps(details or {}),
        "event_id": event_id,
    }
