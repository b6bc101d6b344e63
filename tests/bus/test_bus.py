"""The event bus delivers by type, stays bounded and wakes async consumers from threads."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import pytest

from medic.bus import Bus


@dataclass(frozen=True)
class A:
    n: int


@dataclass(frozen=True)
class B:
    n: int


def test_subscribers_get_only_the_types_they_asked_for() -> None:
    """A subscription for A never sees B; an untyped one sees both."""
    bus = Bus()
    only_a, every = bus.subscribe(A), bus.subscribe()
    bus.publish(A(1))
    bus.publish(B(2))
    assert only_a.drain() == [A(1)]
    assert every.drain() == [A(1), B(2)]


def test_a_slow_subscriber_is_bounded_and_counts_what_it_dropped() -> None:
    """Memory stays at maxsize; the oldest events go first and are counted."""
    bus = Bus()
    sub = bus.subscribe(A, maxsize=3)
    for i in range(10):
        bus.publish(A(i))
    assert sub.drain() == [A(7), A(8), A(9)]
    assert sub.dropped == 7


def test_drop_newest_keeps_the_first_events() -> None:
    """With drop-newest the buffer keeps what arrived first."""
    sub = (bus := Bus()).subscribe(A, maxsize=2, overflow="drop-newest")
    for i in range(5):
        bus.publish(A(i))
    assert sub.drain() == [A(0), A(1)]
    assert sub.dropped == 3


def test_async_consumer_is_woken_by_a_publishing_thread() -> None:
    """An event published from another thread reaches an `async for` on the loop."""

    async def main() -> list[A]:
        bus = Bus()
        sub = bus.subscribe(A)
        got: list[A] = []

        async def consume() -> None:
            async for event in sub:
                got.append(event)
                if len(got) == 3:
                    return

        task = asyncio.create_task(consume())
        await asyncio.sleep(0)
        threading.Thread(target=lambda: [bus.publish(A(i)) for i in range(3)]).start()
        await asyncio.wait_for(task, 5)
        return got

    assert asyncio.run(main()) == [A(0), A(1), A(2)]


def test_apublish_waits_for_room() -> None:
    """An async producer blocks on a full subscription until the consumer takes one."""

    async def main() -> list[int]:
        bus = Bus()
        sub = bus.subscribe(A, maxsize=1)
        await bus.apublish(A(0))
        producer = asyncio.create_task(bus.apublish(A(1)))
        await asyncio.sleep(0.01)
        assert not producer.done()
        first = await anext(sub)
        await asyncio.wait_for(producer, 5)
        second = await anext(sub)
        return [first.n, second.n]

    assert asyncio.run(main()) == [0, 1]


def test_closed_subscription_ends_iteration_and_gets_nothing_more() -> None:
    """After close() the consumer stops and later events are not buffered."""
    bus = Bus()
    sub = bus.subscribe(A)
    sub.close()
    bus.publish(A(1))
    assert len(sub) == 0
    with pytest.raises(StopIteration):
        sub.get(timeout=0.1)


def test_a_raising_listener_is_removed_and_publishing_goes_on() -> None:
    """A broken observer never breaks the publisher."""
    bus = Bus()
    seen: list[object] = []

    def bad(event: object) -> None:
        raise RuntimeError("broken")

    bus.listen(bad)
    bus.listen(seen.append)
    bus.publish(A(1))
    bus.publish(A(2))
    assert seen == [A(1), A(2)]
