"""Message templates: seed 002's defaults, user overrides, and hostile values that stay inert."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medic.alerts import FIELDS, MessageTemplate, Templates
from medic.errors import ConfigError

from .conftest import make_note

NOW = datetime(2026, 1, 1, 12, 30, tzinfo=UTC)


def test_default_internal_template_follows_seed_002() -> None:
    """The SEV1 internal notice has the seed's headings filled from the notification."""
    msg = Templates()["internal"].render(
        make_note(commander="Ada", war_room="https://chat.example.com/r/42"), now=NOW
    )
    assert msg.subject == "[SEV1] checkout: checkout returns 503"
    for line in (
        "SEVERITY: SEV1 (Critical)",
        "START TIME: 2026-01-01 12:00 UTC",
        "STATUS: Investigating",
        "SYMPTOMS:\n- checkout returns 503",
        "TIMELINE:\n- 12:00 probe failed\n- 12:01 restart failed\n- 12:03 runbook verify failed",
        "WAR ROOM: https://chat.example.com/r/42",
        "INCIDENT COMMANDER: Ada",
    ):
        assert line in msg.text
    assert msg.html is not None
    assert "<li>12:01 restart failed</li>" in msg.html


def test_default_customer_template_follows_seed_002() -> None:
    """The customer notice promises the next update 30 minutes from now and shows the status."""
    msg = Templates()["customer"].render(
        make_note(status="mitigated", impact="checkout is slow"), now=NOW
    )
    assert msg.subject == "Service Disruption - 2026-01-01 12:00 UTC"
    assert "CURRENT STATUS: Mitigating" in msg.text
    assert "IMPACT: checkout is slow" in msg.text
    assert "Next update: 2026-01-01 13:00 UTC" in msg.text


def test_override_by_path_with_html_sibling(tmp_path: Path) -> None:
    """A user file replaces a shipped template; its .html sibling becomes the HTML part."""
    (tmp_path / "page.txt").write_text(
        "SUBJECT: $service is $status_label\n\nSee $link\n$timeline\n"
    )
    (tmp_path / "page.html").write_text('<a href="$link">$title</a>')
    templates = Templates({"internal": tmp_path / "page.txt"})
    msg = templates["internal"].render(make_note(title="<b>bold</b>"), now=NOW)
    assert msg.subject == "checkout is Investigating"
    assert msg.text.startswith("See https://medic.example.com/incidents/42\n- 12:00 probe failed")
    assert (
        msg.html == '<a href="https://medic.example.com/incidents/42">&lt;b&gt;bold&lt;/b&gt;</a>'
    )
    assert templates.names() == ["customer", "internal"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("no subject line\nbody", "SUBJECT"),
        ("SUBJECT: $nope\nbody", "unknown placeholder(s) nope"),
        ("SUBJECT: ok\nbody ${title", "invalid"),
        ("SUBJECT: ok\n$password", "unknown placeholder(s) password"),
    ],
)
def test_bad_user_template_names_the_file(tmp_path: Path, content: str, message: str) -> None:
    """A broken override fails at load with the file's path and what is wrong."""
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        Templates({"internal": path})
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_missing_or_binary_template_file_is_a_config_error(tmp_path: Path) -> None:
    """An unreadable override is reported as a ConfigError naming it."""
    with pytest.raises(ConfigError, match=r"missing\.txt"):
        Templates({"internal": tmp_path / "missing.txt"})
    (tmp_path / "bin.txt").write_bytes(b"SUBJECT: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"bin\.txt"):
        Templates({"internal": tmp_path / "bin.txt"})
    with pytest.raises(ConfigError, match="no message template 'x'"):
        Templates()["x"]


def test_hostile_values_stay_inert() -> None:
    """Placeholders, line breaks, HTML and javascript: links in values are neither expanded nor live."""
    note = make_note(
        title="$link ${severity} {title}\nSTATUS: Resolved\r\n<script>alert(1)</script>",
        service="api\x00\x1b[31m",
        link="javascript:alert(document.cookie)",
        timeline=("<img src=x onerror=alert(1)>", "line\nSTATUS: Resolved"),
        commander='" onmouseover="x',
    )
    msg = Templates()["internal"].render(note, now=NOW)
    assert "\n" not in msg.subject
    assert "\r" not in msg.subject
    assert msg.subject.startswith("[SEV1] api [31m: $link ${severity} {title} STATUS: Resolved")
    assert "\nSTATUS: Resolved" not in msg.text.replace("\nSTATUS: Investigating", "")
    assert "javascript:" not in msg.text
    assert msg.html is not None
    assert "<script>" not in msg.html
    assert "<img" not in msg.html
    assert "javascript:" not in msg.html
    assert 'href=""' in msg.html
    assert '" onmouseover' not in msg.html


def test_huge_values_are_bounded() -> None:
    """A megabyte title and thousands of timeline lines render to a bounded message."""
    note = make_note(title="x" * 1_000_000, timeline=tuple(f"line {i}" for i in range(5000)))
    msg = Templates()["internal"].render(note, now=NOW)
    assert len(msg.subject) <= 200
    assert len(msg.text) < 40_000
    assert "line 4999" in msg.text
    assert "line 0\n" not in msg.text


@settings(max_examples=200, deadline=None)
@given(title=st.text(max_size=300), service=st.text(max_size=50), line=st.text(max_size=100))
def test_any_text_renders_safely(title: str, service: str, line: str) -> None:
    """Whatever the text, the subject is one line and the HTML has no tag from a value."""
    note = make_note(title=title, service=service, timeline=(line,))
    for name in ("internal", "customer"):
        msg = Templates()[name].render(note, now=NOW)
        assert "\n" not in msg.subject
        assert "\r" not in msg.subject
        assert msg.html is not None
        stripped = msg.html
        for tag in (
            "<html>",
            "<body>",
            "<h2>",
            "<table>",
            "<tr>",
            "<th",
            "<td>",
            "<h3>",
            "<ul>",
            "<li>",
            "<p>",
            "<a ",
            "<br>",
            "</",
        ):
            stripped = stripped.replace(tag, "")
        assert "<" not in stripped.replace('align="left">', "")


def test_every_field_is_documented() -> None:
    """docs/alerts.md lists every template placeholder."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "alerts.md").read_text()
    missing = [f for f in sorted(FIELDS) if f"${f}" not in docs]
    assert missing == []


def test_parse_rejects_placeholders_in_html_too() -> None:
    """Unknown placeholders in the HTML part are caught like those in the text."""
    with pytest.raises(ConfigError, match="html"):
        MessageTemplate.parse("x", "SUBJECT: s\nbody", html_text="<p>$secret</p>")
