"""The post-incident report, in the Google SRE book's template, in Markdown and HTML.

Pre-filled from the record: summary, impact, detection (the detecting source or
probe, and detected − impact started), the timeline with OUTAGE BEGINS /
MITIGATED / ENDS markers, and the resolution (the successful recovery attempt,
or who resolved it and how). Root causes, trigger, lessons and action items come
from the postmortem row when people wrote them, and are marked as still to write
otherwise. Both renderers walk one small document model, so the Markdown and the
HTML never disagree; every string from the record is escaped on the way out
(a message can hold ``<script>`` as easily as a stack trace).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from medic.clock import Clock, system_clock
from medic.tracker._tracker import Tracker
from medic.tracker._views import (
    IncidentView,
    IssueView,
    PostmortemView,
    RecoveryAttemptView,
    TimelineEntry,
)

__all__ = ["IncidentReport", "build_report", "render_report"]

TO_WRITE = "To be written."
MAX_TIMELINE = 1000
MAX_ISSUES = 50


@dataclass(frozen=True, slots=True)
class IncidentReport:
    """Everything the report says, read in one go so a render never touches the store."""

    incident: IncidentView
    issues: list[IssueView]
    timeline: list[TimelineEntry]
    attempts: list[RecoveryAttemptView]
    postmortem: PostmortemView | None
    generated_at: datetime


def build_report(
    tracker: Tracker, incident_id: int, *, clock: Clock = system_clock
) -> IncidentReport:
    incident = tracker.incident(incident_id)
    return IncidentReport(
        incident=incident,
        issues=[tracker.issue(i) for i in incident.issue_ids[:MAX_ISSUES]],
        timeline=tracker.timeline(incident_id, limit=MAX_TIMELINE),
        attempts=tracker.recovery_attempts(incident_id),
        postmortem=tracker.postmortem(incident_id),
        generated_at=clock.now(),
    )


def render_report(report: IncidentReport, *, format: Literal["md", "html"] = "md") -> str:
    doc = _document(report)
    if format == "md":
        return _markdown(doc)
    if format == "html":
        return _html(doc)
    raise ValueError(f"unknown report format {format!r}; expected md or html")


# -- the document model --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Para:
    text: str
    placeholder: bool = False


@dataclass(frozen=True, slots=True)
class _Fields:
    pairs: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class _Table:
    headers: list[str]
    rows: list[list[str]]
    strong_rows: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class _Section:
    title: str
    blocks: list[_Para | _Fields | _Table | _Section]
    level: int = 2


@dataclass(frozen=True, slots=True)
class _Doc:
    title: str
    sections: list[_Section]


def _text_or_todo(value: str | None, fallback: str | None = None) -> _Para:
    if value and value.strip():
        return _Para(value.strip())
    if fallback:
        return _Para(fallback)
    return _Para(TO_WRITE, placeholder=True)


def _document(r: IncidentReport) -> _Doc:
    inc, pm = r.incident, r.postmortem
    return _Doc(
        title=f"{inc.title} — postmortem (incident #{inc.id})",
        sections=[
            _Section(
                "Overview",
                [
                    _Fields(
                        [
                            ("Date", _when(inc.impact_started_at)),
                            ("Authors", ", ".join(pm.authors) if pm and pm.authors else "—"),
                            ("Status", _status(r)),
                            ("Severity", str(inc.severity)),
                            ("Service", inc.service),
                            ("Duration", _duration_text(inc)),
                        ]
                    )
                ],
            ),
            _Section("Summary", [_text_or_todo(pm.summary if pm else None, _summary(r))]),
            _Section("Impact", [_text_or_todo(pm.impact if pm else None, _impact(r))]),
            _Section(
                "Root Causes", [_text_or_todo(pm.root_causes if pm else None, _root_causes(r))]
            ),
            _Section("Trigger", [_text_or_todo(pm.trigger if pm else None, _trigger(r))]),
            _Section("Resolution", [_text_or_todo(pm.resolution if pm else None, _resolution(r))]),
            _Section("Detection", [_text_or_todo(pm.detection if pm else None, _detection(r))]),
            _Section("Action Items", [_action_items(pm)]),
            _Section(
                "Lessons Learned",
                [
                    _Section("What went well", [_text_or_todo(pm.went_well if pm else None)], 3),
                    _Section("What went wrong", [_text_or_todo(pm.went_wrong if pm else None)], 3),
                    _Section(
                        "Where we got lucky", [_text_or_todo(pm.got_lucky if pm else None)], 3
                    ),
                ],
            ),
            _Section("Timeline", [_timeline(r)]),
            _Section("Supporting Information", _supporting(r)),
        ],
    )


def _status(r: IncidentReport) -> str:
    pm = r.postmortem
    open_items = sum(1 for a in pm.action_items if a.status == "open") if pm else 0
    text = f"postmortem {pm.status if pm else 'draft'}; incident {r.incident.status}"
    return text + (f"; {open_items} action item(s) open" if open_items else "")


def _summary(r: IncidentReport) -> str:
    inc = r.incident
    text = inc.summary or (
        f"{inc.severity} on {inc.service}: {inc.title}. Impact began {_when(inc.impact_started_at)}"
    )
    if inc.resolved_at:
        text += (
            f" and ended {_span(inc.impact_started_at, inc.resolved_at)} later"
            f" ({(inc.resolution_kind or 'unknown').replace('_', ' ')})."
        )
    else:
        text += "; it is not resolved yet."
    return text


def _impact(r: IncidentReport) -> str:
    inc = r.incident
    issues = ", ".join(f"#{i.id} {i.title} ({i.times_seen}×)" for i in r.issues) or "none linked"
    return (
        f"{inc.service} was affected for {_duration_text(inc)}; "
        f"{inc.signal_count} failure signal(s) recorded; issues: {issues}."
    )


def _root_causes(r: IncidentReport) -> str | None:
    causes = [f"#{i.id} {i.title}: {i.root_cause}" for i in r.issues if i.root_cause]
    return "\n".join(causes) or None


def _trigger(r: IncidentReport) -> str | None:
    first = next((e for e in r.timeline if e.kind == "signal_received"), None)
    return f"First signal: {first.message}" if first else None


def _resolution(r: IncidentReport) -> str | None:
    inc = r.incident
    won = [a for a in r.attempts if a.outcome == "success"]
    failed = [a for a in r.attempts if a.outcome not in (None, "success")]
    parts: list[str] = []
    if won:
        a = won[-1]
        took = f" in {_seconds(a.duration_s)}" if a.duration_s is not None else ""
        parts.append(
            f"{a.action} (attempt {a.attempt}) succeeded at {_when(a.ended_at or a.started_at)}{took}."
        )
    if failed:
        parts.append(f"{len(failed)} recovery attempt(s) failed before that.")
    if inc.resolved_at:
        parts.append(
            f"Resolved {_when(inc.resolved_at)} by {(inc.resolution_kind or 'unknown').replace('_', ' ')}"
            f" (reason: {(inc.resolution_reason or 'unknown').replace('_', ' ')})."
        )
    return " ".join(parts) or None


def _detection(r: IncidentReport) -> str:
    inc = r.incident
    first = next((e for e in r.timeline if e.kind == "signal_received"), None)
    by = first.actor if first else "an unknown source"
    probe = first.details.get("probe") if first else None
    if probe:
        by += f" (probe {probe})"
    return (
        f"Detected by {by} at {_when(inc.detected_at)}, "
        f"{_span(inc.impact_started_at, inc.detected_at)} after the impact began."
    )


def _action_items(pm: PostmortemView | None) -> _Table | _Para:
    if pm is None or not pm.action_items:
        return _Para("No action items recorded yet.", placeholder=True)
    return _Table(
        ["Action Item", "Type", "Owner", "Bug", "Status"],
        [
            [a.text, a.type, a.owner or "—", a.tracking_url or "—", a.status]
            for a in pm.action_items
        ],
    )


def _timeline(r: IncidentReport) -> _Table:
    inc = r.incident
    markers = [(inc.impact_started_at, "OUTAGE BEGINS")]
    if inc.mitigated_at:
        markers.append((inc.mitigated_at, "OUTAGE MITIGATED"))
    if inc.resolved_at:
        markers.append((inc.resolved_at, "OUTAGE ENDS"))
    rows: list[tuple[datetime, int, list[str]]] = [
        (at, 0, [_when(at), "", label]) for at, label in markers
    ]
    rows += [(e.at, 1, [_when(e.at), f"{e.actor} ({e.actor_kind})", e.message]) for e in r.timeline]
    rows.sort(key=lambda row: (row[0], row[1]))
    if len(r.timeline) >= MAX_TIMELINE:
        last = r.timeline[-1].at
        rows.append((last, 2, ["…", "", f"only the first {MAX_TIMELINE} entries are shown"]))
    strong = frozenset(i for i, row in enumerate(rows) if row[1] == 0)
    return _Table(["Time (UTC)", "Actor", "Entry"], [row[2] for row in rows], strong)


def _supporting(r: IncidentReport) -> list[_Para | _Fields | _Table | _Section]:
    inc, pm = r.incident, r.postmortem
    blocks: list[_Para | _Fields | _Table | _Section] = []
    if pm and pm.supporting_information:
        blocks.append(_Para(pm.supporting_information.strip()))
    blocks.append(
        _Fields(
            [
                ("Time to detect", _span(inc.impact_started_at, inc.detected_at)),
                ("Time to acknowledge", _span(inc.triggered_at, inc.acknowledged_at)),
                ("Time to mitigate", _span(inc.impact_started_at, inc.mitigated_at)),
                ("Time to recover", _span(inc.impact_started_at, inc.resolved_at)),
                ("Escalation level", f"L{inc.escalation_level}"),
                ("Related incidents", ", ".join(f"#{i}" for i in inc.related) or "—"),
            ]
        )
    )
    if r.attempts:
        blocks.append(
            _Section(
                "Recovery attempts",
                [
                    _Table(
                        ["Started (UTC)", "Action", "Attempt", "Outcome", "Took", "Error"],
                        [
                            [
                                _when(a.started_at),
                                a.action,
                                str(a.attempt),
                                a.outcome or "running",
                                _seconds(a.duration_s) if a.duration_s is not None else "—",
                                a.error or "",
                            ]
                            for a in r.attempts
                        ],
                    )
                ],
                3,
            )
        )
    if r.issues:
        blocks.append(
            _Section(
                "Issues behind this incident",
                [
                    _Table(
                        ["Issue", "Title", "Kind", "Seen", "Status", "Self-healing"],
                        [
                            [
                                f"#{i.id}",
                                i.title,
                                i.kind,
                                str(i.times_seen),
                                i.status,
                                i.self_healing,
                            ]
                            for i in r.issues
                        ],
                    )
                ],
                3,
            )
        )
    blocks.append(_Para(f"Report generated {_when(r.generated_at)} by medic from the record."))
    return blocks


# -- formatting ----------------------------------------------------------------------


def _when(moment: datetime | None) -> str:
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def _span(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    return _seconds((end - start).total_seconds())


def _seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.1f} s"
    delta = timedelta(seconds=round(seconds))
    days, rest = delta.days, delta.seconds
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h {minutes} min"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s"


def _duration_text(inc: IncidentView) -> str:
    if inc.resolved_at is None:
        return "ongoing"
    return _span(inc.impact_started_at, inc.resolved_at)


# -- Markdown ------------------------------------------------------------------------


def _md_text(value: str) -> str:
    """Prose that renders as written: no raw HTML, no accidental emphasis or headings."""
    value = html.escape(value, quote=False)
    for ch in ("\\", "`", "*", "_", "[", "]", "#", "|"):
        value = value.replace(ch, "\\" + ch)
    return value


def _md_cell(value: str) -> str:
    return _md_text(value).replace("\r", "").replace("\n", "<br>")


def _markdown(doc: _Doc) -> str:
    out = [f"# {_md_text(doc.title)}", ""]
    for section in doc.sections:
        _md_section(section, out)
    return "\n".join(out).rstrip() + "\n"


def _md_section(section: _Section, out: list[str]) -> None:
    out += ["#" * section.level + " " + _md_text(section.title), ""]
    for block in section.blocks:
        if isinstance(block, _Section):
            _md_section(block, out)
        elif isinstance(block, _Para):
            text = "  \n".join(_md_text(line) for line in block.text.splitlines())
            out += [f"_{text}_" if block.placeholder else text, ""]
        elif isinstance(block, _Fields):
            out += [f"**{_md_text(k)}:** {_md_text(v)}  " for k, v in block.pairs] + [""]
        else:
            out.append("| " + " | ".join(_md_text(h) for h in block.headers) + " |")
            out.append("|" + "---|" * len(block.headers))
            for i, row in enumerate(block.rows):
                cells = [_md_cell(c) for c in row]
                if i in block.strong_rows:
                    cells = [f"**{c}**" if c else c for c in cells]
                out.append("| " + " | ".join(cells) + " |")
            out.append("")


# -- HTML ----------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#1b1f24;line-height:1.45}
h1{font-size:1.6rem}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}tr.marker td{font-weight:700;background:#fff8c5}
.todo{color:#8c959f;font-style:italic}dl{display:grid;grid-template-columns:max-content 1fr;
gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}p{white-space:pre-wrap}
"""


def _e(value: str) -> str:
    return html.escape(value, quote=True)


def _html(doc: _Doc) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # Self-contained and inert: no scripts, no remote fetches, whatever the record holds.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">",
        f"<title>{_e(doc.title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(doc.title)}</h1>",
    ]
    for section in doc.sections:
        _html_section(section, out)
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _html_section(section: _Section, out: list[str]) -> None:
    out.append(f"<h{section.level}>{_e(section.title)}</h{section.level}>")
    for block in section.blocks:
        if isinstance(block, _Section):
            _html_section(block, out)
        elif isinstance(block, _Para):
            cls = ' class="todo"' if block.placeholder else ""
            out.append(f"<p{cls}>{_e(block.text)}</p>")
        elif isinstance(block, _Fields):
            out.append("<dl>")
            out += [f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in block.pairs]
            out.append("</dl>")
        else:
            out.append("<table><thead><tr>")
            out += [f"<th>{_e(h)}</th>" for h in block.headers]
            out.append("</tr></thead><tbody>")
            for i, row in enumerate(block.rows):
                cls = ' class="marker"' if i in block.strong_rows else ""
                cells = "".join(f"<td>{_e(c)}</td>" for c in row)
                out.append(f"<tr{cls}>{cells}</tr>")
            out.append("</tbody></table>")
