"""Grouping: which issue a signal lands in, and why."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from medic.events import ExceptionInfo, Frame, Signal
from medic.taxonomy import GroupingRule, group, normalize_message


def test_message_variants_that_differ_only_in_numbers_group_together() -> None:
    """Two timeouts that differ in latency, address and request id are one issue."""
    a = Signal("api", "timeout after 3.5s talking to 10.0.0.7:5432 (req 9f1c2e3a4b5d)")
    b = Signal("api", "timeout after 12s talking to 10.0.0.9:6432 (req 00aa11bb22cc)")
    assert group(a).hash == group(b).hash
    assert group(a).variant == "message"


def test_same_message_in_two_services_is_two_issues() -> None:
    """The service is part of every fingerprint."""
    assert group(Signal("api", "boom")).hash != group(Signal("worker", "boom")).hash


def test_normalisation_masks_every_volatile_shape() -> None:
    """Timestamps, UUIDs, IPs, host:port, paths, quoted strings, hex and numbers are masked."""
    text = (
        '2026-11-25T09:36:08Z open /var/lib/app/data.db failed: "disk full" '
        "id=550e8400-e29b-41d4-a716-446655440000 host db.local:5432 at 0x7ffe12 ip ::1 n=42"
    )
    assert normalize_message(text) == (
        "<timestamp> open <path> failed: <str> id=<uuid> host <host>:<port> at <hex> ip <ip> n=<num>"
    )


def test_exception_frames_ignore_line_numbers_and_paths() -> None:
    """A redeploy that moves lines or directories does not split an issue."""

    def exc(lineno: int, filename: str) -> ExceptionInfo:
        return ExceptionInfo(
            "KeyError",
            "'user-17'",
            (
                Frame("handle", "app.views", filename, lineno, True),
                Frame("get", "dict", "<lib>", 1, False),
            ),
        )

    a = Signal("api", "x", exception=exc(10, "/srv/a/app/views.py"))
    b = Signal("api", "y", exception=exc(99, "/opt/b/app/views.py"))
    ga, gb = group(a), group(b)
    assert ga.hash == gb.hash
    assert ga.variant == "exception-frames"
    assert ga.inputs == {"type": "KeyError", "frames": ["app.views.handle"]}


def test_exception_without_app_frames_groups_by_type_and_normalised_value() -> None:
    """Library-only stacks fall back to type + normalised value."""
    a = Signal("api", "m", exception=ExceptionInfo("ValueError", "bad id 17"))
    b = Signal("api", "m", exception=ExceptionInfo("ValueError", "bad id 18"))
    assert group(a).hash == group(b).hash
    assert group(a).variant == "exception-value"


def test_client_fingerprint_wins_and_default_expands() -> None:
    """A client fingerprint overrides grouping; {{ default }} keeps the default parts."""
    a = Signal("api", "boom 1", fingerprint=("db-down",))
    b = Signal("api", "other", fingerprint=("db-down",))
    assert (
        group(a).hash == group(b).hash == group(Signal("api", "zzz", fingerprint=("db-down",))).hash
    )
    assert group(a).variant == "client-fingerprint"
    c = Signal("api", "boom 1", fingerprint=("{{ default }}", "eu"))
    d = Signal("api", "boom 2", fingerprint=("{{ default }}", "us"))
    assert group(c).hash != group(d).hash
    assert group(c).inputs["default"]["variant"] == "message"


def test_rules_apply_before_the_default_and_name_themselves() -> None:
    """A configured rule wins over frames and messages and says which rule it was."""
    rule = GroupingRule("db", {"message": "*database*"}, ("database",))
    a = Signal("api", "database locked after 5s")
    b = Signal("api", "database is gone")
    assert group(a, [rule]).hash == group(b, [rule]).hash
    assert group(a, [rule]).variant == "rule:db"
    assert group(Signal("api", "other"), [rule]).variant == "message"


def test_probe_failures_group_by_service_probe_and_reason() -> None:
    """Probe evidence in the message does not split the issue."""
    a = Signal("api", "GET /health took 5.1s", probe="http", reason="timeout")
    b = Signal("api", "GET /health took 7.9s after 3 tries", probe="http", reason="timeout")
    assert group(a).hash == group(b).hash
    assert group(a).variant == "probe"


@given(st.text(alphabet=string.printable, max_size=300))
def test_normalisation_is_idempotent(text: str) -> None:
    """Normalising twice changes nothing more: masks never create new maskable shapes."""
    once = normalize_message(text)
    assert normalize_message(once) == once


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=10**12))
def test_numbers_never_split_a_group(x: int, y: int) -> None:
    """Messages that differ only in a number always share a fingerprint."""
    assert (
        group(Signal("s", f"queue depth {x} over limit")).hash
        == group(Signal("s", f"queue depth {y} over limit")).hash
    )


@given(st.text(alphabet=string.printable, max_size=300))
def test_word_by_word_masking_equals_masking_the_whole_message(text: str) -> None:
    """The fast path (mask only the words that need it) gives the full pattern's answer."""
    from medic.taxonomy._grouping import _MASKS, _mask

    assert normalize_message(text) == " ".join(
        _MASKS.sub(_mask, " ".join(text[:1024].split())).split()
    )
