"""The post-incident report: the SRE template's sections, pre-filled, and escaped on the way out."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from medic.events import Action, Signal
from medic.taxonomy import Severity
from medic.testing import FakeClock
from medic.tracker import Tracker, build_report, render_report

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
SECTIONS = [
    "Overview",
    "Summary",
    "Impact",
    "Root Causes",
    "Trigger",
    "Resolution",
    "Detection",
    "Action Items",
    "Lessons Learned",
    "Timeline",
    "Supporting Information",
]
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> | **bold** [link](http://evil)'


@pytest.fixture
def clock() -> FakeClock:
    """Time starts when the outage is detected."""
    return FakeClock(T0 + timedelta(seconds=30))


@pytest.fixture
def healed(tmp_path: Path, clock: FakeClock) -> tuple[Tracker, int]:
    """A probe outage that medic healed with its second restart."""
    tracker = Tracker(str(tmp_path / "r.db"), clock=clock)
    result = tracker.record(
        Signal(
            "web",
            "GET /healthz timed out after 5s",
            source="health",
            probe="http",
            reason="timeout",
            severity=Severity.SEV2,
            occurred_at=T0,
            detected_at=T0 + timedelta(seconds=30),
        )
    )
    incident_id = result.incident_id
    assert incident_id is not None
    for attempt, outcome in ((1, "failure"), (2, "success")):
        start = T0 + timedelta(seconds=30 + 10 * attempt)
        tracker.record_recovery(
            incident_id,
            action="restart",
            attempt=attempt,
            started_at=start,
            ended_at=start + timedelta(seconds=2),
            outcome=outcome,
        )
    clock.advance(60)
    tracker.record(Signal("web", "probe passes", action=Action.RESOLVE, source="health"))
    return tracker, incident_id


def _headings(markdown: str) -> list[str]:
    return [line.lstrip("# ") for line in markdown.splitlines() if line.startswith("## ")]


def test_sections_follow_the_sre_template_in_order(healed: tuple[Tracker, int]) -> None:
    """Title, overview (date, authors, status), then the SRE book's sections in its order."""
    tracker, incident_id = healed
    md = render_report(build_report(tracker, incident_id))
    assert md.startswith(
        f"# web: GET /healthz timed out after 5s — postmortem (incident \\#{incident_id})"
    )
    assert _headings(md) == SECTIONS
    for field in (
        "**Date:** 2026-11-20 08:00:00",
        "**Authors:**",
        "**Status:**",
        "**Severity:** SEV2",
    ):
        assert field in md
    for sub in ("### What went well", "### What went wrong", "### Where we got lucky"):
        assert sub in md


def test_detection_resolution_and_timeline_are_prefilled(healed: tuple[Tracker, int]) -> None:
    """Detection names the probe and D − S; resolution names the restart that worked."""
    tracker, incident_id = healed
    md = render_report(build_report(tracker, incident_id))
    section = md.split("## Detection")[1].split("##")[0]
    assert "health (probe http)" in section
    assert "30.0 s after the impact began" in section
    resolution = md.split("## Resolution")[1].split("##")[0]
    assert "restart (attempt 2) succeeded" in resolution
    assert "in 2.0 s" in resolution
    assert "1 recovery attempt(s) failed" in resolution
    assert "auto recovery" in resolution
    timeline = md.split("## Timeline")[1].split("## Supporting")[0]
    markers = re.findall(r"OUTAGE [A-Z]+", timeline)
    assert markers == ["OUTAGE BEGINS", "OUTAGE MITIGATED", "OUTAGE ENDS"]
    assert timeline.index("OUTAGE BEGINS") < timeline.index("triggered by health")
    assert timeline.index("restart attempt 2") < timeline.index("OUTAGE ENDS")


def test_postmortem_rows_fill_the_human_sections(healed: tuple[Tracker, int]) -> None:
    """Root causes, lessons and action items come from the postmortem when written."""
    tracker, incident_id = healed
    tracker.save_postmortem(
        incident_id,
        status="complete",
        authors=["ana", "bo"],
        root_causes="a slow query held the worker pool",
        went_well="medic restarted it",
    )
    tracker.add_action_item(
        incident_id,
        text="index the orders table",
        type="prevent",
        owner="ana",
        tracking_url="https://bugs/1",
    )
    md = render_report(build_report(tracker, incident_id))
    assert "**Authors:** ana, bo" in md
    assert "a slow query held the worker pool" in md.split("## Root Causes")[1]
    assert "| index the orders table | prevent | ana | https://bugs/1 | open |" in md
    assert "_To be written._" in md.split("### What went wrong")[1]


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)


def test_hostile_strings_are_escaped_in_html(healed: tuple[Tracker, int]) -> None:
    """Markup in titles, notes and postmortems is shown as text; the page runs and loads nothing."""
    tracker, incident_id = healed
    tracker.add_note(incident_id, HOSTILE, actor="<b>mallory</b>")
    tracker.save_postmortem(incident_id, summary=HOSTILE, went_wrong="</p></table>" + HOSTILE)
    tracker.add_action_item(incident_id, text=HOSTILE, owner='"><svg onload=alert(1)>')
    page = render_report(build_report(tracker, incident_id), format="html")
    parser = _Collect()
    parser.feed(page)
    assert "script" not in parser.tags
    assert "img" not in parser.tags
    assert "svg" not in parser.tags
    assert not [a for a in parser.attrs if a[0].startswith("on")]
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;b&gt;mallory&lt;/b&gt;" in page
    assert "default-src 'none'" in page
    assert not [a for a in parser.attrs if a[0] in ("src", "href")]


def test_hostile_strings_are_inert_in_markdown(healed: tuple[Tracker, int]) -> None:
    """Markdown output carries no raw HTML and no table-breaking pipes from the record."""
    tracker, incident_id = healed
    tracker.add_note(incident_id, HOSTILE + "\nsecond line", actor="x")
    md = render_report(build_report(tracker, incident_id))
    assert "<script>" not in md
    assert "<img" not in md
    assert "&lt;script&gt;" in md
    row = next(line for line in md.splitlines() if "alert" in line and line.startswith("|"))
    assert row.count("|") - row.count("\\|") == 4  # three cells, no injected columns
    assert "second line" in row


def test_an_open_incident_reports_as_ongoing(tmp_path: Path, clock: FakeClock) -> None:
    """No resolution yet: duration ongoing, no OUTAGE ENDS marker, placeholders kept."""
    with Tracker(str(tmp_path / "o.db"), clock=clock) as tracker:
        result = tracker.record(Signal("api", "connection refused", occurred_at=T0))
        md = render_report(build_report(tracker, result.incident_id))  # type: ignore[arg-type]
    assert "**Duration:** ongoing" in md
    assert "OUTAGE ENDS" not in md
    assert "not resolved yet" in md


def test_unknown_format_is_refused(healed: tuple[Tracker, int]) -> None:
    """Only md and html exist."""
    tracker, incident_id = healed
    with pytest.raises(ValueError, match="md or html"):
        render_report(build_report(tracker, incident_id), format="pdf")  # type: ignore[arg-type]
