"""Real children: crashes restart with backoff, crash loops go fatal and come back, stops kill groups."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from medic.bus import Bus
from medic.events import (
    ServiceExited,
    ServiceFatal,
    ServiceKilling,
    ServiceReady,
    ServiceRestarting,
    ServiceStarting,
    ServiceStopped,
)
from medic.supervisor import (
    CrashLoopLimit,
    ProcessState,
    RestartPolicy,
    StopSpec,
    Supervisor,
)

from .helpers import SLEEPER, alive, spec, until, wait_gone


def test_a_crashing_service_restarts_with_growing_backoff() -> None:
    """Each crash restarts it; delays follow 0, initial, initial×factor…; exit codes are reported."""

    async def main() -> list[object]:
        bus = Bus()
        sub = bus.subscribe(ServiceRestarting, ServiceExited)
        async with Supervisor([spec("crash", "import sys; sys.exit(3)")], bus=bus) as sup:
            sup.start_all()
            await until(lambda: sup.runner("crash").restarts >= 4)
        return sub.drain()

    events = asyncio.run(main())
    delays = [e.delay for e in events if isinstance(e, ServiceRestarting)][:4]
    assert delays == [0.0, 0.05, 0.1, 0.2]
    exits = [e for e in events if isinstance(e, ServiceExited) and not e.expected]
    assert exits[0].returncode == 3
    assert exits[0].description == "exited with code 3"


def test_an_instant_crash_is_never_counted_as_started() -> None:
    """A child that dies before its start time never reaches RUNNING nor publishes ServiceReady."""

    async def main() -> tuple[list[object], list[str]]:
        bus = Bus()
        sub = bus.subscribe()
        seen: list[str] = []
        service = spec("instant", "raise SystemExit(1)", start_seconds=0.3)
        async with Supervisor([service], bus=bus) as sup:
            sup.start_all()
            runner = sup.runner("instant")
            for _ in range(200):
                seen.append(runner.state.value)
                if runner.restarts >= 3:
                    break
                await asyncio.sleep(0.005)
        return sub.drain(), seen

    events, seen = asyncio.run(main())
    assert not any(isinstance(e, ServiceReady) for e in events)
    assert "running" not in seen
    assert all(not e.was_ready for e in events if isinstance(e, ServiceExited))


def test_a_crash_loop_goes_fatal_then_runs_again_after_the_cooldown(tmp_path: Path) -> None:
    """Past max_restarts within the window the service is fatal; after cooldown it starts and stays up."""
    counter = tmp_path / "count"
    code = f"""
        import pathlib, sys, time
        p = pathlib.Path({str(counter)!r})
        n = int(p.read_text()) if p.exists() else 0
        p.write_text(str(n + 1))
        if n < 4:
            sys.exit(2)
        while True: time.sleep(1)
    """
    limit = CrashLoopLimit(max_restarts=2, within=30, cooldown=0.4)

    async def main() -> list[object]:
        bus = Bus()
        sub = bus.subscribe()
        async with Supervisor([spec("loop", code, crash_loop=limit)], bus=bus) as sup:
            sup.start_all()
            await until(lambda: sup.runner("loop").state is ProcessState.FATAL)
            assert sup.runner("loop").status().fatal_for is not None
            await sup.wait_running(timeout=10)
        return sub.drain()

    events = asyncio.run(main())
    fatal = [e for e in events if isinstance(e, ServiceFatal)]
    assert len(fatal) >= 1
    assert fatal[0].cooldown == 0.4
    after_fatal = events[events.index(fatal[0]) :]
    assert any(isinstance(e, ServiceReady) for e in after_fatal)
    starts = [e for e in events if isinstance(e, ServiceStarting)]
    gap = (starts[3].at - fatal[0].at).total_seconds()
    assert gap >= 0.35  # nothing starts during the cooldown


def test_backoff_applies_to_a_crash_loop_after_a_long_healthy_run(tmp_path: Path) -> None:
    """A service that was ready for a while and then crash-loops still backs off (no PM2 16-s window)."""
    flag = tmp_path / "crash"
    code = f"""
        import pathlib, sys, time
        p = pathlib.Path({str(flag)!r})
        if p.exists():
            sys.exit(5)
        while not p.exists(): time.sleep(0.02)
        sys.exit(5)
    """

    async def main() -> list[float]:
        bus = Bus()
        sub = bus.subscribe(ServiceRestarting)
        async with Supervisor([spec("late", code)], bus=bus) as sup:
            sup.start_all()
            await sup.wait_running(timeout=5)
            await asyncio.sleep(0.7)  # ready longer than reset_after: a healthy run
            flag.touch()
            await until(lambda: sup.runner("late").restarts >= 4)
        return [e.delay for e in sub.drain()]

    assert asyncio.run(main())[:4] == [0.0, 0.05, 0.1, 0.2]


def test_on_failure_does_not_restart_a_clean_exit() -> None:
    """restart=on-failure leaves a service that exited 0 in EXITED."""

    async def main() -> ProcessState:
        bus = Bus()
        service = spec("once", "pass", restart=RestartPolicy.ON_FAILURE)
        async with Supervisor([service], bus=bus) as sup:
            sup.start_all()
            await until(lambda: sup.runner("once").state is ProcessState.EXITED)
            return sup.runner("once").state

    assert asyncio.run(main()) is ProcessState.EXITED


GROUP_CODE = """
    import os, signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    print(child.pid, flush=True)
    while True: time.sleep(1)
"""


def test_a_stop_timeout_escalates_to_sigkill_of_the_whole_group() -> None:
    """A service and its grandchild that ignore SIGTERM are both SIGKILLed after the stop timeout."""

    async def main() -> tuple[int, int, float]:
        bus = Bus()
        service = spec("stubborn", GROUP_CODE, stop=StopSpec(timeout=0.4))
        async with Supervisor([service], bus=bus, guard=False) as sup:
            sup.start_all()
            await sup.wait_running(timeout=5)
            runner = sup.runner("stubborn")
            await until(lambda: bool(runner.logs.tail(1)))
            grandchild = int(runner.logs.tail(1)[0])
            pid = runner.child.pid if runner.child else 0
            started = time.monotonic()
            await sup.stop("stubborn")
            return pid, grandchild, time.monotonic() - started

    pid, grandchild, took = asyncio.run(main())
    assert wait_gone([pid, grandchild], timeout=2) == []
    assert 0.35 <= took < 3


def test_a_hung_service_is_killed_with_sigcont_and_restarted() -> None:
    """kill() on a SIGSTOPped child sends the stop signal + SIGCONT and a new child runs."""

    async def main() -> tuple[list[object], int, int | None]:
        bus = Bus()
        sub = bus.subscribe(ServiceKilling, ServiceExited)
        async with Supervisor([spec("hung", SLEEPER)], bus=bus) as sup:
            sup.start_all()
            await sup.wait_running(timeout=5)
            runner = sup.runner("hung")
            old = runner.child.pid if runner.child else 0
            os.kill(old, signal.SIGSTOP)
            assert sup.kill("hung", "liveness probe failed 3 times")
            await until(lambda: runner.child is not None and runner.child.pid != old)
            await runner.wait_for(ProcessState.RUNNING, timeout=5)
            new = runner.child.pid if runner.child else None
        return sub.drain(), old, new

    events, old, new = asyncio.run(main())
    assert new is not None
    assert new != old
    killing = [e for e in events if isinstance(e, ServiceKilling)]
    assert killing[0].stage == "stop-signal"
    assert killing[0].signal == signal.SIGTERM
    exited = next(e for e in events if isinstance(e, ServiceExited) and e.pid == old)
    # SIGCONT let the pending SIGTERM land: no SIGKILL was needed.
    assert exited.signal == signal.SIGTERM
    assert exited.reason == "liveness probe failed 3 times"
    assert not alive(old)


def test_dependencies_start_in_order_and_stop_in_reverse() -> None:
    """db starts (and is ready) before api, api before web; stopping goes web, api, db."""

    async def main() -> tuple[list[str], list[str]]:
        bus = Bus()
        sub = bus.subscribe(ServiceReady, ServiceStarting, ServiceStopped)
        specs = [
            spec("web", SLEEPER, depends_on=("api",)),
            spec("api", SLEEPER, depends_on=("db",)),
            spec("db", SLEEPER),
        ]
        async with Supervisor(specs, bus=bus) as sup:
            sup.start_all()
            await sup.wait_running(timeout=10)
            await sup.stop_all()
        events = sub.drain()
        starts = [e.service for e in events if isinstance(e, ServiceStarting)]
        stops = [e.service for e in events if isinstance(e, ServiceStopped)]
        readies = [
            type(e).__name__ + ":" + e.service for e in events if not isinstance(e, ServiceStopped)
        ]
        assert readies.index("ServiceReady:db") < readies.index("ServiceStarting:api")
        return starts, stops

    starts, stops = asyncio.run(main())
    assert starts == ["db", "api", "web"]
    assert stops == ["web", "api", "db"]


def test_a_dependency_restart_restarts_its_dependents() -> None:
    """on_dependency_restart=restart: when db crashes and comes back, api is restarted too."""
    from medic.supervisor import DependencyRestart

    async def main() -> tuple[int, int | None]:
        bus = Bus()
        specs = [
            spec("db", SLEEPER),
            spec(
                "api", SLEEPER, depends_on=("db",), on_dependency_restart=DependencyRestart.RESTART
            ),
        ]
        async with Supervisor(specs, bus=bus) as sup:
            sup.start_all()
            await sup.wait_running(timeout=10)
            api = sup.runner("api")
            old = api.child.pid if api.child else 0
            db_pid = sup.runner("db").child.pid if sup.runner("db").child else 0
            os.kill(db_pid, signal.SIGKILL)
            await until(lambda: api.child is not None and api.child.pid != old)
            await api.wait_for(ProcessState.RUNNING, timeout=5)
            return old, api.child.pid if api.child else None

    old, new = asyncio.run(main())
    assert new is not None
    assert new != old


@pytest.mark.parametrize(
    ("depends", "message"),
    [((("a", ("b",)), ("b", ("a",))), "cycle"), ((("a", ("zzz",)),), "unknown service")],
)
def test_bad_dependencies_are_refused(
    depends: tuple[tuple[str, tuple[str, ...]], ...], message: str
) -> None:
    """A dependency cycle or an unknown dependency is an InvalidInput naming it."""
    from medic.errors import InvalidInput

    with pytest.raises(InvalidInput, match=message):
        Supervisor([spec(name, SLEEPER, depends_on=deps) for name, deps in depends], bus=Bus())


def test_a_start_during_a_stop_finishes_the_stop_then_starts() -> None:
    """stop() returns once stopped even if start() came meanwhile; the service then runs again."""

    async def main() -> tuple[int, int | None]:
        service = spec("svc", SLEEPER, stop=StopSpec(timeout=2))
        async with Supervisor([service], bus=Bus()) as sup:
            sup.start_all()
            await sup.wait_running(timeout=5)
            runner = sup.runner("svc")
            old = runner.child.pid if runner.child else 0
            stopping = asyncio.create_task(runner.stop())
            await asyncio.sleep(0)
            runner.start()
            await asyncio.wait_for(stopping, 5)
            await runner.wait_for(ProcessState.RUNNING, timeout=5)
            return old, runner.child.pid if runner.child else None

    old, new = asyncio.run(main())
    assert new is not None
    assert new != old
