"""The tracker's vocabulary: lifecycles as explicit state machines, and severity policy.

Incident lifecycle (PagerDuty core plus Dispatch's closed; DESIGN.md):

    triggered → acknowledged → mitigated → resolved → closed
    any open state → cancelled (false positive) | merged (duplicate)

Issue lifecycle (Sentry): unresolved ⇄ resolved, unresolved ⇄ ignored, with a
substatus saying why an unresolved issue is unresolved (new, ongoing, regressed,
escalating).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

from medic.errors import IllegalTransition
from medic.taxonomy import Severity

__all__ = [
    "DEFAULT_SEVERITY_POLICIES",
    "INCIDENT_ALLOWED",
    "ISSUE_ALLOWED",
    "OPEN_INCIDENT_STATES",
    "IncidentStatus",
    "IssueCategory",
    "IssueStatus",
    "IssueSubstatus",
    "ResolutionKind",
    "ResolutionReason",
    "SelfHealing",
    "SeverityPolicy",
    "TimelineKind",
    "check_incident_transition",
    "check_issue_transition",
]


class IncidentStatus(enum.StrEnum):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    MERGED = "merged"


OPEN_INCIDENT_STATES = frozenset(
    {IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED, IncidentStatus.MITIGATED}
)

_S = IncidentStatus
INCIDENT_ALLOWED: dict[IncidentStatus, frozenset[IncidentStatus]] = {
    _S.TRIGGERED: frozenset({_S.ACKNOWLEDGED, _S.MITIGATED, _S.RESOLVED, _S.CANCELLED, _S.MERGED}),
    # A mitigated incident may be acknowledged by a human who takes it over.
    _S.ACKNOWLEDGED: frozenset({_S.MITIGATED, _S.RESOLVED, _S.CANCELLED, _S.MERGED}),
    _S.MITIGATED: frozenset({_S.ACKNOWLEDGED, _S.RESOLVED, _S.CANCELLED, _S.MERGED}),
    # A resolved incident reopens when its service fails again soon after (flapping).
    _S.RESOLVED: frozenset({_S.CLOSED, _S.TRIGGERED}),
    _S.CLOSED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.MERGED: frozenset(),
}


def check_incident_transition(incident_id: int, current: str, target: IncidentStatus) -> None:
    """Raise IllegalTransition unless the incident lifecycle allows current → target."""
    if target not in INCIDENT_ALLOWED[IncidentStatus(current)]:
        raise IllegalTransition(f"incident {incident_id}", current, target.value)


class IssueStatus(enum.StrEnum):
    UNRESOLVED = "unresolved"
    RESOLVED = "resolved"
    IGNORED = "ignored"


class IssueSubstatus(enum.StrEnum):
    NEW = "new"
    ONGOING = "ongoing"
    REGRESSED = "regressed"
    ESCALATING = "escalating"


ISSUE_ALLOWED: dict[IssueStatus, frozenset[IssueStatus]] = {
    IssueStatus.UNRESOLVED: frozenset({IssueStatus.RESOLVED, IssueStatus.IGNORED}),
    IssueStatus.RESOLVED: frozenset({IssueStatus.UNRESOLVED, IssueStatus.IGNORED}),
    IssueStatus.IGNORED: frozenset({IssueStatus.UNRESOLVED, IssueStatus.RESOLVED}),
}


def check_issue_transition(issue_id: int, current: str, target: IssueStatus) -> None:
    """Raise IllegalTransition unless the issue lifecycle allows current → target."""
    if target not in ISSUE_ALLOWED[IssueStatus(current)]:
        raise IllegalTransition(f"issue {issue_id}", current, target.value)


class ResolutionKind(enum.StrEnum):
    """Who or what ended the incident; the auto-recovery rate counts AUTO_RECOVERY."""

    AUTO_RECOVERY = "auto_recovery"
    RUNBOOK = "runbook"
    HUMAN = "human"
    ENGINEERING = "engineering"


class ResolutionReason(enum.StrEnum):
    FIXED = "fixed"
    FALSE_POSITIVE = "false_positive"
    DUPLICATE = "duplicate"
    BENIGN = "benign"
    WONT_FIX = "wont_fix"


class SelfHealing(enum.StrEnum):
    """Whether medic heals this class of failure by itself (seed 003's matrix column)."""

    COVERED = "covered"
    PARTIAL = "partial"
    NONE = "none"


class TimelineKind(enum.StrEnum):
    SIGNAL_RECEIVED = "signal_received"
    STATUS_CHANGED = "status_changed"
    SEVERITY_CHANGED = "severity_changed"
    ESCALATED = "escalated"
    NOTIFIED = "notified"
    RECOVERY_STARTED = "recovery_started"
    RECOVERY_SUCCEEDED = "recovery_succeeded"
    RECOVERY_FAILED = "recovery_failed"
    RUNBOOK_STEP = "runbook_step"
    COMMENT = "comment"
    MERGED = "merged"


@dataclass(frozen=True, slots=True)
class SeverityPolicy:
    """What a severity means and how fast it must be answered and recovered."""

    severity: Severity
    meaning: str
    response_target: timedelta
    rto: timedelta | None


# Seed 002's table: SEV1 immediate / 30 min, SEV2 < 15 min / 2 h, SEV3 < 2 h / 8 h, SEV4 next
# business day / no RTO. "Immediate" is paged at once and breached after 5 minutes without an
# acknowledgement; "next business day" is 24 hours. Both are configurable.
DEFAULT_SEVERITY_POLICIES: dict[Severity, SeverityPolicy] = {
    Severity.SEV1: SeverityPolicy(
        Severity.SEV1, "full outage or data loss", timedelta(minutes=5), timedelta(minutes=30)
    ),
    Severity.SEV2: SeverityPolicy(
        Severity.SEV2,
        "major degradation or partial outage",
        timedelta(minutes=15),
        timedelta(hours=2),
    ),
    Severity.SEV3: SeverityPolicy(
        Severity.SEV3, "minor degradation with a workaround", timedelta(hours=2), timedelta(hours=8)
    ),
    Severity.SEV4: SeverityPolicy(
        Severity.SEV4, "cosmetic or informational", timedelta(hours=24), None
    ),
}


@dataclass(frozen=True, slots=True)
class IssueCategory:
    """A class of issues with an owner and a response time (seed 000's categories).

    A new issue takes the first category whose non-empty match lists all contain
    the issue's kind, service and source; a category with no match lists is a
    catch-all.
    """

    name: str
    owner: str
    response_target: timedelta
    kinds: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    def matches(self, *, kind: str, service: str, source: str) -> bool:
        return (
            (not self.kinds or kind in self.kinds)
            and (not self.services or service in self.services)
            and (not self.sources or source in self.sources)
        )
