"""Notifiers: tell people about incidents over webhooks, Slack, email, PagerDuty or a command.

Build `Notification`s (from `medic.events`), hand them to a `Dispatcher`, and
subscribe to `Delivery` events on the bus to record what became of each one.
"""

from medic.alerts._command import CommandNotifier
from medic.alerts._dispatcher import Dispatcher
from medic.alerts._email import EmailNotifier, SmtpSecurity
from medic.alerts._http import PAGERDUTY_URL, PagerDutyNotifier, SlackNotifier, WebhookNotifier
from medic.alerts._limits import RateLimit, RetryPolicy
from medic.alerts._notifier import DeliveryFailed, LogNotifier, Notifier
from medic.alerts._routing import ALL, DASHBOARD, DEFAULT_ROUTES, Routing
from medic.alerts._secrets import Secret, redact
from medic.alerts._templates import FIELDS, MessageTemplate, RenderedMessage, Templates

__all__ = [
    "ALL",
    "DASHBOARD",
    "DEFAULT_ROUTES",
    "FIELDS",
    "PAGERDUTY_URL",
    "CommandNotifier",
    "DeliveryFailed",
    "Dispatcher",
    "EmailNotifier",
    "LogNotifier",
    "MessageTemplate",
    "Notifier",
    "PagerDutyNotifier",
    "RateLimit",
    "RenderedMessage",
    "RetryPolicy",
    "Routing",
    "Secret",
    "SlackNotifier",
    "SmtpSecurity",
    "Templates",
    "WebhookNotifier",
    "redact",
]
