"""Redis-shared breaker and limiter state, against the real Redis and real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medic.policies import (
    CircuitOpen,
    SharedCircuitBreaker,
    SharedRateLimiter,
    SharedStateUnavailable,
)
from medic.testing import EventCapture

redis = pytest.importorskip("redis")
WORKER = Path(__file__).with_name("shared_worker.py")
pytestmark = pytest.mark.redis


@pytest.fixture
def client(redis_url: str) -> Iterator[Any]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


@pytest.fixture
def key(client: Any) -> Iterator[str]:
    name = f"medic-test:{uuid.uuid4().hex}"
    yield name
    for k in client.scan_iter(f"{name}*"):
        client.delete(k)


class Phase:
    """Worker processes started and ready (imports done), released together by `go`."""

    def __init__(self, client: Any, redis_url: str, key: str, name: str, modes: list[str]) -> None:
        self.client, self.key, self.name = client, key, name
        self.procs = [
            subprocess.Popen(
                [sys.executable, str(WORKER), redis_url, key, mode, name],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for mode in modes
        ]
        deadline = time.monotonic() + 60
        while int(client.get(f"{key}:{name}:ready") or 0) < len(modes):
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.02)

    def go(self) -> list[dict[str, Any]]:
        self.client.rpush(f"{self.key}:{self.name}:go", *["go"] * len(self.procs))
        results = []
        for proc in self.procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results


@pytest.mark.slow
def test_one_breaker_shared_by_three_processes(client: Any, redis_url: str, key: str) -> None:
    """Process A trips it; B and C are refused without calling; exactly one half-open trial runs."""
    trip = Phase(client, redis_url, key, "trip", ["fail"])
    probe = Phase(client, redis_url, key, "probe", ["probe", "probe"])
    trial = Phase(client, redis_url, key, "trial", ["trial", "trial", "trial"])
    (tripper,) = trip.go()
    opened_at = time.monotonic()
    assert tripper["errors"] == ["ConnectionError"] * 3
    probes = probe.go()
    assert time.monotonic() - opened_at < 1.0, "too slow to observe the open period"
    assert [p["result"] for p in probes] == ["rejected", "rejected"]
    assert sum(p["ran"] for p in probes) == 0
    time.sleep(max(0.0, opened_at + 1.1 - time.monotonic()))  # the open period (1 s) ends
    trials = trial.go()
    assert sorted(t["result"] for t in trials) == ["ok", "rejected", "rejected"]
    assert sum(t["ran"] for t in trials) == 1
    assert client.hget(key, "state") == b"closed"


@pytest.mark.slow
def test_shared_limiter_admits_exactly_the_limit_across_processes(
    client: Any, redis_url: str, key: str
) -> None:
    """Three processes × 10 tries against a limit of 10: exactly 10 admitted in total."""
    results = Phase(client, redis_url, key, "limit", ["limit", "limit", "limit"]).go()
    assert sum(r["admitted"] for r in results) == 10


def test_shared_limiter_charges_the_cost(client: Any, key: str) -> None:
    """A call can take several tokens: a burst of 10 admits 4 + 4 + 2, then nothing."""
    limiter = SharedRateLimiter(client, prefix=key, limit=10, period=60)
    assert limiter.acquire("k", cost=4) == 0.0
    assert limiter.acquire("k", cost=4) == 0.0
    assert limiter.acquire("k", cost=4) > 0  # only 2 left: refused, and nothing taken
    assert limiter.acquire("k", cost=2) == 0.0
    wait = limiter.acquire("k")
    assert 5.9 <= wait <= 6.0  # one token comes back every 6 s


def test_in_process_shared_breaker_events_and_success_path(client: Any, key: str) -> None:
    """Transitions come back as events; a success while closed with no failures is one call."""
    capture = EventCapture()
    breaker = SharedCircuitBreaker(
        client, key=key, failure_threshold=2, reset_timeout=0.2, listeners=(capture,)
    )

    @breaker
    def down() -> None:
        raise ConnectionError

    @breaker
    def up() -> str:
        return "ok"

    assert up() == "ok"
    for _ in range(2):
        with pytest.raises(ConnectionError):
            down()
    with pytest.raises(CircuitOpen) as caught:
        up()
    assert 0 < (caught.value.retry_after or 0) <= 0.2
    time.sleep(0.25)
    assert up() == "ok"
    assert capture.names() == [
        "CircuitOpened",
        "CallRejected",
        "CircuitHalfOpened",
        "CircuitClosed",
    ]
    assert breaker.state() == "closed"


async def test_async_client_guards_coroutines(redis_url: str, key: str) -> None:
    """redis.asyncio clients guard async functions without blocking the loop."""
    aclient = redis.asyncio.Redis.from_url(redis_url)
    breaker = SharedCircuitBreaker(aclient, key=key, failure_threshold=1, reset_timeout=30)

    @breaker
    async def down() -> None:
        raise ConnectionError

    with pytest.raises(ConnectionError):
        await down()
    with pytest.raises(CircuitOpen):
        await down()
    limiter = SharedRateLimiter(aclient, prefix=key, limit=1, period=60)
    assert await limiter.aacquire("x") == 0.0
    assert await limiter.aacquire("x") > 0
    await aclient.delete(key, f"{key}:x")
    await aclient.aclose()


def test_scripts_are_sent_again_when_the_server_does_not_know_them(client: Any, key: str) -> None:
    """A server that forgot a script (restart, SCRIPT FLUSH) answers NOSCRIPT; the call still works.

    The unknown script is simulated with a SHA the server never saw: flushing the
    scripts of a Redis that other suites share would break them.
    """
    limiter = SharedRateLimiter(client, prefix=key, limit=2, period=60)
    breaker = SharedCircuitBreaker(client, key=key, fail_open=False)
    limiter._script.sha = breaker._script.sha = "0" * 40
    assert limiter.acquire("a") == 0.0
    assert breaker(lambda: "ran")() == "ran"


def test_client_kind_must_match_the_function() -> None:
    """A sync client cannot guard a coroutine (it would block the event loop)."""
    from medic.errors import InvalidInput

    breaker = SharedCircuitBreaker(redis.Redis(), key="k")

    async def coro() -> None:
        return None

    with pytest.raises(InvalidInput, match="cannot guard"):
        breaker(coro)


def test_redis_down_fails_open_or_raises() -> None:
    """With Redis unreachable, fail_open lets calls through; otherwise SharedStateUnavailable."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    dead = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    lenient = SharedCircuitBreaker(dead, key="k")
    assert lenient(lambda: "ran")() == "ran"
    strict = SharedCircuitBreaker(dead, key="k", fail_open=False)
    with pytest.raises(SharedStateUnavailable):
        strict(lambda: "ran")()
    with pytest.raises(SharedStateUnavailable):
        SharedRateLimiter(dead, prefix="p", limit=1).acquire()
