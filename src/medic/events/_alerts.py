"""What the engine asks the alerts to say, and what the alerts report back.

Both live in the kernel so the engine can build a `Notification` and the app can
record a `Delivery` in the tracker without either importing `medic.alerts`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from medic.errors import InvalidInput
from medic.taxonomy import Severity

__all__ = ["AlertLevel", "Delivery", "DeliveryStatus", "Notification", "NotificationKind"]


class AlertLevel(enum.StrEnum):
    """How loudly to tell people; routing maps each level to channels."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @classmethod
    def for_severity(cls, severity: Severity) -> AlertLevel:
        """The default level of a severity: SEV1 pages everyone, SEV4 only logs."""
        return _LEVEL_OF_SEVERITY[Severity(severity)]

    @classmethod
    def parse(cls, value: str) -> AlertLevel:
        try:
            return cls(value.strip().lower())
        except ValueError:
            choices = ", ".join(level.value for level in cls)
            raise ValueError(f"unknown alert level {value!r}; expected one of: {choices}") from None


_LEVEL_OF_SEVERITY = {
    Severity.SEV1: AlertLevel.CRITICAL,
    Severity.SEV2: AlertLevel.HIGH,
    Severity.SEV3: AlertLevel.MEDIUM,
    Severity.SEV4: AlertLevel.LOW,
}


class NotificationKind(enum.StrEnum):
    """Why a notice goes out; PagerDuty maps these onto trigger / acknowledge / resolve."""

    TRIGGERED = "triggered"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Notification:
    """One notice about one incident, in the words every channel and template shares.

    `key` is the incident's dedup key: PagerDuty receives it as `dedup_key`, so
    its own alert follows the medic incident. `repeat` counts re-pages of the same
    level (the escalation ladder's loops), so a deliberate repeat is not taken for
    a duplicate. `timeline` holds short summary lines, oldest first.
    """

    incident_id: int
    title: str
    service: str
    severity: Severity
    level: AlertLevel
    kind: NotificationKind = NotificationKind.TRIGGERED
    status: str = "triggered"
    key: str = ""
    link: str = ""
    started_at: datetime | None = None
    timeline: tuple[str, ...] = ()
    impact: str = ""
    symptoms: tuple[str, ...] = ()
    commander: str = ""
    war_room: str = ""
    repeat: int = 0

    def __post_init__(self) -> None:
        # Accept the plain words ("SEV1", "critical", "resolved") an engine or a
        # config holds, and refuse anything else here rather than in a channel.
        try:
            coerced = {
                "severity": Severity.parse(self.severity),
                "level": AlertLevel.parse(str(self.level)),
                "kind": NotificationKind(str(self.kind).strip().lower()),
            }
        except ValueError as exc:
            raise InvalidInput(f"notification for incident {self.incident_id!r}: {exc}") from None
        for name, value in coerced.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "timeline", _lines(self.timeline, "timeline"))
        object.__setattr__(self, "symptoms", _lines(self.symptoms, "symptoms"))
        if isinstance(self.incident_id, bool) or not isinstance(self.incident_id, int):
            raise InvalidInput(f"incident_id must be an int, got {self.incident_id!r}")
        if not 0 <= self.repeat <= 1_000_000:
            raise InvalidInput(f"repeat must be 0..1000000, got {self.repeat!r}")

    @property
    def dedup_key(self) -> str:
        return self.key or f"medic-incident-{self.incident_id}"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping with stable field names (webhooks and commands receive it)."""
        return {
            "incident_id": self.incident_id,
            "key": self.dedup_key,
            "title": self.title,
            "service": self.service,
            "severity": str(Severity(self.severity)),
            "level": str(self.level),
            "kind": str(self.kind),
            "status": self.status,
            "link": self.link,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "timeline": list(self.timeline),
            "impact": self.impact,
            "symptoms": list(self.symptoms),
            "commander": self.commander,
            "war_room": self.war_room,
            "repeat": self.repeat,
        }


def _lines(value: object, what: str) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidInput(f"{what} is a sequence of lines, not {type(value).__name__}")
    return tuple(str(x) for x in value)


class DeliveryStatus(enum.StrEnum):
    """The outcome of one notification on one channel."""

    SENT = "sent"
    FAILED = "failed"
    RATE_LIMITED = "rate-limited"
    DUPLICATE = "duplicate"
    RECORDED = "recorded"  # no outbound channel: the dashboard shows it


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one notification on one channel; `error` never holds a secret."""

    channel: str
    target: str
    incident_id: int
    level: AlertLevel
    kind: NotificationKind
    status: DeliveryStatus
    at: datetime
    attempts: int = 1
    error: str | None = None
    retryable: bool = False

    @property
    def delivered(self) -> bool:
        """Reached its audience (an outbound channel, or the dashboard record)."""
        return self.status in (DeliveryStatus.SENT, DeliveryStatus.RECORDED)
