"""One real end-to-end run of the CLI: check, up --detach, status, stop/start/restart, logs, reload, down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .harness import PY, SLEEPER, toml_str

CONFIG = f"""
[services.db]
command = [{toml_str(PY)}, "-c", {toml_str(SLEEPER)}]
start_time = "100ms"

[services.api]
command = [{toml_str(PY)}, "-c", "print('hello from api', flush=True); import time; time.sleep(600)"]
depends_on = ["db"]
start_time = "100ms"
"""


def medic(tmp_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "medic", "-c", str(tmp_path / "medic.toml"), *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, check=check, cwd=tmp_path
    )


def test_the_cli_drives_a_detached_medic(tmp_path: Path) -> None:
    """Every supervisor command works against a background medic and `down` stops it."""
    (tmp_path / "medic.toml").write_text(CONFIG)
    assert "ok (2 services, 0 probes, 0 groups)" in medic(tmp_path, "check").stdout
    started = medic(tmp_path, "up", "--detach")
    assert "medic running in the background" in started.stdout
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status = json.loads(medic(tmp_path, "status", "--json").stdout)
            if all(s["state"] == "running" for s in status["services"]):
                break
            time.sleep(0.1)
        assert [s["service"] for s in status["services"]] == ["db", "api"]
        assert "running" in medic(tmp_path, "status").stdout
        assert medic(tmp_path, "stop", "api").stdout.strip() == "api: stopped"
        assert medic(tmp_path, "start", "api").returncode == 0
        assert medic(tmp_path, "restart", "db").returncode == 0
        for _ in range(100):
            logs = medic(tmp_path, "logs", "api", "-n", "5").stdout
            if "hello from api" in logs:
                break
            time.sleep(0.05)
        assert "hello from api" in logs
        assert "changed: -" in medic(tmp_path, "reload").stdout
        now = json.loads(medic(tmp_path, "status", "--json").stdout)["services"]
        api = next(s for s in now if s["service"] == "api")
        os.kill(api["pid"], signal.SIGKILL)  # the engine restarts it and says so in status
        for _ in range(200):
            recovery = json.loads(medic(tmp_path, "status", "--json").stdout)["recovery"]
            if recovery["recent"]:
                break
            time.sleep(0.1)
        assert recovery["recent"][-1]["service"] == "api"
        shown = medic(tmp_path, "status").stdout
        assert "recovered by restart" in shown
        missing = medic(tmp_path, "stop", "nope", check=False)
        assert missing.returncode != 0
        assert "no service named 'nope'" in missing.stderr
        again = medic(tmp_path, "up", check=False)
        assert "already running" in again.stderr
    finally:
        medic(tmp_path, "down", check=False)
    assert not (tmp_path / ".medic" / "medic.sock").exists()
    gone = medic(tmp_path, "status", check=False)
    assert "medic is not running" in gone.stderr


def test_check_reports_config_errors_with_file_and_key(tmp_path: Path) -> None:
    """`medic check` exits non-zero with file:key: expectation on one line."""
    (tmp_path / "medic.toml").write_text("[services.web]\ncommand = 'x'\nrestart = 'sometimes'\n")
    result = medic(tmp_path, "check", check=False)
    assert result.returncode == 1
    assert "medic.toml:services.web.restart:" in result.stderr
    assert "'always', 'on-failure' or 'never'" in result.stderr
