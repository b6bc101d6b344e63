"""KPIs: exact values on a known history, and Python agreeing with SQL on random ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medic.clock import parse_duration
from medic.events import Action, Signal
from medic.taxonomy import Severity
from medic.testing import FakeClock
from medic.tracker import DEFAULT_SEVERITY_POLICIES, SeverityPolicy, Tracker
from medic.tracker._kpi_sql import sql_kpis
from medic.tracker._kpis import compute_kpis, load_incident_times
from medic.tracker._tables import incidents, recovery_attempts

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _history(url: str) -> tuple[Tracker, FakeClock, dict[str, int]]:
    clock = FakeClock(start=T0)
    tracker = Tracker(url, clock=clock)
    ids: dict[str, int] = {}
    # 1: web crashes at 0, detected at 10, restart starts 20, mitigated 40, healthy 70.
    clock.advance(10)
    ids["auto"] = tracker.record(
        Signal("web", "exit 1", dedup_key="web", occurred_at=at(0), detected_at=at(10))
    ).incident_id  # type: ignore[assignment]
    tracker.record_recovery(
        ids["auto"],
        action="restart",
        attempt=1,
        started_at=at(20),
        ended_at=at(40),
        outcome="success",
    )
    tracker.record(Signal("web", "up", dedup_key="web", action=Action.MITIGATE, detected_at=at(40)))
    tracker.record(Signal("web", "ok", dedup_key="web", action=Action.RESOLVE, detected_at=at(70)))
    # 2: web again at 1000, detected 1030, acked 1090, resolved by a human 1630, closed 3000.
    clock.advance(1020)
    ids["human"] = tracker.record(
        Signal(
            "web",
            "exit 1",
            dedup_key="web",
            occurred_at=at(1000),
            detected_at=at(1030),
            severity=Severity.SEV1,
        )
    ).incident_id  # type: ignore[assignment]
    clock.advance(60)
    tracker.acknowledge(ids["human"], actor="ana")
    clock.advance(540)
    tracker.resolve(ids["human"], actor="ana")
    clock.advance(1370)
    tracker.close_incident(ids["human"], actor="ana")
    # 3: a false alarm on api at 5000, cancelled.
    clock.advance(2000)
    ids["false"] = tracker.record(
        Signal("api", "flap", dedup_key="api", occurred_at=at(5000), detected_at=at(5000))
    ).incident_id  # type: ignore[assignment]
    tracker.cancel(ids["false"], actor="ana")
    return tracker, clock, ids


def test_kpis_on_a_known_history_are_exact(store_url: str) -> None:
    """Every KPI matches a hand computation on three incidents."""
    tracker, _clock, _ids = _history(store_url)
    with tracker:
        k = tracker.kpis(since=at(0), until=at(10_000))
        assert k.incidents == 2
        assert (k.mttd.mean, k.mttd.median, k.mttd.count) == (20, 20, 2)
        assert k.mtta.mean == 60
        assert k.mttr_recovery.mean == 350
        assert k.mttr_recovery.p90 == pytest.approx(70 + 0.9 * 560)
        assert k.mttr_respond.mean == 330
        assert k.mttr_repair.mean == 50
        assert k.mttr_resolve.mean == 2000
        assert k.availability == {"web": pytest.approx(1 - 670 / 10_000)}
        assert k.mtbf_by_service["web"] == pytest.approx((10_000 - 670) / 2)
        assert k.auto_recovery_rate == 0.5
        assert k.false_positive_rate == pytest.approx(1 / 3)
        assert k.escalation_rate == 0
        # SEV1 answered after 60 s against a 5 min target; resolved 630 s after start (RTO 30 min).
        assert k.response_target_breaches == {}
        assert k.rto_breaches == {}
        assert tracker.kpis(since=at(0), until=at(10_000), service="api").incidents == 0


def test_an_unanswered_incident_breaches_its_response_target(tmp_path: Path) -> None:
    """An open SEV2 with nobody answering for 20 minutes is a breach; its id is named."""
    clock = FakeClock(start=T0)
    with Tracker(str(tmp_path / "m.db"), clock=clock) as tracker:
        iid = tracker.record(Signal("db", "down", severity=Severity.SEV2)).incident_id
        clock.advance(20 * 60)
        k = tracker.kpis(since=T0 - timedelta(hours=1), until=T0 + timedelta(hours=1))
        assert k.response_target_breaches == {"SEV2": [iid]}
        assert k.open_incidents == 1
        assert k.availability["db"] == pytest.approx(1 - 1200 / 7200)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 5000),
            st.floats(0, 300),
            st.floats(0, 3000),
            st.sampled_from(["web", "api"]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_python_kpis_equal_sql_aggregates(
    tmp_path_factory: pytest.TempPathFactory, history: list[tuple[float, float, float, str]]
) -> None:
    """MTTD and MTTR computed in Python equal AVG() computed by the database."""
    clock = FakeClock(start=T0)
    with Tracker(str(tmp_path_factory.mktemp("k") / "m.db"), clock=clock) as tracker:
        for n, (start, detect, recover, svc) in enumerate(history):
            key = f"k{n}"
            tracker.record(
                Signal(
                    svc, "x", dedup_key=key, occurred_at=at(start), detected_at=at(start + detect)
                )
            )
            tracker.record(
                Signal(
                    svc,
                    "",
                    dedup_key=key,
                    action=Action.RESOLVE,
                    detected_at=at(start + detect + recover),
                )
            )
        k = tracker.kpis(since=T0 - timedelta(days=1), until=T0 + timedelta(days=1))
        with tracker.db.read() as conn:
            mttd, mttr = conn.execute(
                sa.text(
                    "SELECT avg(detected_at - impact_started_at), avg(resolved_at - impact_started_at) FROM incidents"
                )
            ).one()
        assert k.mttd.mean == pytest.approx(mttd, abs=1e-6)
        assert k.mttr_recovery.mean == pytest.approx(mttr, abs=1e-6)
        assert k.auto_recovery_rate == 1.0


# Few distinct values, so ties between durations, interval ends and targets are common.
_minutes = st.integers(-2, 20).map(lambda m: m * 60.0)
_offset = st.one_of(_minutes, _minutes, _minutes, st.floats(-600, 30_000))
# None twice: unanswered incidents are common; 0.0 is "missing" to the definition's `or`.
_when = st.one_of(st.none(), st.none(), st.none(), st.just(0.0), _offset)
_incident = st.fixed_dictionaries(
    {
        "service": st.sampled_from(["web", "api", "db"]),
        "severity": st.integers(1, 4),
        "status": st.sampled_from(
            ["triggered", "acknowledged", "mitigated", "resolved", "closed", "cancelled", "merged"]
        ),
        "impact": _offset,
        "detect": st.one_of(st.just(0.0), _minutes.map(abs), _offset),
        "trigger": st.one_of(st.just(0.0), _minutes.map(abs), _offset),
        "acknowledged_at": _when,
        "mitigated_at": _when,
        "resolved_at": _when,
        "closed_at": _when,
        "escalation_level": st.integers(1, 4),
        "resolution_kind": st.sampled_from([None, "auto_recovery", "runbook", "human"]),
        "resolution_reason": st.sampled_from([None, None, "fixed", "false_positive"]),
        "exclude_from_metrics": st.sampled_from([False, False, False, True]),
        "recoveries": st.lists(_offset, max_size=2),
    }
)
_policies = st.one_of(
    st.dictionaries(
        st.sampled_from(list(Severity)),
        st.tuples(st.integers(0, 20), st.one_of(st.none(), st.integers(0, 40))),
        min_size=1,
    ).map(
        lambda d: {
            sev: SeverityPolicy(
                sev, "test", timedelta(minutes=t), None if r is None else timedelta(minutes=r)
            )
            for sev, (t, r) in d.items()
        }
    ),
    st.just(DEFAULT_SEVERITY_POLICIES),
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    history=st.lists(_incident, max_size=14),
    window=st.tuples(
        st.one_of(st.just(-600.0), _offset),
        st.one_of(st.just(50_000.0), _minutes.map(abs), st.floats(1, 40_000)),
        _offset,
    ),
    service=st.sampled_from([None, "web"]),
    policies=_policies,
)
def test_kpis_in_sql_equal_the_python_definition(
    store_url: str,
    history: list[dict[str, Any]],
    window: tuple[float, float, float],
    service: str | None,
    policies: dict[Severity, SeverityPolicy],
) -> None:
    """On any incident history the report aggregated in SQL is the Python definition's.

    The state columns are written directly, in combinations the transitions never make,
    so the two agree on the columns themselves, not only on histories medic records.
    Means are sums in another order: equal to the last few bits.
    """
    base = T0.timestamp()
    start, length, now = window
    since, until, now = base + start, base + start + length, base + now
    with Tracker(store_url) as tracker, tracker.db.write() as conn:
        conn.execute(recovery_attempts.delete())
        conn.execute(incidents.delete())
        for n, i in enumerate(history):
            impact = base + i["impact"]
            detected = impact + abs(i["detect"])
            row = {
                k: None if i[k] is None else (i[k] and detected + i[k])
                for k in ("acknowledged_at", "mitigated_at", "resolved_at", "closed_at")
            }
            row.update(
                title="t",
                service=i["service"],
                severity=i["severity"],
                status=i["status"],
                is_open=False,
                dedup_key=f"k{n}",
                impact_started_at=impact,
                detected_at=detected,
                triggered_at=detected + abs(i["trigger"]),
                escalation_level=i["escalation_level"],
                resolution_kind=i["resolution_kind"],
                resolution_reason=i["resolution_reason"],
                exclude_from_metrics=i["exclude_from_metrics"],
            )
            (iid,) = conn.execute(incidents.insert().values(**row)).inserted_primary_key or (0,)
            for attempt, at_ in enumerate(i["recoveries"]):
                conn.execute(
                    recovery_attempts.insert().values(
                        incident_id=iid, action="restart", attempt=attempt, started_at=impact + at_
                    )
                )
        args: dict[str, Any] = {"since": since, "until": until, "service": service}
        expected = compute_kpis(
            load_incident_times(conn, **args), **args, policies=policies, now=now
        ).to_dict()
        got = sql_kpis(conn, **args, policies=policies, now=now).to_dict()
        conn.rollback()
    for name in ("mttd", "mtta", "mttr_recovery", "mttr_repair", "mttr_respond", "mttr_resolve"):
        mean = expected[name].pop("mean")
        assert got[name].pop("mean") == (None if mean is None else pytest.approx(mean, rel=1e-12))
    assert got == expected
    assert list(got["response_target_breaches"]) == list(expected["response_target_breaches"])
    assert list(got["rto_breaches"]) == list(expected["rto_breaches"])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("5s", 5),
        ("15m", 900),
        ("2h", 7200),
        ("7d", 604800),
        ("1h30m", 5400),
        ("30", 30),
    ],
)
def test_durations_parse(text: str, seconds: float) -> None:
    """The duration forms used across config and CLI."""
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "5 parsecs", "-5s", "s", "1e99d", "5s5"])
def test_bad_durations_are_refused(text: str) -> None:
    """Anything else is a ValueError naming the accepted forms or the range."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)
