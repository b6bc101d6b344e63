"""The control socket: every command, refusal of other users, SIGTERM order, unclean-stop record."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from medic.app import ControlClient, MedicApp
from medic.errors import UserError
from medic.events import ServiceReady, ServiceStopped
from medic.tracker import Tracker

from .harness import PY, SLEEPER, running, toml_str, until, wait_event

CHATTY = "import itertools, time\nfor i in itertools.count():\n    print(f'tick {i}', flush=True)\n    time.sleep(0.05)"


def _config(extra_env: str = "A") -> str:
    return f"""
[services.db]
command = [{toml_str(PY)}, "-c", {toml_str(SLEEPER)}]
start_time = "100ms"

[services.api]
command = [{toml_str(PY)}, "-c", {toml_str(CHATTY)}]
env = {{ MODE = "{extra_env}" }}
depends_on = ["db"]
start_time = "100ms"

[services.web]
command = [{toml_str(PY)}, "-c", {toml_str(SLEEPER)}]
depends_on = ["api"]
start_time = "100ms"
"""


def test_every_control_command(tmp_path: Path) -> None:
    """status, stop, start, restart, logs -n, logs -f, reload and down all work over the socket."""

    async def main() -> None:
        async with running(tmp_path, _config()) as run:
            await run.app.supervisor.wait_running(timeout=15)  # type: ignore[union-attr]
            status = await run.call(cmd="status")
            rows = {s["service"]: s for s in status["services"]}
            assert set(rows) == {"db", "api", "web"}
            assert rows["api"]["state"] == "running"
            assert rows["api"]["pid"] > 0
            assert rows["api"]["health"] == "-"
            assert status["medic"]["pid"] == os.getpid()

            assert (await run.call(cmd="stop", service="web"))["state"] == "stopped"
            await run.call(cmd="start", service="web")
            await run.app.supervisor.runner("web").wait_for(  # type: ignore[union-attr]
                *[
                    s
                    for s in run.app.supervisor.runner("web").state.__class__
                    if s.value == "running"
                ],
                timeout=5,
            )
            old = run.app.supervisor.runner("api").child.pid  # type: ignore[union-attr]
            await run.call(cmd="restart", service="api")
            await until(lambda: run.app.supervisor.runner("api").child is not None)  # type: ignore[union-attr]
            assert run.app.supervisor.runner("api").child.pid != old  # type: ignore[union-attr]

            await until(lambda: len(run.app.supervisor.runner("api").logs.tail(5)) >= 3)  # type: ignore[union-attr]
            logs = await run.call(cmd="logs", service="api", n=2)
            assert len(logs["lines"]) == 2
            assert logs["lines"][0].startswith("tick ")

            def follow() -> list[str]:
                got: list[str] = []
                for message in run.client.stream(
                    {"cmd": "logs", "service": "api", "n": 0, "follow": True}
                ):
                    if "line" in message:
                        got.append(message["line"])
                    if len(got) == 3:
                        break
                return got

            followed = await asyncio.wait_for(asyncio.to_thread(follow), 10)
            assert all(line.startswith("tick ") for line in followed)

            with pytest.raises(UserError, match="no service named 'nope'"):
                await run.call(cmd="stop", service="nope")
            with pytest.raises(UserError, match="unknown command"):
                await run.call(cmd="explode")

            (tmp_path / "medic.toml").write_text(_config(extra_env="B"))
            web_pid = run.app.supervisor.runner("web").child.pid  # type: ignore[union-attr]
            reloaded = await run.call(cmd="reload")
            assert reloaded["changed"] == ["api"]
            assert reloaded["added"] == []
            assert run.app.supervisor.runner("web").child.pid == web_pid  # type: ignore[union-attr]

            (tmp_path / "medic.toml").write_text("[services.x]\ncommand = 'x'\nbogus = 1\n")
            with pytest.raises(UserError, match="bogus: unknown key"):
                await run.call(cmd="reload")

            await run.call(cmd="down")
            await until(lambda: not run.app.paths.socket.exists(), timeout=30)

    asyncio.run(main())


def test_the_socket_refuses_other_users(tmp_path: Path) -> None:
    """The socket is 0600; even when opened up, SO_PEERCRED refuses a different uid."""
    if os.getuid() != 0:
        pytest.skip("needs root to connect as another user")

    import shutil
    import tempfile

    # pytest's tmp_path is not traversable by other users; this test needs a path they can reach.
    base = Path(tempfile.mkdtemp(prefix="medic-peercred-"))
    base.chmod(0o755)

    async def main() -> tuple[int, str]:
        async with running(base, _config()) as run:
            mode = run.app.paths.socket.stat().st_mode & 0o777
            os.chmod(run.app.paths.state_dir, 0o755)
            os.chmod(run.app.paths.socket, 0o666)
            code = (
                "import os, socket, sys\n"
                "os.setgid(65534); os.setuid(65534)\n"
                "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
                "print(s.makefile().readline())\n"
            )
            out = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-c", code, str(run.app.paths.socket)],
                capture_output=True, text=True, timeout=20,
            )  # fmt: skip
            assert (await run.call(cmd="status"))["services"]  # still running, not brought down
            return mode, out.stdout + out.stderr

    try:
        mode, answer = asyncio.run(main())
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert mode == 0o600
    assert json.loads(answer) == {
        "ok": False,
        "error": "permission denied: this medic belongs to another user",
    }


def test_sigterm_stops_services_in_reverse_dependency_order(tmp_path: Path) -> None:
    """SIGTERM to medic stops web, then api, then db, and medic returns."""

    async def main() -> list[str]:
        async with running(tmp_path, _config()) as run:
            sub = run.app.bus.subscribe(ServiceStopped)
            await run.app.supervisor.wait_running(timeout=15)  # type: ignore[union-attr]
            os.kill(os.getpid(), signal.SIGTERM)
            await until(lambda: not run.app.paths.socket.exists(), timeout=30)
            stopped: list[str] = []
            while len(stopped) < 3:
                stopped.append((await wait_event(sub, lambda _: True, timeout=30)).service)
            return stopped

    assert asyncio.run(main()) == ["web", "api", "db"]


def test_the_next_start_records_an_unclean_stop(tmp_path: Path) -> None:
    """A pid file left by a SIGKILLed medic becomes a resolved incident for service `medic`."""
    state = tmp_path / "state"
    state.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (state / "medic.pid").write_text(
        json.dumps({"pid": dead.pid, "started_at": "2026-01-01T00:00:00+00:00"})
    )

    async def main() -> Path:
        async with running(tmp_path, _config()) as run:
            await until(lambda: bool(run.tracker().incidents(service="medic").items))
            return run.store

    store = asyncio.run(main())
    with Tracker(str(store)) as tracker:
        (incident,) = tracker.incidents(service="medic").items
        assert incident.status == "resolved"
        assert f"pid {dead.pid}" in incident.title


def test_a_second_medic_on_the_same_store_is_refused(tmp_path: Path) -> None:
    """Two `medic up` on one store would fight over the children: the second refuses."""

    async def main() -> None:
        async with running(tmp_path, _config()) as run:
            other = MedicApp(config_path=tmp_path / "medic.toml", store_url=str(run.store))
            with pytest.raises(UserError, match="already running"):
                await asyncio.to_thread(other._previous_run)

    asyncio.run(main())


def test_commands_without_a_running_medic_say_so(tmp_path: Path) -> None:
    """A client with no medic behind the socket gets a clear 'not running' error."""
    with pytest.raises(UserError, match="medic is not running"):
        ControlClient(tmp_path / "absent.sock").call({"cmd": "status"})


def test_bad_requests_are_answered_not_crashed_on(tmp_path: Path) -> None:
    """Garbage on the socket gets an error line; medic keeps serving."""

    async def main() -> str:
        async with running(tmp_path, _config()) as run:

            def send_garbage() -> str:
                with socket.socket(socket.AF_UNIX) as sock:
                    sock.connect(str(run.app.paths.socket))
                    sock.sendall(b"this is not json\n")
                    return sock.makefile().readline()

            answer = await asyncio.to_thread(send_garbage)
            assert (await run.call(cmd="status"))["services"]
            return answer

    assert "bad request" in asyncio.run(main())


def test_ready_events_reach_subscribers(tmp_path: Path) -> None:
    """The app's bus carries the supervisor's events to any subscriber (the CLI's echo uses it)."""

    async def main() -> set[str]:
        async with running(tmp_path, _config()) as run:
            sub = run.app.bus.subscribe(ServiceReady)
            seen: set[str] = set()
            while len(seen) < 3:
                seen.add((await wait_event(sub, lambda e: True)).service)
            return seen

    assert asyncio.run(main()) == {"db", "api", "web"}
