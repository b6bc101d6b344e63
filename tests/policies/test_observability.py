"""Event capture, the policy test mode, Prometheus counters and the public surface."""

from __future__ import annotations

import pytest

import medic.policies
from medic.bus import Bus
from medic.events import PolicyEvent, RetryAttempted
from medic.policies import CircuitBreaker, constant, retry
from medic.testing import EventCapture, capture_events, policy_test_mode


def test_capture_attached_to_a_bus_is_bounded_and_detaches() -> None:
    """capture_events records bus events in the block, keeps at most maxsize, then stops."""
    bus = Bus()
    with capture_events(bus, maxsize=3) as capture:
        for i in range(5):
            bus.publish(PolicyEvent(f"p{i}"))
    bus.publish(PolicyEvent("after"))
    assert [e.policy for e in capture.events] == ["p2", "p3", "p4"]
    assert len(capture) == 3
    assert "3 events" in repr(capture)


def test_policy_test_mode_restores_the_previous_state() -> None:
    """Leaving the block (even by an error) turns waits back on."""
    from medic.policies._core import test_mode

    seen: list[tuple[bool, int | None]] = []

    def inside() -> None:
        with policy_test_mode(attempts=1):
            seen.append((test_mode.no_waits, test_mode.attempts))
            raise RuntimeError

    with pytest.raises(RuntimeError):
        inside()
    assert seen == [(True, 1)]
    assert not test_mode.no_waits
    assert test_mode.attempts is None
    with pytest.raises(ValueError, match="attempts"), policy_test_mode(attempts=0):
        pass


def test_pytest_fixtures_from_the_plugin(
    no_policy_waits: None, policy_events: EventCapture
) -> None:
    """The medic pytest plugin offers no_policy_waits and policy_events."""
    calls = 0

    @retry(on=ConnectionError, attempts=2, backoff=constant(60), listeners=(policy_events,))
    def once() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError
        return "ok"

    assert once() == "ok"
    assert policy_events.of_type(RetryAttempted)[0].wait == 60


def test_prometheus_counts_policy_events() -> None:
    """With prometheus-client installed, events are counted per policy and event type."""
    prometheus_client = pytest.importorskip("prometheus_client")

    def value() -> float:
        sample = prometheus_client.REGISTRY.get_sample_value(
            "medic_policy_events_total", {"policy": "metered", "event": "RetryAttempted"}
        )
        return sample or 0.0

    before = value()
    policy = retry(on=ConnectionError, attempts=3, backoff=constant(0), name="metered")
    with pytest.raises(ConnectionError):
        policy(lambda: (_ for _ in ()).throw(ConnectionError()))()
    assert value() - before == 3


def test_public_surface() -> None:
    """The supported names of medic.policies; a change here is a deliberate API change."""
    assert set(medic.policies.__all__) >= {
        "retry",
        "CircuitBreaker",
        "timeout",
        "fallback",
        "failover",
        "Bulkhead",
        "RateLimiter",
        "BoundedQueue",
        "pipeline",
        "SharedCircuitBreaker",
        "SharedRateLimiter",
    }
    for name in medic.policies.__all__:
        assert getattr(medic.policies, name) is not None
    assert "CircuitBreaker(name='b'" in repr(CircuitBreaker(name="b"))


def test_import_policies_stays_light() -> None:
    """`import medic.policies` loads no client library, no Prometheus and not the bus."""
    import subprocess
    import sys

    code = (
        "import sys, medic.policies;"
        "print([m for m in ('redis', 'prometheus_client', 'httpx', 'sqlalchemy', 'medic.bus') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
