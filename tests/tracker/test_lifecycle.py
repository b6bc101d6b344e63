"""Incident and issue lifecycles: allowed moves work, illegal ones change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medic.errors import IllegalTransition, InvalidInput, NotFound
from medic.events import Signal
from medic.taxonomy import Severity
from medic.tracker import INCIDENT_ALLOWED, IncidentStatus, Tracker


def _open(tracker: Tracker, service: str = "api") -> int:
    r = tracker.record(Signal(service, "down", dedup_key=f"k-{service}"))
    assert r.incident_id is not None
    return r.incident_id


def test_human_path_sets_every_timestamp_and_timeline_entry(tracker: Tracker) -> None:
    """ack → mitigate → resolve → close stamps each time and logs each change with its actor."""
    iid = _open(tracker)
    tracker.acknowledge(iid, actor="ana", note="looking")
    tracker.mitigate(iid, actor="ana")
    tracker.resolve(iid, actor="ana", kind="human", reason="fixed", note="rolled back")
    closed = tracker.close_incident(iid, actor="ana")
    assert closed.status == "closed"
    assert closed.resolution_kind == "human"
    assert all(
        getattr(closed, f) is not None
        for f in ("acknowledged_at", "mitigated_at", "resolved_at", "closed_at")
    )
    entries = tracker.timeline(iid)
    assert [e.details.get("to") for e in entries[1:]] == [
        "acknowledged",
        "mitigated",
        "resolved",
        "closed",
    ]
    assert entries[1].actor == "ana"
    assert entries[1].message.endswith("looking")


def test_newest_timeline_entries_are_the_last_ones_oldest_first(tracker: Tracker) -> None:
    """A notice summarises the incident's latest lines, even when the timeline is long."""
    iid = _open(tracker)
    for i in range(30):
        tracker.add_note(iid, f"note {i}", actor="ana")
    everything = tracker.timeline(iid)
    assert len(everything) == 31
    first = tracker.timeline(iid, limit=5)
    last = tracker.timeline(iid, limit=5, newest=True)
    assert [e.id for e in first] == [e.id for e in everything[:5]]
    assert [e.id for e in last] == [e.id for e in everything[-5:]]
    assert last[-1].message.endswith("note 29")


def test_resolve_without_mitigation_counts_resolution_as_mitigation(tracker: Tracker) -> None:
    """MTTR variants need mitigated_at; a direct resolve fills it."""
    iid = _open(tracker)
    incident = tracker.resolve(iid, actor="ana")
    assert incident.mitigated_at == incident.resolved_at


@pytest.mark.parametrize(
    ("setup", "action"),
    [
        ([], "close_incident"),  # resolve before close is required
        (["resolve", "close_incident"], "acknowledge"),  # ack a closed incident
        (["cancel"], "resolve"),
        (["resolve"], "mitigate"),
    ],
)
def test_illegal_transitions_raise_and_change_nothing(
    tracker: Tracker, setup: list[str], action: str
) -> None:
    """An illegal move is refused with a clear error; incident and timeline stay as they were."""
    iid = _open(tracker)
    for step in setup:
        getattr(tracker, step)(iid, actor="ana")
    before, timeline = tracker.incident(iid), tracker.timeline(iid)
    with pytest.raises(IllegalTransition, match=f"incident {iid}: cannot go from"):
        getattr(tracker, action)(iid, actor="ana")
    assert tracker.incident(iid) == before
    assert tracker.timeline(iid) == timeline


def test_unknown_ids_and_bad_values_are_clear_errors(tracker: Tracker) -> None:
    """Unknown ids are NotFound; bad severities and kinds are InvalidInput naming the choices."""
    with pytest.raises(NotFound, match="no incident 999"):
        tracker.acknowledge(999, actor="ana")
    with pytest.raises(NotFound, match="no issue 999"):
        tracker.issue(999)
    iid = _open(tracker)
    with pytest.raises(InvalidInput, match="SEV1, SEV2, SEV3 or SEV4"):
        tracker.set_severity(iid, "SEV9", actor="ana")
    with pytest.raises(InvalidInput, match="resolution kind"):
        tracker.resolve(iid, actor="ana", kind="magic")
    with pytest.raises(InvalidInput, match="actor"):
        tracker.acknowledge(iid, actor="")
    assert tracker.incident(iid).status == "triggered"


def test_cancel_marks_a_false_positive(tracker: Tracker) -> None:
    """A cancelled incident is closed with reason false_positive and frees its dedup key."""
    iid = _open(tracker)
    cancelled = tracker.cancel(iid, actor="ana", note="probe misconfigured")
    assert (cancelled.status, cancelled.resolution_reason) == ("cancelled", "false_positive")
    again = tracker.record(Signal("api", "down", dedup_key="k-api"))
    assert again.new_incident


def test_merge_incidents_moves_issues_and_events(tracker: Tracker) -> None:
    """A duplicate incident folds into the survivor: issues linked, events re-pointed."""
    a = _open(tracker, "api")
    b = tracker.record(Signal("db", "refused", dedup_key="k-db")).incident_id
    assert b is not None
    merged = tracker.merge(b, into=a, actor="ana")
    assert (merged.status, merged.merged_into) == ("merged", a)
    survivor = tracker.incident(a)
    assert len(survivor.issue_ids) == 2
    assert survivor.signal_count == 2
    assert {e.incident_id for e in tracker.events(limit=10)} == {a}
    with pytest.raises(InvalidInput):
        tracker.merge(a, into=a, actor="ana")


def test_merge_issues_keeps_every_hash_so_history_does_not_split(tracker: Tracker) -> None:
    """After a merge, signals that grouped into the old issue land in the survivor."""
    one = tracker.record(Signal("api", "database locked")).issue_id
    two = tracker.record(Signal("api", "sqlite busy")).issue_id
    assert one
    assert two
    assert one != two
    survivor = tracker.merge_issues([two], into=one, actor="ana")
    assert survivor.times_seen == 2
    assert len(survivor.hashes) == 2
    later = tracker.record(Signal("api", "sqlite busy"))
    assert later.issue_id == one
    assert tracker.issue(two).merged_into == one
    assert [i.id for i in tracker.issues().items] == [one]


def test_issue_template_fields_round_trip(tracker: Tracker) -> None:
    """Seed 000's template: every field can be set, read back, and unknown fields are refused."""
    issue = tracker.create_issue(
        service="web",
        title="Login fails after deploy",
        severity="SEV2",
        reported_by="ana",
        assigned_to="bo",
        description="500 on /login",
        impact="all users",
        root_cause="missing migration",
        prevention="migration check in CI",
        related_files="app/auth.py, migrations/0042.py",
        related_issues=[1],
        category="deployment",
        owner="platform",
        response_target_s=3600,
        self_healing="partial",
    )
    assert issue.severity is Severity.SEV2
    assert issue.related_files == ["app/auth.py", "migrations/0042.py"]
    assert (issue.self_healing, issue.owner, issue.response_target_s) == (
        "partial",
        "platform",
        3600,
    )
    edited = tracker.edit_issue(issue.id, resolution="added migration", self_healing="covered")
    assert (edited.resolution, edited.self_healing) == ("added migration", "covered")
    with pytest.raises(InvalidInput, match="unknown field"):
        tracker.edit_issue(issue.id, colour="red")
    with pytest.raises(InvalidInput, match="self-healing"):
        tracker.edit_issue(issue.id, self_healing="sometimes")


def test_recovery_attempts_are_recorded_with_duration_and_timeline(tracker: Tracker) -> None:
    """Each attempt keeps its outcome, evidence and duration, and shows on the timeline."""
    iid = _open(tracker)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    tracker.record_recovery(
        iid,
        action="restart",
        attempt=1,
        started_at=t0,
        ended_at=t0 + timedelta(milliseconds=40),
        outcome="failure",
        error="exited again",
    )
    ok = tracker.record_recovery(
        iid,
        action="restart",
        attempt=2,
        started_at=t0 + timedelta(seconds=1),
        ended_at=t0 + timedelta(seconds=1, milliseconds=12),
        outcome="success",
        evidence={"pid": 4242},
    )
    assert ok.duration_s == pytest.approx(0.012)
    assert [a.outcome for a in tracker.recovery_attempts(iid)] == ["failure", "success"]
    kinds = [e.kind for e in tracker.timeline(iid)]
    assert "recovery_failed" in kinds
    assert "recovery_succeeded" in kinds
    with pytest.raises(InvalidInput, match="outcome"):
        tracker.record_recovery(
            iid, action="restart", attempt=3, started_at=t0, ended_at=None, outcome="meh"
        )


def test_postmortem_and_action_items(tracker: Tracker) -> None:
    """Postmortem sections and action items are stored per incident."""
    iid = _open(tracker)
    tracker.save_postmortem(iid, summary="API down 4 min", trigger="bad deploy", authors=["ana"])
    pm = tracker.add_action_item(iid, text="Add canary", type="prevent", owner="bo")
    assert (pm.summary, pm.trigger, pm.authors) == ("API down 4 min", "bad deploy", ["ana"])
    assert [(a.text, a.owner, a.status) for a in pm.action_items] == [("Add canary", "bo", "open")]
    with pytest.raises(InvalidInput, match="unknown section"):
        tracker.save_postmortem(iid, vibes="good")


def test_escalation_level_and_next_time_are_stored(tracker: Tracker) -> None:
    """The escalation state lives in the store so it survives a restart of medic."""
    iid = _open(tracker)
    due = datetime(2026, 1, 1, 12, 30, tzinfo=UTC)
    incident = tracker.set_escalation(iid, level=2, next_at=due)
    assert (incident.escalation_level, incident.next_escalation_at) == (2, due)
    assert tracker.timeline(iid)[-1].kind == "escalated"
    with pytest.raises(InvalidInput):
        tracker.set_escalation(iid, level=5, next_at=None)


def test_pages_are_stable_and_complete(tracker: Tracker) -> None:
    """Keyset pages cover every incident exactly once, newest first."""
    for i in range(7):
        tracker.record(Signal("api", "x", dedup_key=f"k{i}"))
    seen: list[int] = []
    cursor = None
    while True:
        page = tracker.incidents(limit=3, cursor=cursor)
        seen.extend(i.id for i in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == sorted(seen, reverse=True)
    assert len(set(seen)) == 7


ACTIONS = ["acknowledge", "mitigate", "resolve", "close_incident", "cancel"]
TARGET = {
    "acknowledge": IncidentStatus.ACKNOWLEDGED,
    "mitigate": IncidentStatus.MITIGATED,
    "resolve": IncidentStatus.RESOLVED,
    "close_incident": IncidentStatus.CLOSED,
    "cancel": IncidentStatus.CANCELLED,
}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(ACTIONS), max_size=6))
def test_incident_lifecycle_follows_the_transition_table(
    tmp_path_factory: pytest.TempPathFactory, steps: list[str]
) -> None:
    """Any sequence of actions is accepted exactly when the table allows it."""
    with Tracker(str(tmp_path_factory.mktemp("h") / "m.db")) as tracker:
        iid = _open(tracker)
        state = IncidentStatus.TRIGGERED
        for step in steps:
            target = TARGET[step]
            if target in INCIDENT_ALLOWED[state]:
                assert getattr(tracker, step)(iid, actor="p").status == target
                state = target
            else:
                with pytest.raises(IllegalTransition):
                    getattr(tracker, step)(iid, actor="p")
            assert tracker.incident(iid).status == state


def test_an_escalation_step_is_claimed_exactly_once(tracker: Tracker) -> None:
    """Two agents seeing the same due timer: one claim wins, the other changes nothing."""
    iid = _open(tracker)
    due = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert [i.id for i in tracker.due_escalations(now=due)] == [iid]  # never armed: due
    tracker.set_escalation(iid, level=1, next_at=due)
    assert [i.id for i in tracker.due_escalations(now=due)] == [iid]
    assert tracker.due_escalations(now=due - timedelta(seconds=1)) == []
    nxt = due + timedelta(minutes=30)
    first = tracker.claim_escalation(
        iid, expected_level=1, expected_next_at=due, level=2, next_at=nxt
    )
    second = tracker.claim_escalation(
        iid, expected_level=1, expected_next_at=due, level=2, next_at=nxt
    )
    assert (first, second) == (True, False)
    assert tracker.incident(iid).escalation_level == 2
    assert [e.kind for e in tracker.timeline(iid)].count("escalated") == 1
    tracker.resolve(iid, actor="ana")
    assert tracker.due_escalations(now=nxt) == []


def test_notifications_are_recorded_sent_or_failed(tracker: Tracker) -> None:
    """Every notice is kept with its channel and outcome and shows on the timeline."""
    iid = _open(tracker)
    tracker.record_notification(
        iid,
        level="critical",
        channel="email",
        target="ops@example.org",
        kind="triggered",
        delivered=True,
    )
    tracker.record_notification(
        iid,
        level="critical",
        channel="webhook",
        target="http://127.0.0.1:9/hook",
        kind="triggered",
        delivered=False,
        attempts=3,
        error="connection refused",
    )
    sent = tracker.notifications(iid)
    assert [(n["channel"], n["delivered"], n["attempts"]) for n in sent] == [
        ("email", True, 1),
        ("webhook", False, 3),
    ]
    assert [e.kind for e in tracker.timeline(iid)].count("notified") == 2
