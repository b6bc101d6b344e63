"""The KPIs of `_kpis`, aggregated by the database: a few short result rows, whatever the window.

`compute_kpis` over `load_incident_times` is the definition; it builds a Python
object per incident, which cost seconds for a window of 100,000 incidents (issue 2
asks `medic kpis --since 30d` < 500 ms). Here the database does the per-incident
work and SQLite pays per aggregate per row, so each query computes only what the
previous ones showed is there:

1. per service: counts, rates, and the start of its open outage (open incidents
   all end at the same moment, so a service's open ones are one interval);
2. the sum, count, min and max of each duration that has values, and the
   breaching ids per severity;
3. for a duration whose values differ, ``ORDER BY … LIMIT 2 OFFSET`` fetches the
   two ranks its median and its p90 interpolate between;
4. the down intervals of the incidents that ended, merged in Python as before.

tests/tracker/test_kpis.py checks on random histories, on SQLite and PostgreSQL,
that this equals the definition.

Exactness: counts, rates, quantiles, down time, availability, MTBF and breach lists
are computed from the very same floats in the same way, so they are identical. The
means are sums the database adds in its own order, so they may differ from
`math.fsum` in the last bits.

Python truthiness in the definition (``mitigated_at or resolved_at or …``) treats a
timestamp of 0.0 as missing; ``NULLIF(…, 0)`` keeps that meaning here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from medic.taxonomy import Severity
from medic.tracker._kpis import KpiReport, Stat, _union_length, quantile_at
from medic.tracker._model import SeverityPolicy

__all__ = ["sql_kpis"]

_COUNTED = (
    "i.status NOT IN ('cancelled', 'merged') AND NOT i.exclude_from_metrics"
    " AND COALESCE(i.resolution_reason, '') <> 'false_positive'"
)
_ENDED_AT = "COALESCE(NULLIF(i.mitigated_at, 0), NULLIF(i.resolved_at, 0), NULLIF(i.closed_at, 0))"

# The six durations in KpiReport order: MTTD, MTTA, MTTR recovery, repair, respond, resolve.
# Each is NULL where it does not apply, so COUNT and SUM skip those incidents.
_DURATIONS = (
    "i.detected_at - i.impact_started_at",
    "i.acknowledged_at - i.triggered_at",
    "i.resolved_at - i.impact_started_at",
    "CASE WHEN i.resolved_at IS NOT NULL THEN i.resolved_at - (SELECT min(ra.started_at)"
    " FROM recovery_attempts ra WHERE ra.incident_id = i.id) END",
    "i.resolved_at - i.triggered_at",
    "i.closed_at - i.impact_started_at",
)

# A first answer (acknowledged, mitigated or resolved) later than the target: every answer
# late, or none yet and `now` late. min(a) - t > x holds exactly when every a - t > x,
# as rounding never reverses an order, so this is the definition's comparison.
_LATE = """CASE
  WHEN i.acknowledged_at IS NULL AND i.mitigated_at IS NULL AND i.resolved_at IS NULL
  THEN :now - i.triggered_at > {target}
  ELSE (i.acknowledged_at IS NULL OR i.acknowledged_at - i.triggered_at > {target})
   AND (i.mitigated_at IS NULL OR i.mitigated_at - i.triggered_at > {target})
   AND (i.resolved_at IS NULL OR i.resolved_at - i.triggered_at > {target}) END"""

_SERVICES = """
SELECT i.service, CASE WHEN {counted} THEN 1 ELSE 0 END AS counted,
  count(*),
  SUM(CASE WHEN i.status IN ('resolved', 'closed', 'cancelled') THEN 1 ELSE 0 END),
  SUM(CASE WHEN i.status = 'cancelled' OR (i.status IN ('resolved', 'closed')
      AND i.resolution_reason = 'false_positive') THEN 1 ELSE 0 END),
  SUM(CASE WHEN i.status IN ('triggered', 'acknowledged', 'mitigated') THEN 1 ELSE 0 END),
  SUM(CASE WHEN i.resolution_kind = 'auto_recovery' AND i.acknowledged_at IS NULL
      AND NULLIF(i.resolved_at, 0) IS NOT NULL THEN 1 ELSE 0 END),
  SUM(CASE WHEN i.escalation_level >= 3 THEN 1 ELSE 0 END),
  count(i.acknowledged_at), count(i.resolved_at), count(i.closed_at), count({ended_at}),
  MIN(CASE WHEN {ended_at} IS NULL AND {start} < :open_end THEN {start} END)
FROM incidents i
WHERE {window}
GROUP BY i.service, CASE WHEN {counted} THEN 1 ELSE 0 END
"""

_DETAIL = """
SELECT {columns}
FROM incidents i
WHERE {window} AND {counted}
"""

_RANKS = """
SELECT x FROM (SELECT {duration} AS x FROM incidents i WHERE {window} AND {counted}) d
WHERE x IS NOT NULL ORDER BY x LIMIT 2 OFFSET :lo
"""

_ENDED = """
SELECT service, s, e FROM (
  SELECT i.service, {start} AS s, {least}({ended_at}, :until) AS e
  FROM incidents i WHERE {window} AND {counted} AND {ended_at} IS NOT NULL
) iv WHERE e > s
"""


@dataclass
class _Totals:
    """Step 1's answer: what the window holds, per service and in all."""

    ended: int = 0
    false_positives: int = 0
    open: int = 0
    auto: int = 0
    escalated: int = 0
    with_end: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    open_from: dict[str, float] = field(default_factory=dict)
    # How many incidents each of _DURATIONS has a value for, at most.
    has: list[int] = field(default_factory=lambda: [0] * len(_DURATIONS))

    @property
    def counted(self) -> int:
        return sum(self.failures.values())

    def add(self, row: Sequence[Any]) -> None:
        svc, counted, n, ended, false_pos, live, auto, escalated = row[:8]
        acked, resolved, closed, with_end, open_from = row[8:]
        self.ended += int(ended)
        self.false_positives += int(false_pos)
        if not counted:
            return
        self.failures[svc] = self.failures.get(svc, 0) + int(n)
        self.open += int(live)
        self.auto += int(auto)
        self.escalated += int(escalated)
        self.with_end += int(with_end)
        if open_from is not None:
            self.open_from[svc] = float(open_from)
        for k, present in enumerate((n, acked, resolved, resolved, resolved, closed)):
            self.has[k] += int(present)


def sql_kpis(
    conn: Connection,
    *,
    since: float,
    until: float,
    service: str | None,
    policies: Mapping[Severity, SeverityPolicy],
    now: float,
) -> KpiReport:
    """The same report as `compute_kpis(load_incident_times(…))`, aggregated in the database."""
    postgres = conn.dialect.name == "postgresql"
    greatest, least = ("greatest", "least") if postgres else ("max", "min")
    window = "i.triggered_at >= :since AND i.triggered_at < :until"
    open_end = min(until, now)
    params: dict[str, Any] = {"since": since, "until": until, "now": now, "open_end": open_end}
    if service:
        window += " AND i.service = :service"
        params["service"] = service
    parts = {
        "window": window,
        "counted": _COUNTED,
        "ended_at": _ENDED_AT,
        "start": f"{greatest}(i.impact_started_at, :since)",
        "least": least,
    }

    def run(template: str, extra: Mapping[str, Any] | None = None, **sql: str) -> list[Any]:
        query = text(template.format(**parts, **sql))
        return list(conn.execute(query, {**params, **(extra or {})}).all())

    totals = _Totals()
    for row in run(_SERVICES):
        totals.add(row)
    n_counted = totals.counted

    stats = [Stat(0, None, None, None)] * len(_DURATIONS)
    breaches: tuple[dict[str, list[int]], dict[str, list[int]]] = ({}, {})
    if n_counted:
        present = [k for k, n in enumerate(totals.has) if n]
        columns = [
            f"count({d}), SUM({d}), MIN({d}), MAX({d})"
            for d in map(_DURATIONS.__getitem__, present)
        ]
        lists = _breach_lists(policies, params, postgres)
        (detail,) = run(_DETAIL, columns=",\n  ".join(columns + [sql for _, _, sql in lists]))
        for j, k in enumerate(present):
            n, total, low, high = detail[4 * j : 4 * j + 4]
            if n:
                stats[k] = _stat(run, k, int(n), float(total), float(low), float(high))
        for (kind, name, _), joined in zip(lists, detail[4 * len(present) :], strict=True):
            if joined:  # two policies may share a name: their lists join, as in the definition
                merged = breaches[kind].setdefault(name, [])
                merged += map(int, joined.split(","))
                merged.sort()

    intervals: dict[str, list[tuple[float, float]]] = {
        svc: [(start, open_end)] for svc, start in totals.open_from.items()
    }
    if totals.with_end:
        for svc, s, e in run(_ENDED):
            intervals.setdefault(svc, []).append((float(s), float(e)))
    span = max(until - since, 1e-9)
    availability: dict[str, float] = {}
    mtbf_by_service: dict[str, float | None] = {}
    total_up = 0.0
    for svc in sorted(totals.failures):
        downtime = _union_length(intervals.get(svc, []))
        availability[svc] = 1.0 - downtime / span
        up = span - downtime
        total_up += up
        mtbf_by_service[svc] = up / totals.failures[svc]

    return KpiReport(
        since=datetime.fromtimestamp(since, UTC),
        until=datetime.fromtimestamp(until, UTC),
        service=service,
        incidents=n_counted,
        open_incidents=totals.open,
        mttd=stats[0],
        mtta=stats[1],
        mttr_recovery=stats[2],
        mttr_repair=stats[3],
        mttr_respond=stats[4],
        mttr_resolve=stats[5],
        mtbf_s=total_up / n_counted if n_counted else None,
        availability=availability,
        mtbf_by_service=mtbf_by_service,
        auto_recovery_rate=totals.auto / n_counted if n_counted else None,
        escalation_rate=totals.escalated / n_counted if n_counted else None,
        false_positive_rate=totals.false_positives / totals.ended if totals.ended else None,
        response_target_breaches=_by_first_id(breaches[0]),
        rto_breaches=_by_first_id(breaches[1]),
    )


def _stat(
    run: Callable[..., list[Any]], k: int, n: int, total: float, low: float, high: float
) -> Stat:
    """Duration k's Stat; its median and p90 read at most four ranks, fetched only if needed."""
    ranks = {0: low, n - 1: high}
    if low != high:
        for lo in {math.floor((n - 1) * q) for q in (0.5, 0.9)}:  # the ranks quantile_at reads
            if {lo, min(lo + 1, n - 1)} <= ranks.keys():
                continue
            fetched = run(_RANKS, {"lo": lo}, duration=_DURATIONS[k])
            ranks.update((lo + j, float(x)) for j, (x,) in enumerate(fetched))

    def at(pos: int) -> float:
        return ranks[pos] if low != high else low

    return Stat(n, total / n, quantile_at(at, n, 0.5), quantile_at(at, n, 0.9))


def _breach_lists(
    policies: Mapping[Severity, SeverityPolicy], params: dict[str, Any], postgres: bool
) -> list[tuple[int, str, str]]:
    """(0 response target / 1 RTO, severity name, SQL for its breaching ids), per policy."""
    out = []
    for n, (sev, policy) in enumerate(policies.items()):
        params[f"sev{n}"] = int(sev)
        params[f"target{n}"] = policy.response_target.total_seconds()
        conditions = [(0, _LATE.format(target=f":target{n}"))]
        if policy.rto is not None:
            params[f"rto{n}"] = policy.rto.total_seconds()
            conditions.append((1, f"COALESCE(i.resolved_at, :now) - i.impact_started_at > :rto{n}"))
        for kind, condition in conditions:
            chosen = f"CASE WHEN i.severity = :sev{n} AND {condition} THEN i.id END"
            sql = (
                f"string_agg(CAST({chosen} AS TEXT), ',')"
                if postgres
                else f"group_concat({chosen}, ',')"
            )
            out.append((kind, str(policy.severity), sql))
    return out


def _by_first_id(found: Mapping[str, list[int]]) -> dict[str, list[int]]:
    """Ids ascending under each severity's name, severities in the order of their first id."""
    ordered = sorted((ids, name) for name, ids in found.items())
    return {name: ids for ids, name in ordered}
