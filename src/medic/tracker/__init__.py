"""The tracker: medic's system of record for issues, incidents, timelines and KPIs.

Write side: `Tracker.record` / `record_many` and the transitions. Read side:
the `Tracker` queries, `kpis`, `report`. SQLAlchemy and Alembic live here and
nowhere else in medic.
"""

from medic.tracker._admin import upgrade_store
from medic.tracker._demo import DemoSummary, Episode, demo_episodes, demo_signals, record_demo
from medic.tracker._engine import HEAD_REVISION, normalize_url
from medic.tracker._io import (
    ROW_TYPES,
    ImportFailed,
    ImportResult,
    export_record,
    import_record,
    read_lines,
)
from medic.tracker._kpis import IncidentTimes, KpiReport, Stat, compute_kpis
from medic.tracker._model import (
    DEFAULT_SEVERITY_POLICIES,
    INCIDENT_ALLOWED,
    ISSUE_ALLOWED,
    OPEN_INCIDENT_STATES,
    IncidentStatus,
    IssueCategory,
    IssueStatus,
    IssueSubstatus,
    ResolutionKind,
    ResolutionReason,
    SelfHealing,
    SeverityPolicy,
    TimelineKind,
)
from medic.tracker._report import IncidentReport, build_report, render_report
from medic.tracker._tracker import ISSUE_FIELDS, POSTMORTEM_SECTIONS, Tracker
from medic.tracker._views import (
    ActionItem,
    EventView,
    IncidentView,
    IssueView,
    Page,
    PostmortemView,
    RecordResult,
    RecoveryAttemptView,
    TimelineEntry,
)
from medic.tracker._wire import (
    MAX_PAYLOAD_BYTES,
    SIGNAL_FIELDS,
    jsonable,
    parse_signal_line,
    signal_from_json,
    signal_to_json,
)

__all__ = [
    "DEFAULT_SEVERITY_POLICIES",
    "HEAD_REVISION",
    "INCIDENT_ALLOWED",
    "ISSUE_ALLOWED",
    "ISSUE_FIELDS",
    "MAX_PAYLOAD_BYTES",
    "OPEN_INCIDENT_STATES",
    "POSTMORTEM_SECTIONS",
    "ROW_TYPES",
    "SIGNAL_FIELDS",
    "ActionItem",
    "DemoSummary",
    "Episode",
    "EventView",
    "ImportFailed",
    "ImportResult",
    "IncidentReport",
    "IncidentStatus",
    "IncidentTimes",
    "IncidentView",
    "IssueCategory",
    "IssueStatus",
    "IssueSubstatus",
    "IssueView",
    "KpiReport",
    "Page",
    "PostmortemView",
    "RecordResult",
    "RecoveryAttemptView",
    "ResolutionKind",
    "ResolutionReason",
    "SelfHealing",
    "SeverityPolicy",
    "Stat",
    "TimelineEntry",
    "TimelineKind",
    "Tracker",
    "build_report",
    "compute_kpis",
    "demo_episodes",
    "demo_signals",
    "export_record",
    "import_record",
    "jsonable",
    "normalize_url",
    "parse_signal_line",
    "read_lines",
    "record_demo",
    "render_report",
    "signal_from_json",
    "signal_to_json",
    "upgrade_store",
]
