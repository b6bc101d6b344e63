"""From a recorded incident to an email and a webhook on real servers, recorded back in the tracker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from medic.alerts import Dispatcher, EmailNotifier, WebhookNotifier
from medic.bus import Bus
from medic.errors import InvalidInput
from medic.events import AlertLevel, Delivery, Notification, NotificationKind, Signal
from medic.taxonomy import Kind, Severity
from medic.testing import FakeClock
from medic.tracker import IncidentView, Tracker

from .conftest import HttpReceiver, SmtpServer


def _notice(incident: IncidentView, lines: list[str], kind: NotificationKind) -> Notification:
    """What the engine will build: only medic.events, no import of medic.alerts."""
    return Notification(
        incident_id=incident.id,
        title=incident.title,
        service=incident.service,
        severity=incident.severity,
        level=AlertLevel.for_severity(incident.severity),
        kind=kind,
        status=incident.status,
        key=incident.dedup_key,
        link=f"https://medic.example.com/incidents/{incident.id}",
        started_at=incident.impact_started_at,
        timeline=tuple(lines),
    )


def test_sev1_incident_reaches_email_and_webhook_and_is_recorded(
    tmp_path: Path, smtp_server: SmtpServer, http_receiver: HttpReceiver
) -> None:
    """A SEV1 incident pages email + webhook with link and timeline; each delivery lands on the incident."""
    clock = FakeClock()
    tracker = Tracker(str(tmp_path / "m.db"), clock=clock)
    result = tracker.record(
        Signal(
            service="checkout",
            message="HTTP 503 on /pay",
            kind=Kind.DEPENDENCY,
            severity=Severity.SEV1,
        )
    )
    assert result.incident_id is not None
    bus = Bus()
    recorded = bus.subscribe(Delivery)
    dispatcher = Dispatcher(
        notifiers=[
            EmailNotifier(
                host="127.0.0.1",
                port=smtp_server.port,
                security="none",
                sender="medic@example.com",
                recipients=["oncall@example.com"],
                clock=clock,
            ),
            WebhookNotifier(url=http_receiver.url, clock=clock),
        ],
        clock=clock,
        bus=bus,
    )
    incident = tracker.incident(result.incident_id)
    lines = [f"{e.at:%H:%M} {e.message}" for e in tracker.timeline(incident.id)]
    deliveries = asyncio.run(
        dispatcher.dispatch(_notice(incident, lines, NotificationKind.TRIGGERED))
    )
    assert sorted(d.channel for d in deliveries) == ["email", "webhook"]
    assert all(d.delivered for d in deliveries)

    link = f"https://medic.example.com/incidents/{incident.id}"
    [mail] = smtp_server.mailbox.messages
    text = mail.get_body(("plain",)).get_content()
    assert link in text
    assert lines[0] in text
    hook = http_receiver.received[0].json()["notification"]
    assert hook["link"] == link
    assert hook["timeline"] == lines
    assert hook["key"] == incident.dedup_key

    for d in recorded.drain():  # what the app will do with each published Delivery
        tracker.record_notification(
            d.incident_id,
            level=d.level,
            channel=d.channel,
            target=d.target,
            kind=d.kind,
            delivered=d.delivered,
            attempts=d.attempts,
            error=d.error,
            at=d.at,
        )
    rows = tracker.notifications(incident.id)
    assert sorted((r["channel"], r["delivered"], r["kind"]) for r in rows) == [
        ("email", True, "triggered"),
        ("webhook", True, "triggered"),
    ]
    assert sum(e.kind == "notified" for e in tracker.timeline(incident.id)) == 2
    tracker.close()


@pytest.mark.parametrize(
    "fields",
    [
        {"severity": "SEV9"},
        {"level": "urgent"},
        {"kind": "exploded"},
        {"timeline": "one string"},
        {"incident_id": "42"},
        {"repeat": -1},
    ],
)
def test_bad_notifications_are_refused_at_construction(fields: dict[str, object]) -> None:
    """A notification with an unknown severity, level or kind, or a bare string timeline, is InvalidInput."""
    base: dict[str, object] = {
        "incident_id": 1,
        "title": "t",
        "service": "s",
        "severity": Severity.SEV2,
        "level": AlertLevel.HIGH,
    }
    with pytest.raises(InvalidInput):
        Notification(**{**base, **fields})  # type: ignore[arg-type]


def test_plain_words_are_accepted() -> None:
    """An engine may pass "sev1", "critical", "resolved" as text; they become the enums."""
    note = Notification(
        incident_id=1,
        title="t",
        service="s",
        severity="sev1",
        level="Critical",
        kind="resolved",  # type: ignore[arg-type]
    )
    assert (note.severity, note.level, note.kind) == (
        Severity.SEV1,
        AlertLevel.CRITICAL,
        NotificationKind.RESOLVED,
    )
    assert note.as_dict()["severity"] == "SEV1"
    assert note.dedup_key == "medic-incident-1"
