"""docs/policies.md: every Python example runs, and every public policy name is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import medic.events
import medic.policies

DOC = Path(__file__).resolve().parents[2] / "docs" / "policies.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int, request: pytest.FixtureRequest) -> None:
    """Each example in the policies guide runs as written (Redis examples need the local Redis)."""
    code = BLOCKS[index]
    if "redis.Redis" in code:
        request.getfixturevalue("redis_url")
    exec(compile(code, f"{DOC.name}[{index}]", "exec"), {"__name__": f"doc_{index}"})


def test_every_public_name_and_event_is_documented() -> None:
    """A public policy name or policy event missing from the guide fails the build."""
    text = DOC.read_text()
    skip = {"ALLOWED", "Backoff", "Constant", "DecorrelatedJitter", "Exponential", "Policy"}
    missing = [n for n in medic.policies.__all__ if n not in skip and n not in text]
    events = [
        n for n in medic.events.__all__ if n.startswith(("Circuit", "Call", "Retry", "Fallback"))
    ]
    missing += [n for n in events if n not in text]
    assert missing == []
