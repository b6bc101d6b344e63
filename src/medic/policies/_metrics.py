"""Prometheus counters for policy events, when prometheus-client is installed.

Imported lazily on the first event, so a process that never fails never pays for
it, and a process without prometheus-client runs the same code without metrics.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["count"]

_lock = threading.Lock()
_counter: Any = None
_unavailable = False


def _load() -> Any:
    global _counter, _unavailable
    with _lock:
        if _counter is not None or _unavailable:
            return _counter
        try:
            from prometheus_client import REGISTRY, Counter
        except ImportError:
            _unavailable = True
            return None
        # Reuse the counter if this module was reloaded (registering twice raises).
        known = getattr(REGISTRY, "_names_to_collectors", {})
        existing = known.get("medic_policy_events_total")
        _counter = existing or Counter(
            "medic_policy_events",
            "Events of medic's in-process policies (retries, breaker changes, rejections).",
            ["policy", "event"],
        )
        return _counter


_children: dict[tuple[str, str], Any] = {}
_MAX_CHILDREN = 10_000  # label sets are bounded: policy names come from code, not requests


def count(event: object) -> None:
    """Count one event by policy name and event type."""
    count_name(str(getattr(event, "policy", "")), type(event).__name__)


def count_name(policy: str, event_name: str) -> None:
    """Count one event without building it (hot failure paths with no listeners)."""
    child = _children.get((policy, event_name))
    if child is None:
        counter = _counter if _counter is not None else _load()
        if counter is None or len(_children) >= _MAX_CHILDREN:
            return
        child = _children[(policy, event_name)] = counter.labels(policy, event_name)
    child.inc()
