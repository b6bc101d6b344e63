"""Probes against real sockets and processes: thresholds, timeouts that cut hangs, no idle wake-ups."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from medic.bus import Bus
from medic.events import ServiceHealthy, ServiceUnhealthy
from medic.health import (
    CommandCheck,
    HealthMonitor,
    HeartbeatCheck,
    HttpCheck,
    ProbeSpec,
    ProcessCheck,
    ResourceCheck,
    TcpCheck,
)


@asynccontextmanager
async def http_server() -> AsyncIterator[tuple[int, dict[str, str]]]:
    """A tiny HTTP server: /ok → 200, /fail → 500, /hang never answers; `mode['/']` overrides /."""
    mode = {"/": "ok"}
    writers: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        line = (await reader.readline()).decode()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        path = line.split()[1] if len(line.split()) > 1 else "/"
        what = mode.get(path, path.strip("/"))
        if what == "hang":
            await asyncio.sleep(3600)
        status, body = ("200 OK", b"alive") if what == "ok" else ("500 Oops", b"broken")
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, mode
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await asyncio.sleep(0)


def probe(check: object, **kw: object) -> ProbeSpec:
    values: dict[str, object] = {"interval": 0.05, "timeout": 0.3, "failures": 2, "successes": 1}
    values.update(kw)
    return ProbeSpec(service="svc", name=getattr(check, "type", "p"), check=check, **values)  # type: ignore[arg-type]


async def events_until(
    sub: object, done: Callable[[list[object]], bool], *, timeout: float = 5.0
) -> list[object]:
    got: list[object] = []
    async with asyncio.timeout(timeout):
        async for event in sub:  # type: ignore[attr-defined]
            got.append(event)
            if done(got):
                return got
    return got


def test_http_probe_goes_unhealthy_after_the_threshold_and_healthy_again() -> None:
    """Two failed requests → unhealthy with the status as evidence; one pass → healthy (recovered)."""

    async def main() -> list[object]:
        bus = Bus()
        sub = bus.subscribe(ServiceUnhealthy, ServiceHealthy)
        async with http_server() as (port, mode):
            check = HttpCheck(url=f"http://127.0.0.1:{port}/", body_contains="alive")
            async with HealthMonitor([probe(check)], bus=bus, pid_of=lambda s: None) as mon:
                mon.enable("svc")
                first = await events_until(sub, lambda g: len(g) == 1)
                mode["/"] = "fail"
                second = await events_until(sub, lambda g: len(g) == 1)
                mode["/"] = "ok"
                third = await events_until(sub, lambda g: len(g) == 1)
        return first + second + third

    healthy, unhealthy, recovered = asyncio.run(main())
    assert isinstance(healthy, ServiceHealthy)
    assert not healthy.recovered
    assert isinstance(unhealthy, ServiceUnhealthy)
    assert "returned 500" in unhealthy.evidence
    assert unhealthy.failures == 2
    assert unhealthy.first_failure_at < unhealthy.at
    assert isinstance(recovered, ServiceHealthy)
    assert recovered.recovered


def test_a_hanging_probe_is_cut_at_its_timeout_and_counts_as_a_failure() -> None:
    """A server that accepts but never answers fails the probe after `timeout`, not never."""

    async def main() -> tuple[ServiceUnhealthy, float]:
        bus = Bus()
        sub = bus.subscribe(ServiceUnhealthy)
        async with http_server() as (port, _):
            check = HttpCheck(url=f"http://127.0.0.1:{port}/hang")
            spec = probe(check, timeout=0.2, failures=2)
            async with HealthMonitor([spec], bus=bus, pid_of=lambda s: None) as mon:
                started = time.monotonic()
                mon.enable("svc")
                (event,) = await events_until(sub, lambda g: len(g) == 1)
                return event, time.monotonic() - started  # type: ignore[return-value]

    event, took = asyncio.run(main())
    assert "timed out after 0.2s" in event.evidence
    assert event.kind == "timeout"
    assert took < 2


def test_tcp_probe_fails_on_a_closed_port() -> None:
    """A refused connection fails the TCP probe with the OS reason as evidence."""

    async def main() -> ServiceUnhealthy:
        bus = Bus()
        sub = bus.subscribe(ServiceUnhealthy)
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        spec = probe(TcpCheck(host="127.0.0.1", port=port))
        async with HealthMonitor([spec], bus=bus, pid_of=lambda s: None) as mon:
            mon.enable("svc")
            (event,) = await events_until(sub, lambda g: len(g) == 1)
        return event  # type: ignore[return-value]

    event = asyncio.run(main())
    assert event.kind == "connection"
    assert "refused" in event.evidence.lower()


def test_a_hanging_command_probe_is_killed_at_its_timeout() -> None:
    """`sleep 30` as a probe command is cut at the timeout and its process does not linger."""

    async def main() -> ServiceUnhealthy:
        bus = Bus()
        sub = bus.subscribe(ServiceUnhealthy)
        check = CommandCheck(argv=(sys.executable, "-c", "import time; time.sleep(30)"))
        async with HealthMonitor(
            [probe(check, timeout=0.3)], bus=bus, pid_of=lambda s: None
        ) as mon:
            mon.enable("svc")
            (event,) = await events_until(sub, lambda g: len(g) == 1)
        return event  # type: ignore[return-value]

    event = asyncio.run(main())
    assert "timed out" in event.evidence
    leftovers = subprocess.run(
        ["pgrep", "-f", "time.sleep\\(30\\)"], capture_output=True, text=True
    )
    assert leftovers.stdout.strip() == ""


def test_command_probe_compares_the_exit_code() -> None:
    """A command exiting 3 when 0 is expected fails; expecting 3 passes."""

    async def main() -> list[object]:
        bus = Bus()
        sub = bus.subscribe(ServiceUnhealthy, ServiceHealthy)
        argv = (sys.executable, "-c", "raise SystemExit(3)")
        specs = [
            ProbeSpec(
                service="a", name="c", check=CommandCheck(argv=argv), interval=0.05, failures=1
            ),
            ProbeSpec(
                service="b", name="c", check=CommandCheck(argv=argv, expect_exit=3), interval=0.05
            ),
        ]
        async with HealthMonitor(specs, bus=bus, pid_of=lambda s: None) as mon:
            mon.enable("a")
            mon.enable("b")
            return await events_until(sub, lambda g: len(g) == 2)

    events = asyncio.run(main())
    assert {(type(e).__name__, e.service) for e in events} == {  # type: ignore[attr-defined]
        ("ServiceUnhealthy", "a"),
        ("ServiceHealthy", "b"),
    }


def test_a_stale_heartbeat_file_fails(tmp_path: Path) -> None:
    """A heartbeat older than max_age fails; a fresh touch passes again."""
    beat = tmp_path / "beat"
    beat.touch()

    async def main() -> list[object]:
        bus = Bus()
        sub = bus.subscribe(ServiceUnhealthy, ServiceHealthy)
        spec = probe(HeartbeatCheck(path=beat, max_age=0.3))
        async with HealthMonitor([spec], bus=bus, pid_of=lambda s: None) as mon:
            mon.enable("svc")
            got = await events_until(sub, lambda g: len(g) == 2)
            beat.touch()
            got += await events_until(sub, lambda g: len(g) == 1)
        return got

    events = asyncio.run(main())
    assert [type(e).__name__ for e in events] == [
        "ServiceHealthy",
        "ServiceUnhealthy",
        "ServiceHealthy",
    ]
    assert "old (max 0.3s)" in events[1].evidence  # type: ignore[attr-defined]


def test_process_probe_sees_a_stopped_process() -> None:
    """A SIGSTOPped process fails the process probe although its pid exists."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

    async def main() -> ServiceUnhealthy:
        bus = Bus()
        sub = bus.subscribe(ServiceUnhealthy)
        async with HealthMonitor(
            [probe(ProcessCheck())], bus=bus, pid_of=lambda s: child.pid
        ) as mon:
            mon.enable("svc")
            os.kill(child.pid, signal.SIGSTOP)
            (event,) = await events_until(sub, lambda g: len(g) == 1)
        return event  # type: ignore[return-value]

    try:
        event = asyncio.run(main())
    finally:
        child.kill()
        child.wait()
    assert "stopped" in event.evidence


def test_resource_probe_fails_past_rss_max() -> None:
    """A process holding more than rss_max fails the resource probe with the numbers."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; x = bytearray(80 * 2**20); time.sleep(60)"]
    )

    async def main() -> ServiceUnhealthy:
        bus = Bus()
        sub = bus.subscribe(ServiceUnhealthy)
        check = ResourceCheck(rss_max=50 * 2**20, threads_max=100, fds_max_percent=90)
        async with HealthMonitor([probe(check)], bus=bus, pid_of=lambda s: child.pid) as mon:
            mon.enable("svc")
            (event,) = await events_until(sub, lambda g: len(g) == 1)
        return event  # type: ignore[return-value]

    try:
        event = asyncio.run(main())
    finally:
        child.kill()
        child.wait()
    assert event.kind == "resource"
    assert "rss" in event.evidence


def test_resource_probe_averages_cpu_over_its_window() -> None:
    """A busy loop exceeds cpu_max_percent once two samples span the window."""
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])

    async def main() -> ServiceUnhealthy:
        bus = Bus()
        sub = bus.subscribe(ServiceUnhealthy)
        check = ResourceCheck(cpu_max_percent=30, cpu_window=1)
        async with HealthMonitor(
            [probe(check, interval=0.2, failures=1)], bus=bus, pid_of=lambda s: child.pid
        ) as mon:
            mon.enable("svc")
            (event,) = await events_until(sub, lambda g: len(g) == 1)
        return event  # type: ignore[return-value]

    try:
        event = asyncio.run(main())
    finally:
        child.kill()
        child.wait()
    assert "cpu" in event.evidence


def test_no_wakeups_when_no_probe_is_due() -> None:
    """With every service disabled the scheduler sleeps; with one 0.5-s probe it wakes ~once per run."""

    async def main() -> tuple[int, int, int]:
        bus = Bus()
        spec = probe(ProcessCheck(), interval=0.5)
        async with HealthMonitor([spec], bus=bus, pid_of=lambda s: os.getpid()) as mon:
            await asyncio.sleep(0.05)
            idle_start = mon.wakeups
            await asyncio.sleep(0.5)
            idle = mon.wakeups - idle_start
            mon.enable("svc")
            await asyncio.sleep(1.2)
            return idle, mon.wakeups - idle_start, mon.runs

    idle, busy, runs = asyncio.run(main())
    assert idle == 0
    assert runs in (2, 3, 4)
    assert busy <= runs + 3


def test_disable_forgets_the_state_and_enable_starts_from_unknown() -> None:
    """A restarted service is judged afresh: counters and state reset on enable."""

    async def main() -> str:
        bus = Bus()
        async with HealthMonitor([probe(ProcessCheck())], bus=bus, pid_of=lambda s: None) as mon:
            mon.enable("svc")
            await asyncio.sleep(0.3)
            assert mon.probe("svc", "process").state == "unhealthy"
            mon.disable("svc")
            return mon.probe("svc", "process").state

    assert asyncio.run(main()) == "unknown"


@pytest.mark.parametrize("kw", [{"interval": 0}, {"failures": 0}, {"timeout": -1}])
def test_probe_spec_rejects_nonsense(kw: dict[str, float]) -> None:
    """Zero intervals, zero thresholds and negative timeouts are refused."""
    with pytest.raises(ValueError, match="must be"):
        probe(ProcessCheck(), **kw)
