"""The tracker: medic's system of record for issues, incidents, timelines and KPIs.

Write side: `Tracker.record` / `record_many` and the transitions. Read side:
the `Tracker` queries, `kpis`, `report`. SQLAlchemy and Alembic live here and
nowhere else in medic.
"""

from medic.tracker._engine import HEAD_REVISION, normalize_url
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

__all__ = [
    "DEFAULT_SEVERITY_POLICIES",
    "HEAD_REVISION",
    "INCIDENT_ALLOWED",
    "ISSUE_ALLOWED",
    "ISSUE_FIELDS",
    "OPEN_INCIDENT_STATES",
    "POSTMORTEM_SECTIONS",
    "ActionItem",
    "EventView",
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
    "compute_kpis",
    "normalize_url",
]
