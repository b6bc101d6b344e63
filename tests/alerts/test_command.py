"""The command channel with real child processes: stdin JSON, exit codes, timeouts, bounded stderr."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest

from medic.alerts import CommandNotifier
from medic.errors import ConfigError
from medic.events import DeliveryStatus

from .conftest import make_note

PY = sys.executable


def test_command_receives_the_notification_json_on_stdin(tmp_path: Path) -> None:
    """The child reads the notification as one JSON document on stdin."""
    out = tmp_path / "got.json"
    script = f"import sys, pathlib; pathlib.Path({str(out)!r}).write_text(sys.stdin.read())"
    delivery = asyncio.run(CommandNotifier(argv=[PY, "-c", script]).send(make_note()))
    assert delivery.status is DeliveryStatus.SENT, delivery.error
    got = json.loads(out.read_text())
    assert got["incident_id"] == 42
    assert got["kind"] == "triggered"
    assert got["severity"] == "SEV1"


@pytest.mark.parametrize(("code", "retryable"), [(1, False), (75, True)])
def test_exit_status_is_recorded_with_stderr(code: int, retryable: bool) -> None:
    """A non-zero exit fails with the status and stderr's tail; 75 (EX_TEMPFAIL) may be retried."""
    script = f"import sys; sys.stderr.write('no route to pager\\n'); sys.exit({code})"
    delivery = asyncio.run(CommandNotifier(argv=[PY, "-c", script]).send(make_note()))
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.error == f"exit status {code}: no route to pager"
    assert delivery.retryable is retryable


def test_timeout_kills_the_command_and_its_children() -> None:
    """A hung command is killed (with its process group) after the timeout and may be retried."""
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    started = time.monotonic()
    delivery = asyncio.run(CommandNotifier(argv=[PY, "-c", script], timeout=0.5).send(make_note()))
    assert time.monotonic() - started < 10
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.retryable
    assert delivery.error == "timed out after 0.5s"


def test_flood_of_stderr_is_bounded() -> None:
    """Megabytes on stderr cost a bounded tail, not memory proportional to the output."""
    script = "import sys; sys.stderr.write('x' * 5_000_000 + 'THE END'); sys.exit(2)"
    delivery = asyncio.run(CommandNotifier(argv=[PY, "-c", script]).send(make_note()))
    assert delivery.error is not None
    assert delivery.error.startswith("exit status 2: ")
    assert len(delivery.error) <= 520


def test_command_that_does_not_read_stdin_still_succeeds() -> None:
    """A command that ignores its input is not an error."""
    delivery = asyncio.run(CommandNotifier(argv=[PY, "-c", "pass"]).send(make_note()))
    assert delivery.status is DeliveryStatus.SENT


def test_missing_executable_is_final() -> None:
    """A command that does not exist fails once, without retries."""
    delivery = asyncio.run(CommandNotifier(argv=["/nonexistent/medic-pager"]).send(make_note()))
    assert delivery.status is DeliveryStatus.FAILED
    assert not delivery.retryable
    assert delivery.error is not None
    assert "cannot run" in delivery.error


@pytest.mark.parametrize(
    "kwargs",
    [{"argv": []}, {"argv": "echo hi"}, {"argv": ["echo", ""]}, {"argv": ["x"], "timeout": 0}],
)
def test_bad_command_config_is_refused(kwargs: dict[str, object]) -> None:
    """An empty argv, a shell string or a zero timeout is a ConfigError."""
    with pytest.raises(ConfigError):
        CommandNotifier(**kwargs)  # type: ignore[arg-type]
