"""Recording signals: issues by fingerprint, incidents by dedup key, idempotency, timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from medic.errors import InvalidInput, StoreUnavailable
from medic.events import Action, ExceptionInfo, Frame, Signal
from medic.taxonomy import Kind, Severity
from medic.tracker import IssueCategory, Tracker

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def test_similar_messages_become_one_issue_and_one_incident(tracker: Tracker) -> None:
    """Occurrences of one failure share an issue (times_seen counts) and the open incident."""
    results = [
        tracker.record(Signal("api", f"timeout after {n}s talking to 10.0.0.{n}:5432"))
        for n in range(1, 4)
    ]
    assert {r.issue_id for r in results} == {results[0].issue_id}
    assert {r.incident_id for r in results} == {results[0].incident_id}
    assert [r.new_issue for r in results] == [True, False, False]
    issue = tracker.issue(results[0].issue_id)  # type: ignore[arg-type]
    assert issue.times_seen == 3
    assert issue.status == "unresolved"
    assert issue.substatus == "ongoing"
    incident = tracker.incident(results[0].incident_id)  # type: ignore[arg-type]
    assert incident.signal_count == 3
    assert incident.issue_ids == [issue.id]
    assert incident.dedup_key == "service:api"


def test_a_signal_is_stored_once_per_source_and_external_id(tracker: Tracker) -> None:
    """Replaying a signal (same source + external id) changes nothing; another source is new."""
    s = Signal("api", "boom", source="sentry", external_id="evt-1")
    first = tracker.record(s)
    again = tracker.record(s)
    batch = tracker.record_many(
        [s, Signal("api", "boom", source="alertmanager", external_id="evt-1")]
    )
    assert again.duplicate
    assert again.event_id == first.event_id
    assert batch[0].duplicate
    assert not batch[1].duplicate
    assert tracker.issue(first.issue_id).times_seen == 2  # type: ignore[arg-type]
    assert tracker.counts()["events"] == 2


def test_duplicates_inside_one_batch_are_stored_once(tracker: Tracker) -> None:
    """The same external id twice in one batch is one event."""
    s = Signal("api", "boom", external_id="x")
    results = tracker.record_many([s, s, s])
    assert [r.duplicate for r in results] == [False, True, True]
    assert [r.event_id for r in results] == [results[0].event_id] * 3
    assert tracker.counts()["events"] == 1


def test_an_external_id_that_is_cleaned_for_storage_stays_idempotent(tracker: Tracker) -> None:
    """An over-long id or one holding NUL is stored shortened; replaying it still finds it."""
    long_id = "evt-" + "x" * 400
    nul_id = "evt\x00nul"
    first = tracker.record_many(
        [Signal("api", "boom", external_id=long_id), Signal("api", "boom", external_id=nul_id)]
    )
    again = tracker.record_many(
        [Signal("api", "boom", external_id=long_id), Signal("api", "boom", external_id=nul_id)]
    )
    assert [r.duplicate for r in again] == [True, True]
    assert [r.event_id for r in again] == [r.event_id for r in first]
    assert tracker.record(Signal("api", "boom", external_id=long_id)).duplicate
    assert tracker.counts()["events"] == 2


def test_mitigate_and_resolve_signals_close_the_loop_with_auto_recovery(tracker: Tracker) -> None:
    """The supervisor's story: fail at T0, detected +0.25 s, restarted +1.5 s, healthy +3 s."""
    key = "service:web"
    opened = tracker.record(
        Signal(
            "web",
            "process exited with code 1",
            source="supervisor",
            dedup_key=key,
            occurred_at=T0,
            detected_at=T0 + timedelta(milliseconds=250),
            severity=Severity.SEV2,
        )
    )
    tracker.record(
        Signal(
            "web",
            "restarted",
            source="supervisor",
            dedup_key=key,
            action=Action.MITIGATE,
            detected_at=T0 + timedelta(milliseconds=1500),
        )
    )
    tracker.record(
        Signal(
            "web",
            "probes pass",
            source="supervisor",
            dedup_key=key,
            action=Action.RESOLVE,
            detected_at=T0 + timedelta(milliseconds=3000),
        )
    )
    incident = tracker.incident(opened.incident_id)  # type: ignore[arg-type]
    assert incident.status == "resolved"
    assert incident.resolution_kind == "auto_recovery"
    assert incident.severity is Severity.SEV2
    assert incident.impact_started_at == T0
    assert incident.detected_at - T0 == timedelta(milliseconds=250)
    assert incident.mitigated_at - T0 == timedelta(milliseconds=1500)  # type: ignore[operator]
    assert incident.resolved_at - T0 == timedelta(milliseconds=3000)  # type: ignore[operator]
    kinds = [(e.kind, e.details.get("to")) for e in tracker.timeline(incident.id)]
    assert kinds == [
        ("signal_received", None),
        ("status_changed", "mitigated"),
        ("status_changed", "resolved"),
    ]
    assert tracker.open_incident(key) is None


def test_a_trigger_after_resolve_opens_a_new_related_incident(tracker: Tracker) -> None:
    """PagerDuty semantics: a resolved incident is not reopened; the new one links back."""
    first = tracker.record(Signal("db", "down", dedup_key="db"))
    tracker.record(Signal("db", "", dedup_key="db", action=Action.RESOLVE))
    second = tracker.record(Signal("db", "down", dedup_key="db"))
    assert second.new_incident
    assert second.incident_id != first.incident_id
    assert tracker.incident(second.incident_id).related == [first.incident_id]  # type: ignore[arg-type]
    assert second.issue_id == first.issue_id


def test_trigger_then_resolve_in_one_batch_ends_resolved(tracker: Tracker) -> None:
    """Signals of a batch apply in order."""
    results = tracker.record_many(
        [
            Signal("q", "stuck", dedup_key="q"),
            Signal("q", "", dedup_key="q", action=Action.RESOLVE),
            Signal("q", "stuck", dedup_key="q"),
        ]
    )
    first, _, third = results
    assert tracker.incident(first.incident_id).status == "resolved"  # type: ignore[arg-type]
    assert tracker.incident(third.incident_id).status == "triggered"  # type: ignore[arg-type]
    assert third.incident_id != first.incident_id


def test_ack_or_resolve_for_an_unknown_key_opens_nothing(tracker: Tracker) -> None:
    """Out-of-order reports are kept as events but create no incident."""
    r = tracker.record(Signal("x", "ok now", dedup_key="never-seen", action=Action.RESOLVE))
    assert r.incident_id is None
    assert r.issue_id is None
    assert r.event_id is not None
    assert tracker.counts()["incidents"] == 0


def test_a_more_severe_signal_raises_the_incident_severity(tracker: Tracker) -> None:
    """Severity only rises from signals, and the change is on the timeline."""
    r = tracker.record(Signal("api", "slow", severity=Severity.SEV3))
    tracker.record(Signal("api", "down", severity=Severity.SEV1))
    tracker.record(Signal("api", "slow", severity=Severity.SEV4))
    incident = tracker.incident(r.incident_id)  # type: ignore[arg-type]
    assert incident.severity is Severity.SEV1
    assert "severity_changed" in [e.kind for e in tracker.timeline(incident.id)]


def test_impact_start_is_backfilled_by_an_earlier_occurrence(tracker: Tracker) -> None:
    """A late-arriving signal that began earlier moves impact_started_at back."""
    r = tracker.record(Signal("api", "err", occurred_at=T0, detected_at=T0))
    tracker.record(Signal("api", "err", occurred_at=T0 - timedelta(minutes=5), detected_at=T0))
    assert tracker.incident(r.incident_id).impact_started_at == T0 - timedelta(minutes=5)  # type: ignore[arg-type]


def test_resolved_issue_regresses_when_seen_again(tracker: Tracker) -> None:
    """Sentry semantics: resolved → unresolved/regressed on a new occurrence."""
    r = tracker.record(Signal("api", "KeyError user"))
    tracker.resolve_issue(r.issue_id, actor="ana", resolution="guard added")  # type: ignore[arg-type]
    tracker.record(Signal("api", "KeyError user"))
    issue = tracker.issue(r.issue_id)  # type: ignore[arg-type]
    assert (issue.status, issue.substatus) == ("unresolved", "regressed")
    assert issue.resolution == "guard added"


def test_ignored_issue_counts_but_stays_ignored(tracker: Tracker) -> None:
    """An ignored issue keeps counting occurrences without reopening."""
    r = tracker.record(Signal("api", "noise"))
    tracker.ignore_issue(r.issue_id, actor="ana")  # type: ignore[arg-type]
    tracker.record(Signal("api", "noise"))
    issue = tracker.issue(r.issue_id)  # type: ignore[arg-type]
    assert (issue.status, issue.times_seen) == ("ignored", 2)


def test_exception_signals_group_by_frames_and_explain_it(tracker: Tracker) -> None:
    """The issue records which grouping variant won and its inputs."""
    exc = ExceptionInfo(
        "KeyError", "'u1'", (Frame("get_user", "app.users", "/srv/app/users.py", 10, True),)
    )
    r = tracker.record(Signal("api", "KeyError 'u1'", exception=exc))
    issue = tracker.issue(r.issue_id)  # type: ignore[arg-type]
    assert issue.title == "KeyError: 'u1'"
    assert issue.culprit == "app.users.get_user"
    assert issue.grouping_variant == "exception-frames"
    assert issue.grouping_inputs == {"type": "KeyError", "frames": ["app.users.get_user"]}
    assert issue.hashes[0]["grouping_version"] == "medic-grouping:1"


def test_probe_signals_record_probe_and_kind(tracker: Tracker) -> None:
    """Probe failures keep their probe, reason and kind on the event."""
    r = tracker.record(
        Signal("api", "GET /health: 503", kind=Kind.DEPENDENCY, probe="http", reason="status")
    )
    (event,) = tracker.events(issue_id=r.issue_id)
    assert (event.kind, event.service, event.dedup_key) == ("dependency", "api", "service:api")
    assert tracker.issue(r.issue_id).culprit == "probe http"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("signal", "message"),
    [
        (Signal("", "m"), "service"),
        (Signal("a\npi", "m"), "service"),
        (Signal("a" * 300, "m"), "service"),
        (Signal("api", "m", source=" "), "source"),
    ],
)
def test_bad_signals_are_refused_and_nothing_is_recorded(
    tracker: Tracker, signal: Signal, message: str
) -> None:
    """A bad signal in a batch refuses the whole batch with a message naming the field."""
    with pytest.raises(InvalidInput, match=message):
        tracker.record_many([Signal("api", "good"), signal])
    assert tracker.counts()["events"] == 0


def test_hostile_strings_are_stored_faithfully_or_safely(tracker: Tracker) -> None:
    """NUL bytes, SQL, markup and huge messages are stored without harm and bounded."""
    hostile = "'); DROP TABLE events;-- <script>alert(1)</script> \x00 ☃ " + "x" * 20000
    r = tracker.record(Signal("api", hostile, title="<b>t</b>", tags={"k": "v\x00"}))
    (event,) = tracker.events(issue_id=r.issue_id)
    assert event.message.startswith("'); DROP TABLE events;-- <script>")
    assert "\x00" not in event.message
    assert len(event.message) <= 8192
    assert tracker.counts()["events"] == 1


def test_event_columns_are_written_in_their_declared_order() -> None:
    """The driver-level insert writes each value into its own column."""
    from medic.tracker._record import _EVENT_COLUMNS

    assert _EVENT_COLUMNS == (
        "source",
        "external_id",
        "received_at",
        "occurred_at",
        "detected_at",
        "service",
        "kind",
        "severity",
        "action",
        "message",
        "title",
        "fingerprint",
        "dedup_key",
        "probe",
        "reason",
        "release",
        "environment",
        "tags",
        "exception",
        "issue_id",
        "incident_id",
    )


def test_absent_event_fields_are_stored_as_null_and_present_ones_as_given(
    tracker: Tracker,
) -> None:
    """Optional fields are NULL when a signal lacks them (empty strings too), else kept."""
    import sqlalchemy as sa

    from medic.tracker._tables import events

    exc = ExceptionInfo("KeyError", "'u1'", (Frame("get", "app.users", "app/users.py", 3),))
    full = Signal(
        "api",
        "boom",
        external_id="e-1",
        title="Boom",
        probe="http",
        reason="timeout",
        release="0",
        environment="prod",
        tags={"region": "eu"},
        exception=exc,
    )
    results = tracker.record_many(
        [
            Signal("api", "bare", probe="", release="", environment=""),
            full,
            Signal("api", "ok", action=Action.ACKNOWLEDGE, dedup_key="nobody"),
        ]
    )
    optional = ("external_id", "title", "probe", "reason", "release", "environment", "tags")
    with tracker.db.engine.connect() as conn:
        rows = {
            r.id: r
            for r in conn.execute(
                sa.select(events).where(events.c.id.in_([r.event_id for r in results]))
            )
        }
    bare, stored, ack = (rows[r.event_id] for r in results)
    assert [getattr(bare, c) for c in (*optional, "exception")] == [None] * 8
    assert bare.issue_id == results[0].issue_id
    assert bare.incident_id == results[0].incident_id
    assert [getattr(stored, c) for c in optional] == [
        "e-1", "Boom", "http", "timeout", "0", "prod", '{"region":"eu"}'
    ]  # fmt: skip
    assert '"type":"KeyError"' in stored.exception
    assert (ack.issue_id, ack.incident_id) == (None, None)


def test_batches_return_contiguous_event_ids(tracker: Tracker) -> None:
    """Each result's event id names the event of that very signal."""
    signals = [Signal(f"s{i % 3}", f"err {i}", external_id=f"e{i}") for i in range(50)]
    results = tracker.record_many(signals)
    events = {e.id: e for e in tracker.events(limit=100)}
    for sig, res in zip(signals, results, strict=True):
        assert res.event_id is not None
        assert events[res.event_id].external_id == sig.external_id
        assert events[res.event_id].service == sig.service


def test_new_issues_take_their_category_owner_and_response_time(tmp_path: Path) -> None:
    """Seed 000's categories: the first matching category sets owner and response target."""
    categories = [
        IssueCategory("security", "aegis", timedelta(minutes=5), kinds=("auth", "permission")),
        IssueCategory("performance", "infra", timedelta(hours=1), kinds=("timeout", "resource")),
        IssueCategory("other", "oncall", timedelta(hours=24)),
    ]
    with Tracker(str(tmp_path / "m.db"), categories=categories) as tracker:
        slow = tracker.issue(tracker.record(Signal("api", "slow", kind=Kind.TIMEOUT)).issue_id)  # type: ignore[arg-type]
        odd = tracker.issue(tracker.record(Signal("api", "odd")).issue_id)  # type: ignore[arg-type]
    assert (slow.category, slow.owner, slow.assigned_to, slow.response_target_s) == (
        "performance",
        "infra",
        "infra",
        3600,
    )
    assert (odd.category, odd.owner) == ("other", "oncall")


@pytest.mark.parametrize("batched", [False, True], ids=["one-by-one", "one-batch"])
def test_counted_triggers_and_status_changes_mix_in_any_order(
    tracker: Tracker, batched: bool
) -> None:
    """Triggers that only count and signals that move the incident land on one incident."""
    key = "db-down"

    def at(seconds: int) -> dict[str, datetime]:
        moment = T0 + timedelta(seconds=seconds)
        return {"occurred_at": moment, "detected_at": moment}

    signals = [
        Signal("api", "slow", dedup_key=key, severity=Severity.SEV3, **at(0)),
        Signal("api", "slow", dedup_key=key, severity=Severity.SEV3, **at(1)),
        Signal("api", "down", dedup_key=key, severity=Severity.SEV1, **at(2)),
        Signal("api", "on it", dedup_key=key, action=Action.ACKNOWLEDGE, **at(3)),
        Signal(
            "api",
            "slow",
            dedup_key=key,
            severity=Severity.SEV3,
            occurred_at=T0 - timedelta(minutes=1),
            detected_at=T0 + timedelta(seconds=4),
        ),
    ]
    results = tracker.record_many(signals) if batched else [tracker.record(s) for s in signals]
    incident = tracker.incident(results[0].incident_id)  # type: ignore[arg-type]
    assert {r.incident_id for r in results} == {incident.id}
    assert (incident.status, incident.severity, incident.signal_count) == (
        "acknowledged",
        Severity.SEV1,
        4,
    )
    assert incident.impact_started_at == T0 - timedelta(minutes=1)
    assert incident.acknowledged_at == T0 + timedelta(seconds=3)
    assert tracker.open_incident(key).id == incident.id  # type: ignore[union-attr]
    tracker.record(Signal("api", "fine", dedup_key=key, action=Action.RESOLVE, **at(5)))
    assert tracker.open_incident(key) is None
    again = tracker.record(Signal("api", "slow", dedup_key=key, **at(6)))
    assert again.new_incident
    assert again.incident_id != incident.id


def test_exceptions_are_stored_as_given_when_stacks_repeat(tracker: Tracker) -> None:
    """Each event keeps its own exception, also when many share one stack."""
    import json

    import sqlalchemy as sa

    from medic.tracker._tables import events

    stack = (
        Frame("handle", "app.views", "app/views.py", 10),
        Frame("get", 'lib"db', "C:\\lib\\db.py", None, False),
    )
    same_stack = tuple(Frame(f.function, f.module, f.filename, f.lineno, f.in_app) for f in stack)
    exceptions = [
        ExceptionInfo("KeyError", "'u1'", stack),
        ExceptionInfo("KeyError", 'ключ "u2"\n\t\u2028', same_stack),
        ExceptionInfo("OSError", "", stack[:1]),
        ExceptionInfo("OSError", "no frames"),
    ]
    results = tracker.record_many(
        [Signal("api", "boom", exception=exc) for exc in exceptions]
        + [Signal("api", "boom again", exception=exceptions[1])]
    )
    with tracker.db.engine.connect() as conn:
        stored = dict(
            conn.execute(
                sa.select(events.c.id, events.c.exception).where(
                    events.c.id.in_([r.event_id for r in results])
                )
            ).all()
        )
    for result, exc in zip(results, [*exceptions, exceptions[1]], strict=True):
        assert json.loads(stored[result.event_id]) == {
            "type": exc.type,
            "value": exc.value,
            "frames": [
                {
                    "function": f.function,
                    "module": f.module,
                    "filename": f.filename,
                    "lineno": f.lineno,
                    "in_app": f.in_app,
                }
                for f in exc.frames
            ],
        }


def test_a_driver_error_inside_a_sqlite_write_is_a_store_error_and_rolls_back(
    tmp_path: Path,
) -> None:
    """A failing statement mid-transaction: StoreUnavailable, and the earlier write is gone."""
    with Tracker(str(tmp_path / "m.db")) as tracker:
        tracker.record(Signal("web", "kept"))

        def write_then_fail() -> None:
            with tracker.db.write_sqlite() as raw:
                raw.execute("UPDATE issues SET times_seen = times_seen + 100")
                raw.execute("SELECT no_such_column FROM events").fetchall()

        with pytest.raises(StoreUnavailable, match="no such column"):
            write_then_fail()
        [issue] = tracker.issues().items
        assert issue.times_seen == 1
        assert tracker.record(Signal("web", "kept")).issue_id == issue.id  # still writable
