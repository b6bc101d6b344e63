"""The signal wire format: one JSON object in, one Signal out, every bad field named."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medic.errors import InvalidInput
from medic.events import Action, ExceptionInfo, Frame, Signal
from medic.taxonomy import Kind, Severity
from medic.tracker import (
    MAX_PAYLOAD_BYTES,
    Tracker,
    jsonable,
    parse_signal_line,
    signal_from_json,
    signal_to_json,
)

FULL = {
    "service": "worker",
    "message": "KeyError: 'user_id'",
    "kind": "data_integrity",
    "severity": "sev2",
    "source": "sentry",
    "occurred_at": "2026-11-25T08:20:00Z",
    "detected_at": 1795594805.5,
    "external_id": "345597336d8c4f079350bc0a804823e1",
    "fingerprint": ["{{ default }}", "billing"],
    "dedup_key": "service:worker",
    "action": "trigger",
    "exception": {
        "type": "KeyError",
        "value": "'user_id'",
        "frames": [
            {"module": "worker.handlers", "function": "process_job", "lineno": 40},
            {
                "module": "worker.payload",
                "function": "extract",
                "filename": "worker/payload.py",
                "lineno": 12,
                "in_app": True,
            },
        ],
    },
    "probe": "queue",
    "reason": "consumer lag",
    "tags": {"region": "eu-1"},
    "release": "worker@2.3.0",
    "environment": "production",
    "title": "worker cannot read jobs",
}


def test_every_field_is_parsed_into_the_signal() -> None:
    """A full payload sets every Signal field, with kinds, severities and times normalised."""
    s = signal_from_json(FULL)
    assert s.kind is Kind.DATA_INTEGRITY
    assert s.severity is Severity.SEV2
    assert s.occurred_at == datetime(2026, 11, 25, 8, 20, tzinfo=UTC)
    assert s.detected_at == datetime.fromtimestamp(1795594805.5, UTC)
    assert s.fingerprint == ("{{ default }}", "billing")
    assert s.exception is not None
    assert s.exception.frames[0] == Frame("process_job", "worker.handlers", "", 40, True)
    assert s.tags == {"region": "eu-1"}
    assert (s.probe, s.reason, s.release, s.environment, s.title) == (
        "queue",
        "consumer lag",
        "worker@2.3.0",
        "production",
        "worker cannot read jobs",
    )


def test_only_service_and_message_are_required() -> None:
    """Defaults match Signal's: unknown kind, no severity, source api, a trigger."""
    s = signal_from_json({"service": "api", "message": "boom"})
    assert s == Signal("api", "boom")


def test_to_json_is_the_inverse() -> None:
    """signal_to_json → JSON text → signal_from_json gives back the same Signal."""
    s = signal_from_json(FULL)
    assert signal_from_json(json.loads(json.dumps(signal_to_json(s)))) == s


_names = (
    st.text(
        alphabet=st.characters(
            min_codepoint=33, max_codepoint=0x2FFF, exclude_categories=["Cs", "Cc"]
        ),
        min_size=1,
        max_size=30,
    )
    .map(str.strip)
    .filter(bool)
)


@given(
    service=_names,
    message=st.text(
        alphabet=st.characters(exclude_characters="\x00", exclude_categories=["Cs"]),
        max_size=200,
    ),
    kind=st.sampled_from(list(Kind)),
    severity=st.none() | st.sampled_from(list(Severity)),
    action=st.sampled_from(list(Action)),
    at=st.none() | st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)),
    fingerprint=st.lists(_names, max_size=3).map(tuple),
    tags=st.dictionaries(_names, _names, max_size=3),
)
def test_round_trip_property(
    service: str,
    message: str,
    kind: Kind,
    severity: Severity | None,
    action: Action,
    at: datetime | None,
    fingerprint: tuple[str, ...],
    tags: dict[str, str],
) -> None:
    """Any valid Signal survives to_json → JSON text → from_json unchanged."""
    s = Signal(
        service,
        message,
        kind=kind,
        severity=severity,
        action=action,
        occurred_at=at.replace(tzinfo=UTC) if at else None,
        fingerprint=fingerprint,
        tags=tags,
        exception=ExceptionInfo("E", message, (Frame("f", "m", "m.py", 3, False),)),
    )
    line = json.dumps(signal_to_json(s))
    assert parse_signal_line(line) == s


@pytest.mark.parametrize(
    ("value", "expected"),
    [("SEV1", Severity.SEV1), ("sev4", Severity.SEV4), (2, Severity.SEV2), ("3", Severity.SEV3)],
)
def test_severity_accepts_names_and_numbers(value: object, expected: Severity) -> None:
    """SEV2, sev2, 2 and "2" are all SEV2."""
    assert (
        signal_from_json({"service": "a", "message": "m", "severity": value}).severity is expected
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-25T08:20:00+02:00", datetime(2026, 11, 25, 6, 20, tzinfo=UTC)),
        ("2026-11-25T08:20:00", datetime(2026, 11, 25, 8, 20, tzinfo=UTC)),
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_times_are_iso_8601_or_epoch_seconds_in_utc(value: object, expected: datetime) -> None:
    """An offset is converted, a naive time is UTC, a number is epoch seconds."""
    s = signal_from_json({"service": "a", "message": "m", "occurred_at": value})
    assert s.occurred_at == expected
    assert s.occurred_at is not None
    assert s.occurred_at.utcoffset() == timezone(timedelta(0)).utcoffset(None)


BAD = [
    ({"message": "m"}, "service: required"),
    ({"service": "a"}, "message: required"),
    ({"service": "", "message": "m"}, "service: must not be empty"),
    ({"service": 7, "message": "m"}, "service: expected a string, got a number"),
    ({"service": "a\nb", "message": "m"}, "service: 'a\\nb' holds control characters"),
    ({"service": "a\x00", "message": "m"}, "service: holds a NUL character"),
    ({"service": "a", "message": "\ud800"}, "message: not valid Unicode"),
    ({"service": "a", "message": "m", "sevrity": 2}, "unknown field(s) 'sevrity'"),
    ({"service": "a", "message": "m", "severity": 5}, "severity: unknown severity 5"),
    ({"service": "a", "message": "m", "severity": True}, "severity: expected SEV1–SEV4"),
    ({"service": "a", "message": "m", "kind": "nope"}, "kind: unknown failure kind 'nope'"),
    ({"service": "a", "message": "m", "action": "explode"}, "action: unknown action"),
    ({"service": "a", "message": "m", "occurred_at": "yesterday"}, "occurred_at: 'yesterday'"),
    ({"service": "a", "message": "m", "occurred_at": 1.7e12}, "milliseconds by mistake"),
    ({"service": "a", "message": "m", "detected_at": float("nan")}, "detected_at: epoch"),
    ({"service": "a", "message": "m", "detected_at": True}, "got a boolean"),
    ({"service": "a", "message": "m", "detected_at": 10**400}, "detected_at: epoch seconds"),
    ({"service": "a", "message": "m", "tags": {1: "x"}}, "tags: tag names must be strings"),
    ({"service": "a", "message": "m", "fingerprint": []}, "fingerprint: expected 1–32 parts"),
    ({"service": "a", "message": "m", "fingerprint": ["x", 3]}, "fingerprint[1]: expected a str"),
    ({"service": "a", "message": "m", "tags": ["a"]}, "tags: expected an object"),
    ({"service": "a", "message": "m", "tags": {"k": 1}}, "tags.k: expected a string"),
    ({"service": "a", "message": "m", "exception": "boom"}, "exception: expected an object"),
    ({"service": "a", "message": "m", "exception": {"value": "x"}}, "exception.type: expected"),
    (
        {"service": "a", "message": "m", "exception": {"type": "E", "stack": []}},
        "exception: unknown field(s) 'stack'",
    ),
    (
        {"service": "a", "message": "m", "exception": {"type": "E", "frames": [{"lineno": 3}]}},
        "exception.frames[0].function: expected a string",
    ),
    (
        {
            "service": "a",
            "message": "m",
            "exception": {
                "type": "E",
                "frames": [{"function": "f"}, {"function": "g", "lineno": -1}],
            },
        },
        "exception.frames[1].lineno: expected a line number",
    ),
    (
        {
            "service": "a",
            "message": "m",
            "exception": {"type": "E", "frames": [{"function": "f", "in_app": "yes"}]},
        },
        "exception.frames[0].in_app: expected true or false",
    ),
    ({"service": "a", "message": "m", "external_id": 12}, "external_id: expected a string"),
    ({"service": "a" * 201, "message": "m"}, "service: 201 characters; the limit is 200"),
    ([], "expected a JSON object, got an array"),
]


@pytest.mark.parametrize(("payload", "expected"), BAD)
def test_bad_fields_are_named_in_the_error(payload: object, expected: str) -> None:
    """Every refusal is an InvalidInput that says which field and what was wrong."""
    with pytest.raises(InvalidInput) as info:
        signal_from_json(payload, where="in.jsonl:7")
    assert str(info.value).startswith("in.jsonl:7: ")
    assert expected in str(info.value)


def test_lines_that_are_not_json_or_too_big_are_refused() -> None:
    """Malformed JSON, a bomb of nesting and an oversized line are clear errors, not crashes."""
    for line, expected in (
        ('{"service": "a", "message": ', "not valid JSON"),
        ("[" * 100_000, "not valid JSON"),
        ("", "not valid JSON"),
        (b'{"service": "a", "message": "\xff"}', "not valid JSON"),
        ("x" * (MAX_PAYLOAD_BYTES + 1), "the limit is"),
    ):
        with pytest.raises(InvalidInput, match=expected):
            parse_signal_line(line, where="f:1")


def test_too_many_frames_and_tags_are_refused() -> None:
    """Bounded lists: 251 frames or 65 tags are refused before they reach the store."""
    frames = [{"function": "f"}] * 251
    with pytest.raises(InvalidInput, match="251 frames; the limit is 250"):
        signal_from_json(
            {"service": "a", "message": "m", "exception": {"type": "E", "frames": frames}}
        )
    tags = {f"t{i}": "v" for i in range(65)}
    with pytest.raises(InvalidInput, match="65 tags; the limit is 64"):
        signal_from_json({"service": "a", "message": "m", "tags": tags})


def test_a_parsed_signal_records_and_groups_by_its_frames(tracker: Tracker) -> None:
    """What the wire accepts, the recorder takes: two occurrences with other line numbers group."""
    first = tracker.record(signal_from_json(FULL | {"fingerprint": None, "external_id": "e1"}))
    moved = json.loads(json.dumps(FULL))
    moved["exception"]["frames"][1]["lineno"] = 99
    moved.update(fingerprint=None, external_id="e2")
    second = tracker.record(signal_from_json(moved))
    assert first.issue_id == second.issue_id
    issue = tracker.issue(first.issue_id)  # type: ignore[arg-type]
    assert issue.grouping_variant == "exception-frames"


def test_jsonable_renders_views_for_json() -> None:
    """Views become JSON values: datetimes in ISO 8601 with Z, severities as SEVn."""
    s = signal_from_json(FULL)
    out = jsonable({"at": s.occurred_at, "sev": s.severity, "kind": s.kind, "frames": s.exception})
    assert out["at"] == "2026-11-25T08:20:00Z"
    assert out["sev"] == "SEV2"
    assert out["kind"] == "data-integrity"
    assert out["frames"]["frames"][1]["function"] == "extract"
    json.dumps(out)
