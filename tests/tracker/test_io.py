"""Export and import of the whole record: round trips, idempotency, refusals that change nothing."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from medic.events import Signal
from medic.testing import FakeClock
from medic.tracker import (
    ROW_TYPES,
    ImportFailed,
    Tracker,
    export_record,
    import_record,
    record_demo,
)

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _export(tracker: Tracker) -> str:
    out = io.StringIO()
    export_record(tracker, out)
    return out.getvalue()


@pytest.fixture
def demo_text(tmp_path: Path) -> str:
    """The export of a store holding the demo stream (every row type present)."""
    url = str(tmp_path / "demo.db")
    record_demo(url, seed=3, now=NOW, episodes=30)
    with Tracker(url) as source:
        return _export(source)


def test_export_lists_every_row_type_in_replay_order(demo_text: str) -> None:
    """A header, then rows grouped by type in the order an import replays them."""
    rows = [json.loads(line) for line in demo_text.splitlines()]
    assert rows[0] == {"type": "header", "format": "medic-export", "version": 1, "schema": "0001"}
    types = [r["type"] for r in rows[1:]]
    order = [t for i, t in enumerate(types) if i == 0 or types[i - 1] != t]
    assert order == list(ROW_TYPES)
    item = next(r for r in rows if r["type"] == "action_item")
    assert item["item_type"] in {"mitigate", "prevent", "process", "other"}
    event = next(r for r in rows if r["type"] == "event" and r["exception"])
    assert isinstance(event["exception"]["frames"], list)


def test_round_trip_into_an_empty_store_is_exact(demo_text: str, store_url: str) -> None:
    """export → import into an empty SQLite or PostgreSQL store → export gives the same bytes."""
    with Tracker(store_url) as target:
        result = import_record(target, io.StringIO(demo_text))
        assert result.kept_ids
        assert sum(result.skipped.values()) == 0
        assert _export(target) == demo_text


def test_an_imported_store_keeps_recording_without_id_clashes(
    demo_text: str, store_url: str
) -> None:
    """After ids were inserted explicitly, new rows get fresh ids (PostgreSQL sequences reset)."""
    with Tracker(store_url) as target:
        import_record(target, io.StringIO(demo_text))
        before = target.counts()
        result = target.record(Signal("brand-new", "first failure"))
        assert result.new_issue
        assert result.new_incident
        assert target.counts()["events"] == before["events"] + 1
        target.add_note(result.incident_id, "works", actor="t")  # type: ignore[arg-type]


def test_importing_the_same_file_twice_changes_nothing(demo_text: str, tmp_path: Path) -> None:
    """The second import matches every row by its natural key and inserts none."""
    with Tracker(str(tmp_path / "t.db")) as target:
        import_record(target, io.StringIO(demo_text))
        again = import_record(target, io.StringIO(demo_text))
        assert not again.kept_ids
        assert sum(again.inserted.values()) == 0
        assert _export(target) == demo_text


def test_import_into_a_store_with_other_rows_remaps_ids(demo_text: str, tmp_path: Path) -> None:
    """Into a non-empty store new ids are given and every reference follows them."""
    with Tracker(str(tmp_path / "t.db"), clock=FakeClock(NOW)) as target:
        own = target.record(Signal("own", "local failure"))
        result = import_record(target, io.StringIO(demo_text))
        assert not result.kept_ids
        assert result.inserted["incident"] == 30
        closed = target.incidents(status="closed", limit=100).items
        assert closed, "the demo closes the incidents people wrote up"
        for listed in closed:
            incident = target.incident(listed.id)
            assert incident.id != own.incident_id
            assert incident.issue_ids
            for issue_id in incident.issue_ids:
                assert incident.id in target.issue(issue_id).incident_ids
            assert target.postmortem(incident.id) is not None
        assert target.incident(own.incident_id).service == "own"  # type: ignore[arg-type]


def _refused(target: Tracker, text: str) -> ImportFailed:
    before = _export(target)
    with pytest.raises(ImportFailed) as info:
        import_record(target, io.StringIO(text))
    assert _export(target) == before, "a refused import must change nothing"
    return info.value


def test_bad_lines_are_reported_by_number_and_nothing_is_written(
    demo_text: str, tracker: Tracker
) -> None:
    """Malformed JSON, wrong types and unknown ids name their lines; the store stays as it was."""
    tracker.record(Signal("keep", "already here"))
    lines = demo_text.splitlines()
    issue = json.loads(lines[1])
    lines.insert(2, '{"type": "issue", "id": ')  # malformed
    lines.insert(3, json.dumps(dict(issue, id=999, times_seen="many")))
    event_at = next(i for i, line in enumerate(lines) if '"type":"event"' in line)
    event = json.loads(lines[event_at])
    lines[event_at] = json.dumps(dict(event, issue_id=424242))
    error = _refused(tracker, "\n".join(lines) + "\n")
    assert error.total == 3
    assert error.errors[0].startswith("line 3: not valid JSON")
    assert error.errors[1] == "line 4: issue: times_seen: expected an integer"
    assert error.errors[2] == (
        f"line {event_at + 1}: issue_id: issue 424242 is not in the file before this line"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"type": "bogus"}', "type: unknown row type 'bogus'"),
        ('["not", "an", "object"]', "expected a JSON object"),
        (
            '{"type": "issue", "id": 1, "service": "a", "colour": "red"}',
            "unknown field(s) 'colour'",
        ),
        ('{"type": "issue", "id": 1}', "issue: service: required"),
        ('{"type": "header", "format": "medic-export", "version": 99}', "export version 99"),
        (
            '{"type": "postmortem", "incident_id": 1, "updated_at": 1}',
            "incident 1 is not in the file",
        ),
    ],
)
def test_hostile_single_lines_are_refused(tracker: Tracker, line: str, expected: str) -> None:
    """Each kind of bad row is refused with a message naming what was wrong."""
    error = _refused(tracker, line + "\n")
    assert error.errors[0].startswith("line 1: ")
    assert expected in error.errors[0]


def test_rows_out_of_replay_order_are_refused(demo_text: str, tmp_path: Path) -> None:
    """An issue row after event rows cannot be replayed and is refused."""
    lines = demo_text.splitlines()
    issue = lines[1]
    lines.append(issue)
    with Tracker(str(tmp_path / "t.db")) as target:
        error = _refused(target, "\n".join(lines))
        assert "issue row after action_item rows" in error.errors[0]


def test_a_second_open_incident_for_one_dedup_key_is_refused(
    demo_text: str, tmp_path: Path
) -> None:
    """The store allows one open incident per dedup key; an import cannot break that."""
    with Tracker(str(tmp_path / "t.db"), clock=FakeClock(NOW)) as target:
        target.record(Signal("worker", "already failing here", dedup_key="service:worker"))
        error = _refused(target, demo_text)
        assert "open incident with dedup key 'service:worker' already exists" in error.errors[0]


def test_an_empty_store_exports_only_its_header(tracker: Tracker) -> None:
    """Nothing recorded: one header line, and importing it imports nothing."""
    text = _export(tracker)
    assert len(text.splitlines()) == 1
    result = import_record(tracker, io.StringIO(text))
    assert sum(result.inserted.values()) == 0
