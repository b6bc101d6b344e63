"""Decorated functions keep their signatures for type checkers (ParamSpec), sync and async."""

from __future__ import annotations

from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

SNIPPET = """
from medic.policies import Bulkhead, CircuitBreaker, fallback, pipeline, retry, timeout

@retry(on=ConnectionError)
def add(a: int, b: int) -> int:
    return a + b

@pipeline(timeout(1.0), retry(on=ConnectionError), CircuitBreaker(), Bulkhead(max_concurrent=2))
async def fetch(url: str, *, tries: int = 1) -> bytes:
    return b""

@fallback(value=0)
def parse(text: str) -> int:
    return int(text)

reveal_type(add)
reveal_type(fetch)
add("1", 2)
fetch(url=3).close()
"""


def test_mypy_sees_through_every_policy(tmp_path: Path) -> None:
    """mypy --strict reports the original signatures and flags wrong arguments."""
    source = tmp_path / "snippet.py"
    source.write_text(SNIPPET)
    out, _err, _ = api.run(["--strict", "--no-incremental", "--follow-imports=silent", str(source)])
    assert 'Revealed type is "def (a: int, b: int) -> int"' in out, out
    assert "def (url: str, *, tries: int =) -> typing.Coroutine[Any, Any, bytes]" in out, out
    assert 'Argument 1 to "add" has incompatible type "str"; expected "int"' in out, out
    assert 'Argument "url" to "fetch" has incompatible type "int"; expected "str"' in out, out
