"""A separate process using a Redis-shared breaker or limiter (driven by test_redis.py).

Usage: python shared_worker.py URL KEY MODE PHASE
Says it is ready, waits for its phase's go on Redis, does its MODE, prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time

import redis

from medic.policies import CircuitOpen, SharedCircuitBreaker, SharedRateLimiter


def main() -> None:
    url, key, mode, phase = sys.argv[1:5]
    client = redis.Redis.from_url(url)
    breaker = SharedCircuitBreaker(client, key=key, failure_threshold=3, reset_timeout=1.0)
    ran = 0

    @breaker
    def fail() -> None:
        nonlocal ran
        ran += 1
        raise ConnectionError("down")

    @breaker
    def slow_ok() -> str:
        nonlocal ran
        ran += 1
        time.sleep(1.0)
        return "ok"

    client.incr(f"{key}:{phase}:ready")
    client.blpop([f"{key}:{phase}:go"], timeout=60)
    outcome: dict[str, object] = {"mode": mode}
    if mode == "fail":
        errors = []
        for _ in range(3):
            try:
                fail()
            except (ConnectionError, CircuitOpen) as exc:
                errors.append(type(exc).__name__)
        outcome["errors"] = errors
    elif mode == "probe":
        try:
            fail()
            outcome["result"] = "ran"
        except CircuitOpen:
            outcome["result"] = "rejected"
    elif mode == "trial":
        try:
            outcome["result"] = slow_ok()
        except CircuitOpen:
            outcome["result"] = "rejected"
    elif mode == "limit":
        limiter = SharedRateLimiter(client, prefix=key, limit=10, period=60)
        outcome["admitted"] = sum(limiter.acquire("k") == 0.0 for _ in range(10))
    outcome["ran"] = ran
    print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
