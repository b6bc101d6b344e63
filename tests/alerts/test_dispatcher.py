"""The dispatcher: routing by level, retries on the fake clock, failures recorded, rate limit, dedupe."""

from __future__ import annotations

import asyncio
import random

import pytest

from medic.alerts import (
    CommandNotifier,
    Dispatcher,
    RateLimit,
    RetryPolicy,
    Routing,
    WebhookNotifier,
)
from medic.bus import Bus
from medic.errors import ConfigError
from medic.events import AlertLevel, Delivery, DeliveryStatus, Notification, NotificationKind
from medic.testing import FakeClock, policy_test_mode

from .conftest import HttpReceiver, make_note


class Channel:
    """A third-party style notifier that records what it was asked to send."""

    def __init__(self, name: str, kind: str) -> None:
        self.name, self.kind, self.target = name, kind, f"test:{name}"
        self.sent: list[Notification] = []

    async def send(self, notification: Notification) -> Delivery:
        self.sent.append(notification)
        return Delivery(
            channel=self.name,
            target=self.target,
            incident_id=notification.incident_id,
            level=notification.level,
            kind=notification.kind,
            status=DeliveryStatus.SENT,
            at=FakeClock().now(),
        )


def _channels() -> dict[str, Channel]:
    return {
        name: Channel(name, kind)
        for name, kind in [
            ("mail", "email"),
            ("hook", "webhook"),
            ("chat", "slack"),
            ("pager", "pagerduty"),
        ]
    }


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (AlertLevel.CRITICAL, {"mail", "hook", "chat", "pager"}),
        (AlertLevel.HIGH, {"mail", "hook"}),
        (AlertLevel.MEDIUM, set()),
        (AlertLevel.LOW, set()),
    ],
)
def test_default_routing_by_level(level: AlertLevel, expected: set[str]) -> None:
    """critical → every channel, high → email + webhook, medium → dashboard only, low → log."""
    chans = _channels()
    dispatcher = Dispatcher(notifiers=list(chans.values()), clock=FakeClock())
    deliveries = asyncio.run(dispatcher.dispatch(make_note(level=level)))
    assert {name for name, c in chans.items() if c.sent} == expected
    channels = {d.channel for d in deliveries}
    if level is AlertLevel.MEDIUM:
        assert [(d.channel, d.status) for d in deliveries] == [
            ("dashboard", DeliveryStatus.RECORDED)
        ]
        assert deliveries[0].error is None
    elif level is AlertLevel.LOW:
        assert channels == {"log"}
    else:
        assert channels == expected
        assert all(d.status is DeliveryStatus.SENT and d.attempts == 1 for d in deliveries)


def test_low_level_writes_the_log(caplog: pytest.LogCaptureFixture) -> None:
    """The `low` route writes one line to the medic.alerts logger."""
    dispatcher = Dispatcher(notifiers=[], clock=FakeClock())
    with caplog.at_level("INFO", logger="medic.alerts"):
        asyncio.run(dispatcher.dispatch(make_note(level=AlertLevel.LOW)))
    assert [r.getMessage() for r in caplog.records] == [
        "[SEV1] checkout: checkout returns 503 (triggered)"
    ]


def test_custom_routing_by_name_and_kind() -> None:
    """Routes may name one channel or a kind; unset levels keep their default."""
    chans = _channels()
    routing = Routing.from_mapping({"high": ["pager", "slack"], "medium": ["mail"]})
    dispatcher = Dispatcher(notifiers=list(chans.values()), routing=routing, clock=FakeClock())
    asyncio.run(dispatcher.dispatch(make_note(level=AlertLevel.HIGH)))
    asyncio.run(dispatcher.dispatch(make_note(level=AlertLevel.MEDIUM)))
    assert {n: len(c.sent) for n, c in chans.items()} == {
        "mail": 1,
        "hook": 0,
        "chat": 1,
        "pager": 1,
    }
    assert routing.routes[AlertLevel.CRITICAL] == ("*",)


def test_a_level_with_no_configured_channel_is_recorded_not_lost() -> None:
    """high routes to email + webhook; with neither configured the notice is recorded with a reason."""
    dispatcher = Dispatcher(notifiers=[Channel("pager", "pagerduty")], clock=FakeClock())
    [delivery] = asyncio.run(dispatcher.dispatch(make_note(level=AlertLevel.HIGH)))
    assert delivery.status is DeliveryStatus.RECORDED
    assert delivery.error is not None
    assert "no configured channel" in delivery.error


@pytest.mark.parametrize("routes", [{"high": ["nope"]}, {"urgent": ["*"]}, {"high": "email"}])
def test_bad_routing_is_a_config_error(routes: dict[str, object]) -> None:
    """Unknown channels, unknown levels and a bare string are refused with the key path."""
    with pytest.raises(ConfigError, match=r"alerts\.routes\."):
        Dispatcher(notifiers=[], routing=Routing.from_mapping(routes), clock=FakeClock())  # type: ignore[arg-type]


def test_duplicate_channel_names_are_refused() -> None:
    """Two channels with one name would make deliveries ambiguous."""
    with pytest.raises(ConfigError):
        Dispatcher(notifiers=[Channel("a", "email"), Channel("a", "webhook")])


def test_fails_twice_then_succeeds_with_backoff(http_receiver: HttpReceiver) -> None:
    """A receiver answering 503, 503, 202 gets three attempts, waiting 1s then 2s on the clock."""
    http_receiver.statuses.extend([503, 503])
    clock = FakeClock()
    dispatcher = Dispatcher(
        notifiers=[WebhookNotifier(url=http_receiver.url, clock=clock)],
        retry=RetryPolicy(attempts=3, initial=1.0, factor=2.0, jitter=0.0),
        clock=clock,
    )
    [delivery] = asyncio.run(dispatcher.dispatch(make_note()))
    assert delivery.status is DeliveryStatus.SENT
    assert delivery.attempts == 3
    assert len(http_receiver.received) == 3
    assert [s for s in clock.sleeps if s > 0] == [1.0, 2.0]


def test_always_failing_receiver_is_recorded_failed(http_receiver: HttpReceiver) -> None:
    """Every attempt fails: one FAILED delivery with the attempts and the last error, on the bus too."""
    http_receiver.default = 500
    clock, bus = FakeClock(), Bus()
    sub = bus.subscribe(Delivery)
    dispatcher = Dispatcher(
        notifiers=[WebhookNotifier(url=http_receiver.url, clock=clock)],
        retry=RetryPolicy(attempts=4, initial=0.5),
        clock=clock,
        rng=random.Random(7),
        bus=bus,
    )
    [delivery] = asyncio.run(dispatcher.dispatch(make_note()))
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.attempts == 4 == len(http_receiver.received)
    assert delivery.error is not None
    assert "HTTP 500" in delivery.error
    assert sub.drain() == [delivery]
    waits = [s for s in clock.sleeps if s > 0]
    assert len(waits) == 3
    assert all(0.9 * b <= w <= b for w, b in zip(waits, [0.5, 1.0, 2.0], strict=True))


def test_a_zero_wait_retries_at_once_without_sleeping(http_receiver: HttpReceiver) -> None:
    """initial = 0: the retries of medic.policies.retry run back to back, no sleep call at all."""
    http_receiver.statuses.extend([503, 503])
    clock = FakeClock()
    dispatcher = Dispatcher(
        notifiers=[WebhookNotifier(url=http_receiver.url, clock=clock)],
        retry=RetryPolicy(attempts=3, initial=0.0),
        clock=clock,
    )
    [delivery] = asyncio.run(dispatcher.dispatch(make_note()))
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 3)
    assert clock.sleeps == []


def test_the_policies_test_mode_governs_delivery_retries(http_receiver: HttpReceiver) -> None:
    """Retries run on medic.policies: its test mode skips the waits and caps the attempts."""
    http_receiver.default = 503
    clock = FakeClock()
    dispatcher = Dispatcher(
        notifiers=[WebhookNotifier(url=http_receiver.url, clock=clock)],
        retry=RetryPolicy(attempts=5, initial=60.0),
        clock=clock,
    )
    with policy_test_mode(attempts=2):
        [delivery] = asyncio.run(dispatcher.dispatch(make_note()))
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 2)
    assert "HTTP 503" in (delivery.error or "")
    assert clock.sleeps == []


def test_permanent_failure_is_not_retried(http_receiver: HttpReceiver) -> None:
    """A 400 is final after one attempt."""
    http_receiver.default = 400
    clock = FakeClock()
    dispatcher = Dispatcher(notifiers=[WebhookNotifier(url=http_receiver.url)], clock=clock)
    [delivery] = asyncio.run(dispatcher.dispatch(make_note()))
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 1)
    assert len(http_receiver.received) == 1


def test_rate_limit_per_channel_refills_with_time() -> None:
    """A burst of 2 then 1/minute: the third incident is rate-limited, a minute later it passes."""
    clock = FakeClock()
    limited, free = Channel("hook", "webhook"), Channel("mail", "email")
    dispatcher = Dispatcher(
        notifiers=[limited, free],
        rate_limits={"hook": RateLimit(per_minute=1, burst=2)},
        rate_limit=RateLimit(per_minute=600, burst=100),
        clock=clock,
    )

    def send(incident: int) -> dict[str, DeliveryStatus]:
        note = make_note(incident_id=incident, level=AlertLevel.HIGH)
        return {d.channel: d.status for d in asyncio.run(dispatcher.dispatch(note))}

    assert send(1)["hook"] is DeliveryStatus.SENT
    assert send(2)["hook"] is DeliveryStatus.SENT
    third = send(3)
    assert third == {"hook": DeliveryStatus.RATE_LIMITED, "mail": DeliveryStatus.SENT}
    clock.advance(60)
    assert send(3)["hook"] is DeliveryStatus.SENT  # the limited one may go once there is room
    assert len(free.sent) == 3  # mail already had incident 3: a duplicate, not resent


def test_dedupe_per_incident_level_kind_and_repeat() -> None:
    """The same notice twice sends once; another kind, level or repeat sends again."""
    chan = Channel("hook", "webhook")
    dispatcher = Dispatcher(
        notifiers=[chan],
        routing=Routing.from_mapping({"critical": ["hook"], "high": ["hook"]}),
        clock=FakeClock(),
    )
    notes = [
        make_note(),
        make_note(),
        make_note(kind=NotificationKind.ESCALATED),
        make_note(level=AlertLevel.HIGH),
        make_note(repeat=1),
        make_note(incident_id=43),
    ]
    statuses = [asyncio.run(dispatcher.dispatch(n))[0].status for n in notes]
    assert statuses == [DeliveryStatus.SENT, DeliveryStatus.DUPLICATE] + [DeliveryStatus.SENT] * 4
    assert len(chan.sent) == 5


def test_concurrent_duplicates_send_once() -> None:
    """Two dispatches of one notice at the same time still reach the channel once."""
    chan = Channel("hook", "webhook")
    dispatcher = Dispatcher(notifiers=[chan], clock=FakeClock())

    async def both() -> list[list[Delivery]]:
        return list(
            await asyncio.gather(dispatcher.dispatch(make_note()), dispatcher.dispatch(make_note()))
        )

    statuses = sorted(d[0].status for d in asyncio.run(both()))
    assert statuses == [DeliveryStatus.DUPLICATE, DeliveryStatus.SENT]
    assert len(chan.sent) == 1


def test_failed_channel_may_retry_later_while_sent_one_stays_deduped(
    http_receiver: HttpReceiver,
) -> None:
    """Sending the notice again retries only the channel that failed."""
    http_receiver.default = 400
    ok = Channel("mail", "email")
    dispatcher = Dispatcher(
        notifiers=[ok, WebhookNotifier(url=http_receiver.url)], clock=FakeClock()
    )
    first = {d.channel: d.status for d in asyncio.run(dispatcher.dispatch(make_note()))}
    http_receiver.default = 202
    second = {d.channel: d.status for d in asyncio.run(dispatcher.dispatch(make_note()))}
    assert first == {"mail": DeliveryStatus.SENT, "webhook": DeliveryStatus.FAILED}
    assert second == {"mail": DeliveryStatus.DUPLICATE, "webhook": DeliveryStatus.SENT}


def test_dedupe_memory_is_bounded() -> None:
    """Past its capacity the dispatcher forgets the oldest notices instead of growing."""
    chan = Channel("hook", "webhook")
    dispatcher = Dispatcher(
        notifiers=[chan],
        dedupe_capacity=3,
        rate_limit=RateLimit(per_minute=1e6, burst=1000),
        clock=FakeClock(),
    )
    for incident in range(10):
        asyncio.run(dispatcher.dispatch(make_note(incident_id=incident)))
    assert len(dispatcher._seen) == 3
    asyncio.run(dispatcher.dispatch(make_note(incident_id=0)))  # forgotten, so sent again
    assert len(chan.sent) == 11


def test_a_raising_plugin_channel_becomes_a_failed_delivery() -> None:
    """A third-party notifier that raises is retried and then recorded failed; others still send."""

    class Broken(Channel):
        async def send(self, notification: Notification) -> Delivery:
            raise RuntimeError("kaput")

    ok = Channel("mail", "email")
    clock = FakeClock()
    dispatcher = Dispatcher(notifiers=[Broken("hook", "webhook"), ok], clock=clock)
    result = {d.channel: d for d in asyncio.run(dispatcher.dispatch(make_note()))}
    assert result["hook"].status is DeliveryStatus.FAILED
    assert result["hook"].attempts == 3
    assert result["hook"].error == "RuntimeError"
    assert result["mail"].status is DeliveryStatus.SENT
    assert dispatcher.counts[DeliveryStatus.FAILED] == 1


def test_command_channel_in_a_dispatch(tmp_path: object) -> None:
    """The command channel runs through the dispatcher like any other channel."""
    import sys

    cmd = CommandNotifier(argv=[sys.executable, "-c", "import sys; sys.stdin.read()"])
    dispatcher = Dispatcher(notifiers=[cmd], clock=FakeClock())
    [delivery] = asyncio.run(dispatcher.dispatch(make_note()))
    assert delivery.status is DeliveryStatus.SENT
    assert delivery.channel == "command"


def test_cancelled_dispatch_does_not_count_as_sent() -> None:
    """A dispatch cancelled mid-delivery leaves the notice free to be sent again."""

    class Slow(Channel):
        async def send(self, notification: Notification) -> Delivery:
            self.sent.append(notification)
            await asyncio.sleep(30)
            return await super().send(notification)

    slow = Slow("hook", "webhook")
    dispatcher = Dispatcher(notifiers=[slow], clock=FakeClock())

    async def run() -> None:
        task = asyncio.create_task(dispatcher.dispatch(make_note()))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert dispatcher._seen[(42, "critical", "triggered", 0)] == set()


def test_objects_that_are_not_notifiers_are_refused() -> None:
    """A channel without name, kind, target and send is a ConfigError at construction."""
    with pytest.raises(ConfigError, match="not notifiers"):
        Dispatcher(notifiers=[object()])  # type: ignore[list-item]
