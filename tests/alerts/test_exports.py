"""The public surface of medic.alerts changes only on purpose."""

from __future__ import annotations

import medic.alerts
import medic.events


def test_alerts_public_names() -> None:
    """Adding or removing a public name must update this list (and docs/alerts.md)."""
    assert sorted(medic.alerts.__all__) == sorted(
        [
            "ALL", "DASHBOARD", "DEFAULT_ROUTES", "FIELDS", "PAGERDUTY_URL", "CommandNotifier",
            "DeliveryFailed", "Dispatcher", "EmailNotifier", "LogNotifier", "MessageTemplate",
            "Notifier", "PagerDutyNotifier", "RateLimit", "RenderedMessage", "RetryPolicy",
            "Routing", "Secret", "SlackNotifier", "SmtpSecurity", "Templates", "WebhookNotifier",
            "redact",
        ]
    )  # fmt: skip
    for name in medic.alerts.__all__:
        assert getattr(medic.alerts, name) is not None


def test_alert_events_live_in_the_kernel() -> None:
    """The engine builds notifications and reads deliveries from medic.events alone."""
    for name in ("AlertLevel", "Delivery", "DeliveryStatus", "Notification", "NotificationKind"):
        assert name in medic.events.__all__
        assert getattr(medic.events, name).__module__ == "medic.events._alerts"


def test_builtin_channels_satisfy_the_protocol() -> None:
    """Every built-in channel is a Notifier by the runtime-checkable protocol."""
    from medic.alerts import Secret

    channels = [
        medic.alerts.WebhookNotifier(url="http://127.0.0.1:9/x"),
        medic.alerts.SlackNotifier(url=Secret("X_SLACK")),
        medic.alerts.PagerDutyNotifier(routing_key=Secret("X_PD")),
        medic.alerts.CommandNotifier(argv=["true"]),
        medic.alerts.EmailNotifier(host="h", sender="a@b.c", recipients=["d@e.f"]),
    ]
    assert all(isinstance(c, medic.alerts.Notifier) for c in channels)
    assert len({c.kind for c in channels}) == len(channels)
