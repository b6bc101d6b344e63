"""The dispatcher: route a notification, drop duplicates, rate-limit, retry, record.

Every notification yields one `Delivery` per routed channel, whatever became of
it (sent, failed, rate-limited, duplicate, or only recorded for the dashboard),
and each is published on the bus so the app can write it to the tracker.

Dedupe is per incident + level + kind + repeat and per channel: a channel that
already delivered a notice skips it, while one that failed or was rate-limited
may try again when the engine sends the notice again. Memory is bounded by
`dedupe_capacity` (least recently seen notices are forgotten first).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import replace

from medic.alerts._limits import RateLimit, RetryPolicy
from medic.alerts._notifier import LogNotifier, Notifier
from medic.alerts._routing import ALL, DASHBOARD, Routing
from medic.bus import Bus
from medic.clock import Clock, system_clock
from medic.errors import ConfigError
from medic.events import Delivery, DeliveryStatus, Notification

__all__ = ["Dispatcher"]

_Key = tuple[int, str, str, int]
# Kinds a route may name even when no channel of that kind is configured (the defaults do).
BUILTIN_KINDS = ("email", "webhook", "slack", "pagerduty", "command", "log")
_NO_CHANNEL = "no configured channel matches this level; recorded for the dashboard only"


class _TryAgain(Exception):
    """A retryable failed attempt, carried through `medic.policies.retry` to the next one."""

    def __init__(self, delivery: Delivery) -> None:
        super().__init__(delivery.error or "delivery failed")
        self.delivery = delivery


class Dispatcher:
    """Sends notifications to the channels their level routes to."""

    def __init__(
        self,
        *,
        notifiers: Sequence[Notifier],
        routing: Routing | None = None,
        clock: Clock = system_clock,
        rng: random.Random | None = None,
        retry: RetryPolicy | None = None,
        rate_limit: RateLimit | None = None,
        rate_limits: Mapping[str, RateLimit] | None = None,
        bus: Bus | None = None,
        dedupe_capacity: int = 10_000,
    ) -> None:
        channels = list(notifiers)
        strangers = [repr(n) for n in channels if not isinstance(n, Notifier)]
        if strangers:
            raise ConfigError(f"not notifiers (need name, kind, target and send): {strangers}")
        if not any(n.name == "log" for n in channels):
            channels.append(LogNotifier(clock=clock))
        names = [n.name for n in channels]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes or DASHBOARD in names or ALL in names:
            raise ConfigError(f"channel names must be unique and not '*' or 'dashboard': {dupes}")
        self.routing = routing or Routing()
        self.routing.check(names=names, kinds=[*(n.kind for n in channels), *BUILTIN_KINDS])
        if not 1 <= dedupe_capacity <= 1_000_000:
            raise ConfigError("dedupe_capacity must be 1..1000000")
        self.notifiers: Mapping[str, Notifier] = {n.name: n for n in channels}
        self.retry = retry or RetryPolicy()
        self._clock = clock
        self._rng = rng or random.Random()
        self._bus = bus
        limits = dict(rate_limits or {})
        unknown = sorted(set(limits) - set(self.notifiers))
        if unknown:
            raise ConfigError(f"rate limits name unknown channel(s): {unknown}")
        default = rate_limit or RateLimit()
        self._buckets = {
            name: limits.get(name, default).limiter(clock=clock, name=f"alerts:{name}")
            for name in self.notifiers
        }
        self._retries = {
            name: self.retry.retrying(
                on=_TryAgain, clock=clock, rng=self._rng, name=f"alerts:{name}"
            )
            for name in self.notifiers
        }
        self._capacity = dedupe_capacity
        self._seen: OrderedDict[_Key, set[str]] = OrderedDict()
        self.counts: Counter[DeliveryStatus] = Counter()

    def route(self, notification: Notification) -> list[str]:
        """Channel names the notification's level goes to; empty means the dashboard only."""
        rule = self.routing.routes[notification.level]
        return [
            name
            for name, n in self.notifiers.items()
            if (ALL in rule and n.kind != "log") or name in rule or n.kind in rule
        ]

    async def dispatch(self, notification: Notification) -> list[Delivery]:
        """Deliver to every routed channel at once; never raises for a failed delivery."""
        names = self.route(notification)
        if not names:
            deliveries = [self._record(notification)]
        else:
            key: _Key = (
                notification.incident_id,
                str(notification.level),
                str(notification.kind),
                notification.repeat,
            )
            claimed = self._claim(key, names)
            try:
                results = await asyncio.gather(
                    *(
                        self._deliver(self.notifiers[name], notification)
                        if name in claimed
                        else self._duplicate(self.notifiers[name], notification)
                        for name in names
                    )
                )
            except BaseException:
                self._release(key, claimed)  # cancelled mid-flight: nothing counts as sent
                raise
            deliveries = list(results)
            failed = {d.channel for d in deliveries if d.channel in claimed and not d.delivered}
            self._release(key, failed)
        for delivery in deliveries:
            self.counts[delivery.status] += 1
            if self._bus is not None:
                self._bus.publish(delivery)
        return deliveries

    def _claim(self, key: _Key, names: list[str]) -> set[str]:
        taken = self._seen.setdefault(key, set())
        self._seen.move_to_end(key)
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        claimed = {n for n in names if n not in taken}
        taken |= claimed
        return claimed

    def _release(self, key: _Key, failed: set[str]) -> None:
        taken = self._seen.get(key)
        if taken is not None:
            taken -= failed

    async def _deliver(self, notifier: Notifier, note: Notification) -> Delivery:
        if not self._buckets[notifier.name].acquire():
            return self._skipped(notifier, note, DeliveryStatus.RATE_LIMITED, "rate limited")
        attempts = 0

        async def once() -> Delivery:
            nonlocal attempts
            attempts += 1
            try:
                delivery = replace(
                    await notifier.send(note), attempts=attempts, at=self._clock.now()
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a plugin channel that raises is a failed delivery
                delivery = replace(
                    self._skipped(notifier, note, DeliveryStatus.FAILED, type(exc).__name__),
                    attempts=attempts,
                    retryable=True,
                )
            if delivery.status is DeliveryStatus.FAILED and delivery.retryable:
                raise _TryAgain(delivery)
            return delivery

        try:
            return await self._retries[notifier.name].acall(once)
        except _TryAgain as exc:  # the attempts ran out: the last failure is the record
            return exc.delivery

    def _skipped(
        self, notifier: Notifier, note: Notification, status: DeliveryStatus, error: str | None
    ) -> Delivery:
        return Delivery(
            channel=notifier.name,
            target=notifier.target,
            incident_id=note.incident_id,
            level=note.level,
            kind=note.kind,
            status=status,
            at=self._clock.now(),
            attempts=0,
            error=error,
        )

    async def _duplicate(self, notifier: Notifier, note: Notification) -> Delivery:
        return self._skipped(notifier, note, DeliveryStatus.DUPLICATE, None)

    def _record(self, note: Notification) -> Delivery:
        return Delivery(
            channel=DASHBOARD,
            target=DASHBOARD,
            incident_id=note.incident_id,
            level=note.level,
            kind=note.kind,
            status=DeliveryStatus.RECORDED,
            at=self._clock.now(),
            attempts=0,
            error=None if self.routing.routes[note.level] == (DASHBOARD,) else _NO_CHANNEL,
        )

    def __repr__(self) -> str:
        return f"Dispatcher(channels={list(self.notifiers)}, routing={self.routing!r}, retry={self.retry!r})"
