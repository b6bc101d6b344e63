"""Grouping: which issue a signal lands in, and why."""

from __future__ import annotations

import re
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from medic.events import ExceptionInfo, Frame, Signal
from medic.taxonomy import Grouper, GroupingRule, group, normalize_message


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


def _word_by_word(text: str) -> str:
    """The masking every fast path must reproduce: the full pattern on each word that
    holds a maskable character (or on the whole text when a shape may span spaces)."""
    from medic.taxonomy._grouping import _MASKABLE, _MASKS, _mask

    text = " ".join(text[:1024].split())
    if _MASKABLE.search(text) is None:
        return text
    if re.search(r"['\"]|\d{4}-\d{2}-\d{2} \d", text):
        return _MASKS.sub(_mask, text)
    return " ".join(
        "<num>" if w.isdigit() else _MASKS.sub(_mask, w) if _MASKABLE.search(w) else w
        for w in text.split()
    )


_digits = st.text(alphabet="0123456789", min_size=1, max_size=12)
_hexes = st.text(alphabet="0123456789abcdefABCDEF", min_size=1, max_size=14)
_octet = st.integers(min_value=0, max_value=9999).map(str)
_shapes = st.one_of(
    _digits,
    st.builds(
        lambda a, b, u: f"{a}.{b}{u}",
        _digits,
        _digits,
        st.sampled_from(["", "s", "ms", "us", "ns", "m", "h", "%", "e5", "x", "sec", "MB", "ab"]),
    ),
    st.builds(
        lambda a, u: a + u,
        _digits,
        st.sampled_from(["s", "ms", "h", "%", "e", "e3", "abcdef01", "-", "."]),
    ),
    st.builds(
        lambda o, p: ".".join(o) + p,
        st.lists(_octet, min_size=3, max_size=5),
        st.sampled_from(["", ":5432", ":1", ":123456", ":", ":x"]),
    ),
    st.builds(
        lambda p: "/" + p,
        st.text(alphabet=string.ascii_letters + string.digits + "/._-:;,()[]{}<>\\", max_size=20),
    ),
    st.builds(lambda p: "-".join(p), st.tuples(_hexes, _hexes, _hexes, _hexes, _hexes)),
    st.builds(
        lambda w, c: w + c,
        st.text(alphabet=string.ascii_letters, min_size=1, max_size=8),
        st.sampled_from([":", "::", ":1", ":12", ":8080", "=1", "=0x1f", "\\x", ":\\"]),
    ),
    st.text(
        alphabet=string.ascii_letters + string.digits + ":/\\.-_=[]<>", min_size=1, max_size=16
    ),
    st.sampled_from(
        ["¹²", "٣٤", "x²", "ms:", "SELECT", "*", "<num>", "<ip>:<port>", "2026-11-25", "12:30:01"]
    ),
)


@given(st.lists(_shapes, max_size=12))
def test_the_common_shape_fast_path_masks_as_the_full_pattern(words: list[str]) -> None:
    """Numbers with units, IPs with ports, paths, UUIDs and labels get the full pattern's mask."""
    text = " ".join(words)
    assert normalize_message(text) == _word_by_word(text)


_app = Frame("handle", "app.views", "app/views.py", 10, True)
_lib = Frame("get", "lib.db", "/usr/lib/python3/db.py", 7, False)
_frames = st.sampled_from([(), (_lib,), (_app,), (_lib, _app), (Frame("run", "", "app/x.py"),)])
_few_words = st.sampled_from(["boom", "x 1", "x 2", "database locked after 5s", "'k-1'", ""])
_signals = st.builds(
    Signal,
    st.sampled_from(["api", "web"]),
    _few_words | _shapes,
    exception=st.sampled_from([None, None])
    | st.builds(ExceptionInfo, st.sampled_from(["KeyError", "OSError"]), _few_words, _frames),
    probe=st.sampled_from([None, None, "", "http"]),
    reason=st.sampled_from([None, "timeout", "refused"]),
    fingerprint=st.sampled_from([(), (), (), ("db-down",), ("{{ default }}", "eu")]),
)


@settings(max_examples=300)
@given(st.lists(_signals, max_size=30))
def test_a_grouper_answers_as_group_does(signals: list[Signal]) -> None:
    """Remembering answers never changes one: every signal groups as `group` says, rules too."""
    rules = [GroupingRule("db", {"message": "*database*"}, ("database",))]
    plain, ruled = Grouper(size=8), Grouper(rules, size=8)
    for s in signals + signals:
        assert plain(s) == group(s)
        assert ruled(s) == group(s, rules)


_SIBLING_DIGITS = str.maketrans("123456789", "987654321")


@settings(max_examples=300)
@given(st.lists(_shapes | _few_words, max_size=10), st.sampled_from(["", " '", ' "', " 0x", "\n"]))
def test_remembered_masking_is_the_masking_of_each_message(words: list[str], tail: str) -> None:
    """A grouper that masked a message of the same shape before still masks this one exactly.

    The sibling differs only in which of the digits 1-9 it holds, the one variation the
    grouper's memory of masked messages treats as the same shape.
    """
    text = " ".join(words) + tail
    sibling = text.translate(_SIBLING_DIGITS)
    grouper = Grouper(size=8)
    for message in (sibling, text, sibling, text):
        assert grouper.normalize(message) == normalize_message(message)
