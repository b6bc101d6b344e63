"""Shared fixtures: where the real services live, and how a test that needs one behaves.

In CI (CI=true) a test that cannot reach PostgreSQL or Redis fails; elsewhere it
skips with the reason.
"""

from __future__ import annotations

import os
import socket

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get(
    "MEDIC_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("MEDIC_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    """Skip (or, in CI, fail) the calling test when `name` is not listening."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message} (CI must start it)")
    pytest.skip(message)


@pytest.fixture
def postgres_url() -> str:
    """The URL of the local PostgreSQL test database."""
    need_service("PostgreSQL", "127.0.0.1", 5432)
    return POSTGRES_URL


@pytest.fixture
def redis_url() -> str:
    """The URL of the local Redis."""
    need_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL
