"""Output capture stays bounded, sd_notify works, failover groups switch, no orphan survives medic."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil

from medic.bus import Bus
from medic.events import ServiceFailover, ServiceKilling, ServiceReady
from medic.supervisor import (
    CrashLoopLimit,
    FailoverGroup,
    LogCapture,
    LogSpec,
    ProcessState,
    Readiness,
    Supervisor,
    parse_notify,
)

from .helpers import SLEEPER, spec, until, wait_gone


def test_log_files_never_exceed_their_bound_and_the_tail_keeps_the_last_lines(
    tmp_path: Path,
) -> None:
    """Rotation keeps `keep` files of at most max_bytes; tail(n) returns the newest n lines."""
    code = "import sys\nfor i in range(5000): print(f'line {i:05d} ' + 'x' * 80)\nimport time\nwhile True: time.sleep(1)"
    logs = LogSpec(directory=tmp_path, max_bytes=20_000, keep=2, tail_lines=50)

    async def main() -> list[str]:
        async with Supervisor([spec("chatty", code, logs=logs)], bus=Bus()) as sup:
            sup.start_all()
            runner = sup.runner("chatty")
            await until(lambda: runner.logs.bytes_seen >= 5000 * 92)
            return runner.logs.tail(3)

    tail = asyncio.run(main())
    assert [line[:10] for line in tail] == ["line 04997", "line 04998", "line 04999"]
    files = sorted(tmp_path.glob("chatty.log*"))
    assert [f.name for f in files] == ["chatty.log", "chatty.log.1", "chatty.log.2"]
    assert all(f.stat().st_size <= 20_000 for f in files)


def test_a_flood_of_output_does_not_grow_medics_memory(tmp_path: Path) -> None:
    """A child writing ~400 MB as fast as it can leaves medic's RSS within a few MB."""
    code = "import os\nchunk = (b'y' * 1023 + b'\\n') * 64\nfor _ in range(6400): os.write(1, chunk)\nimport time\ntime.sleep(60)"
    logs = LogSpec(directory=tmp_path, max_bytes=1_000_000, keep=1, tail_lines=1000)
    me = psutil.Process()

    async def main() -> tuple[int, int]:
        async with Supervisor([spec("flood", code, logs=logs)], bus=Bus()) as sup:
            before = me.memory_info().rss
            sup.start_all()
            runner = sup.runner("flood")
            await until(lambda: runner.logs.bytes_seen >= 6400 * 65536, timeout=60)
            return before, me.memory_info().rss

    before, after = asyncio.run(main())
    assert after - before < 30 * 1024 * 1024
    assert all(f.stat().st_size <= 1_000_000 for f in tmp_path.glob("flood.log*"))


def test_log_capture_cuts_endless_lines() -> None:
    """A line without a newline is kept only up to the line bound, not accumulated."""
    capture = LogCapture("x", directory=None, max_bytes=10, keep=0, tail_lines=3)
    for _ in range(1000):
        capture.feed(b"z" * 10_000)
    capture.feed(b"\nend\n")
    assert [len(line) for line in capture.tail(2)] == [4096, 3]


NOTIFY_CODE = """
    import os, socket, time
    def notify(msg):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(msg.encode(), os.environ["NOTIFY_SOCKET"])
        s.close()
    time.sleep(0.2)
    notify("READY=1\\nSTATUS=serving")
    for _ in range(3):
        notify("WATCHDOG=1")
        time.sleep(0.1)
    while True: time.sleep(1)  # then it deadlocks: no more WATCHDOG=1
"""


def test_sd_notify_ready_counts_the_start_and_a_missed_watchdog_kills() -> None:
    """READY=1 makes the start count (via notify); silence past WATCHDOG_USEC kills the service."""

    async def main() -> tuple[list[object], str]:
        bus = Bus()
        sub = bus.subscribe(ServiceReady, ServiceKilling)
        service = spec("daemon", NOTIFY_CODE, readiness=Readiness.NOTIFY, notify=True, watchdog=0.5)
        async with Supervisor([service], bus=bus) as sup:
            sup.start_all()
            await sup.wait_running(timeout=5)
            status = sup.runner("daemon").status_text
            await until(lambda: any(isinstance(e, ServiceKilling) for e in list(sub._items)))
        return sub.drain(), status

    events, status = asyncio.run(main())
    ready = next(e for e in events if isinstance(e, ServiceReady))
    assert ready.via == "notify"
    assert ready.startup_seconds >= 0.2
    assert status == "serving"
    killing = next(e for e in events if isinstance(e, ServiceKilling))
    assert "WATCHDOG=1" in killing.reason


def test_parse_notify_skips_garbage() -> None:
    """Malformed lines and lowercase keys are ignored; values are bounded."""
    fields = parse_notify(b"READY=1\ngarbage\nlower=1\nSTATUS=" + b"s" * 2000)
    assert fields["READY"] == "1"
    assert "lower" not in fields
    assert len(fields["STATUS"]) == 512


def test_failover_to_the_secondary_and_back_to_the_primary(tmp_path: Path) -> None:
    """A fatal primary hands over to the secondary; once the primary can run again medic fails back."""
    healthy = tmp_path / "primary-ok"
    primary_code = f"""
        import pathlib, sys, time
        if not pathlib.Path({str(healthy)!r}).exists():
            sys.exit(1)
        while True: time.sleep(1)
    """
    limit = CrashLoopLimit(max_restarts=1, within=30, cooldown=30)

    async def main() -> list[ServiceFailover]:
        bus = Bus()
        sub = bus.subscribe(ServiceFailover)
        specs = [spec("primary", primary_code, crash_loop=limit), spec("secondary", SLEEPER)]
        group = FailoverGroup(
            name="db", members=("primary", "secondary"), failback=True, failback_after=0.3
        )
        async with Supervisor(specs, bus=bus, groups=[group]) as sup:
            sup.start_all()
            await until(lambda: sup.active["db"] == "secondary")
            await sup.runner("secondary").wait_for(ProcessState.RUNNING, timeout=5)
            assert sup.runner("primary").state is ProcessState.STOPPED
            healthy.touch()
            await until(lambda: sup.active["db"] == "primary")
            await sup.runner("secondary").wait_for(ProcessState.STOPPED, timeout=5)
            assert sup.runner("primary").state is ProcessState.RUNNING
        return sub.drain()

    events = asyncio.run(main())
    assert [(e.from_service, e.to_service, e.failback) for e in events] == [
        ("primary", "secondary", False),
        ("secondary", "primary", True),
    ]


MEDIC_SCRIPT = """
    import asyncio, pathlib, sys
    from medic.bus import Bus
    from medic.supervisor import ServiceSpec, Supervisor
    CHILD = "import subprocess, sys, time\\n" \\
        "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\\n" \\
        "print(g.pid, flush=True)\\n" \\
        "time.sleep(600)"
    async def main():
        spec = ServiceSpec(name="svc", argv=(sys.executable, "-c", CHILD), start_seconds=0.1)
        async with Supervisor([spec], bus=Bus()) as sup:
            sup.start_all()
            await sup.wait_running(timeout=10)
            runner = sup.runner("svc")
            while not runner.logs.tail(1):
                await asyncio.sleep(0.01)
            pathlib.Path(sys.argv[1]).write_text(f"{runner.child.pid} {runner.logs.tail(1)[0]}")
            await asyncio.sleep(600)
    asyncio.run(main())
"""


def test_no_child_outlives_a_sigkilled_medic(tmp_path: Path) -> None:
    """SIGKILL medic: the guard sees its pipe close and kills child and grandchild within seconds."""
    out = tmp_path / "pids"
    medic = subprocess.Popen([sys.executable, "-c", textwrap.dedent(MEDIC_SCRIPT), str(out)])
    try:
        for _ in range(1000):
            if out.exists() and out.read_text():
                break
            if medic.poll() is not None:
                break
            import time

            time.sleep(0.01)
        child, grandchild = (int(x) for x in out.read_text().split())
    finally:
        os.kill(medic.pid, signal.SIGKILL)
        medic.wait()
    assert wait_gone([child, grandchild], timeout=3) == []
