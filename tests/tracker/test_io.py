"""Export and import of the whole record: round trips, idempotency, refusals that change nothing."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medic.errors import IllegalTransition, NotFound
from medic.events import Action, Signal
from medic.testing import FakeClock
from medic.tracker import (
    HEAD_REVISION,
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


@pytest.fixture(scope="module")
def demo_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The export of a store holding the demo stream (every row type present)."""
    url = str(tmp_path_factory.mktemp("demo") / "demo.db")
    record_demo(url, seed=3, now=NOW, episodes=30)
    with Tracker(url) as source:
        # Merges point rows at others, forwards (issue 1 → 2) and backwards (incident).
        source.merge_issues([1], into=2, actor="t")
        still_open = source.incidents(status="triggered").items[0]
        source.merge(still_open.id, into=still_open.id - 1, actor="t")
        return _export(source)


def test_export_lists_every_row_type_in_replay_order(demo_text: str) -> None:
    """A header, then rows grouped by type in the order an import replays them."""
    rows = [json.loads(line) for line in demo_text.splitlines()]
    assert rows[0] == {
        "type": "header",
        "format": "medic-export",
        "version": 1,
        "schema": HEAD_REVISION,
    }
    types = [r["type"] for r in rows[1:]]
    order = [t for i, t in enumerate(types) if i == 0 or types[i - 1] != t]
    assert order == list(ROW_TYPES)
    assert next(r for r in rows if r["type"] == "issue" and r["id"] == 1)["merged_into"] == 2
    item = next(r for r in rows if r["type"] == "action_item")
    assert item["item_type"] in {"mitigate", "prevent", "process", "other"}
    event = next(r for r in rows if r["type"] == "event" and r["exception"])
    assert isinstance(event["exception"]["frames"], list)


def test_round_trip_into_an_empty_store_is_exact(
    demo_text: str, store_url: str, event_links: Callable[[Tracker], None]
) -> None:
    """export → import into an empty SQLite or PostgreSQL store → export gives the same bytes."""
    with Tracker(store_url) as target:
        result = import_record(target, io.StringIO(demo_text))
        assert result.kept_ids
        assert sum(result.skipped.values()) == 0
        assert _export(target) == demo_text
        event_links(target)


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


def test_import_into_a_store_with_other_rows_remaps_ids(
    demo_text: str, tmp_path: Path, event_links: Callable[[Tracker], None]
) -> None:
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
        event_links(target)  # remapped events follow their issues and incidents


def _refused(target: Tracker, text: str | BinaryIO) -> ImportFailed:
    before = _export(target)
    with pytest.raises(ImportFailed) as info:
        import_record(target, io.StringIO(text) if isinstance(text, str) else text)
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
        assert f"issue row after {ROW_TYPES[-1]} rows" in error.errors[0]


def test_a_second_open_incident_for_one_dedup_key_is_refused(tmp_path: Path) -> None:
    """The store allows one open incident per dedup key; an import cannot break that."""
    with Tracker(str(tmp_path / "s.db"), clock=FakeClock(NOW - timedelta(hours=1))) as source:
        source.record(Signal("worker", "failing there", dedup_key="service:worker"))
        text = _export(source)
    with Tracker(str(tmp_path / "t.db"), clock=FakeClock(NOW)) as target:
        target.record(Signal("worker", "already failing here", dedup_key="service:worker"))
        error = _refused(target, text)
        assert "open incident with dedup key 'service:worker' already exists" in error.errors[0]


def test_an_empty_store_exports_only_its_header(tracker: Tracker) -> None:
    """Nothing recorded: one header line, and importing it imports nothing."""
    text = _export(tracker)
    assert len(text.splitlines()) == 1
    result = import_record(tracker, io.StringIO(text))
    assert sum(result.inserted.values()) == 0


def test_a_huge_line_in_a_binary_file_is_refused_without_reading_it_whole(
    demo_text: str, tmp_path: Path
) -> None:
    """From a binary file, a line over the limit is one bad line named by its number."""
    path = tmp_path / "big.jsonl"
    lines = demo_text.splitlines(keepends=True)
    path.write_bytes(
        lines[0].encode() + b'{"type": "issue", "title": "' + b"x" * (5 << 20) + b'"}\n'
    )
    with Tracker(str(tmp_path / "t.db")) as target, path.open("rb") as stream:
        error = _refused(target, stream)
        assert error.errors == ["line 2: longer than 4194304 bytes"]


def test_the_export_covers_every_table() -> None:
    """A table added to the schema without an export row type would be lost on export."""
    from medic.tracker import _io, _tables

    exported = {table.name for _, table, _ in _io._ORDER}
    assert exported == set(_tables.metadata.tables)


_services = st.sampled_from(["api", "web", "worker"])
_steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("signal"), _services, st.text(max_size=30), st.sampled_from(list(Action))
        ),
        st.tuples(st.just("ack"), st.integers(1, 4)),
        st.tuples(st.just("resolve"), st.integers(1, 4)),
        st.tuples(st.just("note"), st.integers(1, 4)),
    ),
    max_size=12,
)


@settings(max_examples=15, deadline=None)
@given(steps=_steps)
def test_round_trip_property(steps: list[tuple[object, ...]]) -> None:
    """Whatever was recorded and done, export → import into an empty store → export is exact."""
    with tempfile.TemporaryDirectory() as tmp:
        clock = FakeClock(NOW)
        with Tracker(f"{tmp}/s.db", clock=clock) as source:
            for step in steps:
                clock.advance(7.5)
                if step[0] == "signal":
                    _, service, message, action = step
                    source.record(Signal(str(service), str(message), action=action))  # type: ignore[arg-type]
                    continue
                incident_id = int(step[1])  # type: ignore[call-overload]
                with contextlib.suppress(NotFound, IllegalTransition):
                    if step[0] == "ack":
                        source.acknowledge(incident_id, actor="p")
                    elif step[0] == "resolve":
                        source.resolve(incident_id, actor="p")
                    else:
                        source.add_note(incident_id, "<b>note</b>", actor="p")
            text = _export(source)
        with Tracker(f"{tmp}/t.db") as target:
            import_record(target, io.StringIO(text))
            assert _export(target) == text


def test_a_repeated_row_into_an_empty_store_names_its_line(demo_text: str, store_url: str) -> None:
    """Batched inserts into an empty store still report the one line that clashes."""
    lines = demo_text.splitlines()
    event_at = next(i for i, line in enumerate(lines) if '"type":"event"' in line)
    twin = dict(json.loads(lines[event_at]), id=999_999)
    lines.insert(event_at + 1, json.dumps(twin))
    with Tracker(store_url) as target:
        error = _refused(target, "\n".join(lines))
        assert error.total == 1
        assert error.errors[0].startswith(f"line {event_at + 2}: conflicts with the store")
