"""What queries return: plain frozen dataclasses, never ORM rows, safe to keep and to print."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from medic.taxonomy import Severity

__all__ = [
    "ActionItem",
    "EventView",
    "IncidentView",
    "IssueView",
    "Page",
    "PostmortemView",
    "RecordResult",
    "RecoveryAttemptView",
    "TimelineEntry",
]


@dataclass(frozen=True, slots=True)
class RecordResult:
    """Where one recorded signal went. `duplicate` means it was seen before and not stored again."""

    event_id: int | None
    issue_id: int | None
    incident_id: int | None
    duplicate: bool = False
    new_issue: bool = False
    new_incident: bool = False


@dataclass(frozen=True, slots=True)
class IssueView:
    id: int
    service: str
    title: str
    culprit: str
    kind: str
    severity: Severity
    status: str
    substatus: str
    first_seen: datetime
    last_seen: datetime
    times_seen: int
    reported_by: str
    assigned_to: str | None
    description: str | None
    impact: str | None
    root_cause: str | None
    resolution: str | None
    prevention: str | None
    related_files: list[str]
    related_issues: list[int]
    category: str | None
    owner: str | None
    response_target_s: float | None
    self_healing: str
    resolved_at: datetime | None
    first_release: str | None
    last_release: str | None
    grouping_variant: str
    grouping_inputs: dict[str, Any]
    merged_into: int | None
    hashes: list[dict[str, Any]] = field(default_factory=list)
    incident_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class IncidentView:
    id: int
    title: str
    summary: str | None
    service: str
    severity: Severity
    status: str
    dedup_key: str
    impact_started_at: datetime
    detected_at: datetime
    triggered_at: datetime
    acknowledged_at: datetime | None
    mitigated_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    escalation_level: int
    next_escalation_at: datetime | None
    resolution_kind: str | None
    resolution_reason: str | None
    commander: str | None
    roles: dict[str, str]
    related: list[int]
    merged_into: int | None
    exclude_from_metrics: bool
    signal_count: int
    last_signal_at: datetime | None
    escalation_loop: int = 0
    issue_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    id: int
    incident_id: int | None
    issue_id: int | None
    at: datetime
    actor_kind: str
    actor: str
    kind: str
    message: str
    details: dict[str, Any]
    event_id: int | None


@dataclass(frozen=True, slots=True)
class EventView:
    id: int
    source: str
    external_id: str | None
    received_at: datetime
    occurred_at: datetime
    service: str
    kind: str
    severity: Severity
    action: str
    message: str
    fingerprint: str
    dedup_key: str | None
    issue_id: int
    incident_id: int | None


@dataclass(frozen=True, slots=True)
class RecoveryAttemptView:
    id: int
    incident_id: int
    action: str
    attempt: int
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None
    error: str | None
    evidence: dict[str, Any]

    @property
    def duration_s(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class ActionItem:
    id: int
    incident_id: int
    text: str
    type: str
    owner: str | None
    tracking_url: str | None
    status: str


@dataclass(frozen=True, slots=True)
class PostmortemView:
    incident_id: int
    status: str
    authors: list[str]
    summary: str | None
    impact: str | None
    root_causes: str | None
    trigger: str | None
    resolution: str | None
    detection: str | None
    went_well: str | None
    went_wrong: str | None
    got_lucky: str | None
    supporting_information: str | None
    action_items: list[ActionItem]


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list; `next_cursor` fetches the next (keyset pagination, stable under inserts)."""

    items: list[T]
    next_cursor: int | None
