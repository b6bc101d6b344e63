"""KPIs from the incident record, each named precisely, with median and p90 beside the mean.

Definitions (research/incidents.md §4; S impact start, D detected, T triggered,
A acknowledged, M mitigated, R resolved, C closed):

- MTTD = D − S.  MTTA = A − T over incidents a human acknowledged.
- MTTR (recovery, the headline) = R − S: the whole outage as users saw it.
- MTTR (repair) = R − start of the first recovery action (incidents with one).
- MTTR (respond) = R − T.  MTTR (resolve) = C − S.
- MTBF = up time in the window / number of failures, per service and overall.
- Availability = 1 − down time / window, per service; an incident is down time
  from S until it was mitigated (or resolved, or the window's end if still open);
  overlapping incidents of one service count once.
- Auto-recovery rate = resolved by automation without a human acknowledgement /
  incidents that were not false positives.
- Escalation rate = incidents that reached a human level (L3+) / incidents.
- False-positive rate = cancelled or false_positive / incidents that ended.
- Response-target breaches: no first response (ack, mitigation or resolution)
  within the severity's target; RTO breaches: R − S over the severity's RTO.

Cancelled, merged and `exclude_from_metrics` incidents count only toward the
false-positive rate. The state columns these read are projections of the
append-only timeline, written in the same transaction as their entry.

`compute_kpis` is the definition, one plain Python pass; `Tracker.kpis` asks the
database for the same numbers (`_kpi_sql`), and a property test holds the two equal.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from medic.taxonomy import Severity
from medic.tracker._model import SeverityPolicy

__all__ = [
    "IncidentTimes",
    "KpiReport",
    "Stat",
    "compute_kpis",
    "load_incident_times",
    "quantile_at",
]


@dataclass(frozen=True, slots=True)
class Stat:
    """A duration KPI in seconds: mean with median and p90, over `count` incidents."""

    count: int
    mean: float | None
    median: float | None
    p90: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        if not values:
            return cls(0, None, None, None)
        ordered = sorted(values)
        return cls(
            len(ordered),
            math.fsum(ordered) / len(ordered),
            _quantile(ordered, 0.5),
            _quantile(ordered, 0.9),
        )


def _quantile(ordered: Sequence[float], q: float) -> float:
    return quantile_at(ordered.__getitem__, len(ordered), q)


def quantile_at(value_at: Callable[[int], float], n: int, q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, PostgreSQL's percentile_cont).

    Reads only ranks floor((n - 1) q) and the next one, so the SQL path can fetch just those.
    """
    pos = (n - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    return value_at(lo) + (value_at(hi) - value_at(lo)) * (pos - lo)


@dataclass(frozen=True, slots=True)
class IncidentTimes:
    """The columns KPIs need from one incident (epoch seconds)."""

    id: int
    service: str
    severity: int
    status: str
    impact_started_at: float
    detected_at: float
    triggered_at: float
    acknowledged_at: float | None
    mitigated_at: float | None
    resolved_at: float | None
    closed_at: float | None
    escalation_level: int
    resolution_kind: str | None
    resolution_reason: str | None
    exclude_from_metrics: bool | int
    first_recovery_at: float | None


@dataclass(frozen=True, slots=True)
class KpiReport:
    since: datetime
    until: datetime
    service: str | None
    incidents: int
    open_incidents: int
    mttd: Stat
    mtta: Stat
    mttr_recovery: Stat
    mttr_repair: Stat
    mttr_respond: Stat
    mttr_resolve: Stat
    mtbf_s: float | None
    availability: dict[str, float]
    mtbf_by_service: dict[str, float | None]
    auto_recovery_rate: float | None
    escalation_rate: float | None
    false_positive_rate: float | None
    response_target_breaches: dict[str, list[int]] = field(default_factory=dict)
    rto_breaches: dict[str, list[int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"] = self.since.isoformat()
        data["until"] = self.until.isoformat()
        return data


_SELECT = """
SELECT i.id, i.service, i.severity, i.status, i.impact_started_at, i.detected_at,
       i.triggered_at, i.acknowledged_at, i.mitigated_at, i.resolved_at, i.closed_at,
       i.escalation_level, i.resolution_kind, i.resolution_reason, i.exclude_from_metrics,
       r.first_started
FROM incidents i
LEFT JOIN (
    SELECT incident_id, min(started_at) AS first_started
    FROM recovery_attempts GROUP BY incident_id
) r ON r.incident_id = i.id
WHERE i.triggered_at >= :since AND i.triggered_at < :until{service}
ORDER BY i.id
"""


def load_incident_times(
    conn: Connection, *, since: float, until: float, service: str | None
) -> list[IncidentTimes]:
    """The incidents triggered in [since, until), narrowly: one row of plain values each."""
    sql = _SELECT.format(service=" AND i.service = :service" if service else "")
    params: dict[str, Any] = {"since": since, "until": until}
    if service:
        params["service"] = service
    # Straight from the driver: SQLAlchemy's row objects would cost as much as the query.
    if conn.dialect.name == "sqlite":  # sqlite3 takes :name parameters as they are
        rows = conn.exec_driver_sql(sql, params).fetchall()
    else:
        rows = conn.execute(text(sql), params).all()
    return [IncidentTimes(*r) for r in rows]


def compute_kpis(
    incidents: Iterable[IncidentTimes],
    *,
    since: float,
    until: float,
    service: str | None,
    policies: Mapping[Severity, SeverityPolicy],
    now: float,
) -> KpiReport:
    """Every KPI from the incidents' times: the definition `_kpi_sql.sql_kpis` is checked against."""
    all_incidents = list(incidents)
    ended = [i for i in all_incidents if i.status in ("resolved", "closed", "cancelled")]
    false_pos = [
        i for i in ended if i.status == "cancelled" or i.resolution_reason == "false_positive"
    ]
    counted = [
        i
        for i in all_incidents
        if i.status not in ("cancelled", "merged")
        and not i.exclude_from_metrics
        and i.resolution_reason != "false_positive"
    ]
    mttd = [i.detected_at - i.impact_started_at for i in counted]
    mtta = [i.acknowledged_at - i.triggered_at for i in counted if i.acknowledged_at is not None]
    resolved = [i for i in counted if i.resolved_at is not None]
    recovery = [i.resolved_at - i.impact_started_at for i in resolved]  # type: ignore[operator]
    repair = [
        i.resolved_at - i.first_recovery_at  # type: ignore[operator]
        for i in resolved
        if i.first_recovery_at is not None
    ]
    respond = [i.resolved_at - i.triggered_at for i in resolved]  # type: ignore[operator]
    closed = [i.closed_at - i.impact_started_at for i in counted if i.closed_at is not None]

    window = max(until - since, 1e-9)
    down: dict[str, list[tuple[float, float]]] = defaultdict(list)
    failures: dict[str, int] = defaultdict(int)
    for i in counted:
        end = i.mitigated_at or i.resolved_at or i.closed_at or min(until, now)
        start, stop = max(i.impact_started_at, since), min(end, until)
        failures[i.service] += 1
        if stop > start:
            down[i.service].append((start, stop))
    availability: dict[str, float] = {}
    mtbf_by_service: dict[str, float | None] = {}
    total_up = 0.0
    for svc in sorted(failures):
        downtime = _union_length(down.get(svc, []))
        availability[svc] = 1.0 - downtime / window
        up = window - downtime
        total_up += up
        mtbf_by_service[svc] = up / failures[svc]
    n_fail = sum(failures.values())

    auto = [
        i
        for i in counted
        if i.resolution_kind == "auto_recovery" and i.acknowledged_at is None and i.resolved_at
    ]
    escalated = [i for i in counted if i.escalation_level >= 3]
    response_breaches: dict[str, list[int]] = {}
    rto_breaches: dict[str, list[int]] = {}
    targets = {
        int(sev): (
            str(policy.severity),
            policy.response_target.total_seconds(),
            policy.rto.total_seconds() if policy.rto is not None else None,
        )
        for sev, policy in policies.items()
    }
    for i in counted:
        found = targets.get(i.severity)
        if found is None:
            continue
        name, target, rto = found
        answers = [t for t in (i.acknowledged_at, i.mitigated_at, i.resolved_at) if t is not None]
        first = min(answers) if answers else now
        if first - i.triggered_at > target:
            response_breaches.setdefault(name, []).append(i.id)
        if rto is not None:
            end = i.resolved_at if i.resolved_at is not None else now
            if end - i.impact_started_at > rto:
                rto_breaches.setdefault(name, []).append(i.id)

    return KpiReport(
        since=datetime.fromtimestamp(since, UTC),
        until=datetime.fromtimestamp(until, UTC),
        service=service,
        incidents=len(counted),
        open_incidents=sum(
            1 for i in counted if i.status in ("triggered", "acknowledged", "mitigated")
        ),
        mttd=Stat.of(mttd),
        mtta=Stat.of(mtta),
        mttr_recovery=Stat.of(recovery),
        mttr_repair=Stat.of(repair),
        mttr_respond=Stat.of(respond),
        mttr_resolve=Stat.of(closed),
        mtbf_s=total_up / n_fail if n_fail else None,
        availability=availability,
        mtbf_by_service=mtbf_by_service,
        auto_recovery_rate=len(auto) / len(counted) if counted else None,
        escalation_rate=len(escalated) / len(counted) if counted else None,
        false_positive_rate=len(false_pos) / len(ended) if ended else None,
        response_target_breaches=response_breaches,
        rto_breaches=rto_breaches,
    )


def _union_length(intervals: list[tuple[float, float]]) -> float:
    total = 0.0
    cur_start = cur_end = None
    for start, end in sorted(intervals):
        if cur_end is None or start > cur_end:
            if cur_end is not None and cur_start is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None and cur_start is not None:
        total += cur_end - cur_start
    return total
