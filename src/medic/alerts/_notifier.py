"""The one shape every channel has, and the boundary where channel errors become records.

A channel makes one attempt per `send` and reports it as a `Delivery`; retries,
rate limits and dedupe belong to the `Dispatcher`, so a third-party notifier
only has to say whether its failure is worth retrying.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from medic.alerts._secrets import Secret, redact
from medic.alerts._templates import one_line
from medic.clock import Clock, system_clock
from medic.errors import ConfigError
from medic.events import Delivery, DeliveryStatus, Notification
from medic.taxonomy import Severity

__all__ = ["DeliveryFailed", "LogNotifier", "Notifier", "attempt", "display_url", "summary"]

_MAX_ERROR = 1000


@runtime_checkable
class Notifier(Protocol):
    """A channel: `name` is unique per dispatcher, `kind` groups channels in routing rules,
    `target` says where notices go without revealing any secret."""

    name: str
    kind: str
    target: str

    async def send(self, notification: Notification) -> Delivery:
        """Make one delivery attempt; never raises for a delivery failure."""
        ...


class DeliveryFailed(Exception):
    """One attempt failed; `retryable` says whether another attempt may succeed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def display_url(url: str, *, path: bool = True) -> str:
    """`url` without credentials, query or fragment (and without its path when that is secret)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path if path else ''}"


def summary(note: Notification) -> str:
    """One line for chat and logs: ``[SEV1] api: title (triggered)``."""
    sev = Severity(note.severity)
    return f"[{sev}] {one_line(note.service)}: {one_line(note.title)} ({note.kind})"


async def attempt(
    channel: Notifier,
    note: Notification,
    call: Callable[[], Awaitable[None]],
    *,
    clock: Clock,
    secrets: Iterable[Secret | str | None] = (),
) -> Delivery:
    """Run one attempt and describe it; secrets are scrubbed from every error text."""
    status, error, retryable = DeliveryStatus.SENT, None, False
    try:
        await call()
    except DeliveryFailed as exc:
        status, error, retryable = DeliveryStatus.FAILED, str(exc), exc.retryable
    except ConfigError as exc:  # a secret's variable is unset: fixing it is the operator's job
        status, error = DeliveryStatus.FAILED, str(exc)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken channel becomes a failed record, not a crash
        status, error, retryable = DeliveryStatus.FAILED, f"{type(exc).__name__}: {exc}", True
    if error is not None:
        error = redact(error, secrets)[:_MAX_ERROR]
    return Delivery(
        channel=channel.name,
        target=channel.target,
        incident_id=note.incident_id,
        level=note.level,
        kind=note.kind,
        status=status,
        at=clock.now(),
        error=error,
        retryable=retryable,
    )


class LogNotifier:
    """Writes a one-line notice to the `medic.alerts` logger: the `low` level's channel."""

    kind = "log"

    def __init__(
        self, *, name: str = "log", logger: str = "medic.alerts", clock: Clock = system_clock
    ) -> None:
        self.name = name
        self.target = f"logger:{logger}"
        self._logger = logging.getLogger(logger)
        self._clock = clock

    async def send(self, notification: Notification) -> Delivery:
        async def call() -> None:
            loud = notification.level in ("critical", "high")
            self._logger.log(logging.WARNING if loud else logging.INFO, "%s", summary(notification))

        return await attempt(self, notification, call, clock=self._clock)

    def __repr__(self) -> str:
        return f"LogNotifier(name={self.name!r}, target={self.target!r})"
