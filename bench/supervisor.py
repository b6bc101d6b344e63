"""Supervisor benchmark: medic side by side with supervisord 4.3 (and PM2 when installed).

Scenarios, all on the same child program (a small C program compiled here with gcc;
its first instruction writes `START pid realtime_ns` to an events file, so "new
child running" means the new process really runs, and exec costs the same for all):

  kill9      SIGKILL the running child; time until the replacement runs (≥ 40 trials,
             rounds interleaved between systems; median and p95).
  hang       SIGSTOP the child (it serves HTTP); time until a replacement runs.
             medic: HTTP probe every 1 s, timeout 500 ms, 3 failures.
  crashloop  the child exits(1) at once; the start times and gaps for 20 s.
  idle50     50 services, each with a 1-s HTTP probe (medic) / no probe (supervisord):
             the daemon's CPU, RSS and context switches per second over 20 s.

Run:  .venv/bin/pip install -e '.[bench]' && .venv/bin/python bench/supervisor.py
      (--quick for a short smoke run). Writes bench/results/supervisor.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.progress import Progress

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "supervisor.json"
BIN = Path(sys.executable).parent
console = Console()

CHILD_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <sys/socket.h>
static long long now_ns(void) {
    struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
int main(int argc, char **argv) {
    long long t0 = now_ns();
    if (argc < 3) return 2;
    int fd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT, 0644);
    char buf[96]; int n = snprintf(buf, sizeof buf, "START %d %lld\n", (int)getpid(), t0);
    if (fd < 0 || write(fd, buf, n) < 0) return 2;
    if (!strcmp(argv[1], "crash")) _exit(1);
    if (!strcmp(argv[1], "http") && argc >= 4) {
        int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a; memset(&a, 0, sizeof a);
        a.sin_family = AF_INET; a.sin_port = htons(atoi(argv[3]));
        a.sin_addr.s_addr = htonl(0x7f000001);
        if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 16) < 0) _exit(4);
        const char *r = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";
        for (;;) {
            int c = accept(s, NULL, NULL); char b[1024];
            if (c < 0) continue;
            if (read(c, b, sizeof b) >= 0 && write(c, r, strlen(r)) < 0) {}
            close(c);
        }
    }
    for (;;) pause();
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_child(work: Path) -> Path:
    source, binary = work / "child.c", work / "child"
    source.write_text(CHILD_C)
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(source)], check=True)
    return binary


def starts(events: Path) -> list[tuple[int, int]]:
    """(pid, start ns) for every START line so far."""
    try:
        lines = events.read_text().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "START":
            out.append((int(parts[1]), int(parts[2])))
    return out


def wait_new_start(events: Path, seen: int, timeout: float) -> tuple[int, int] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = starts(events)
        if len(got) > seen:
            return got[seen]
        time.sleep(0.0005)
    return None


# ------------------------------------------------------------------ systems ---


class System:
    name = "?"

    def __init__(self, work: Path) -> None:
        self.dir = work / f"{self.name}-{random.randrange(10**6)}"
        self.dir.mkdir(parents=True)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, services: list[tuple[str, list[str], dict[str, Any]]]) -> None:
        raise NotImplementedError  # each system below implements it

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def daemon_pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None


class Medic(System):
    name = "medic"

    def start(self, services: list[tuple[str, list[str], dict[str, Any]]]) -> None:
        lines = []
        for name, argv, opts in services:
            lines.append(f"[services.{name}]\ncommand = {json.dumps(argv)}")
            lines.append('start_time = "100ms"\nhang_grace = "2s"')
            lines.append(
                'backoff = { initial = "250ms", factor = 2, max = "4s", jitter = 0, reset_after = "1s" }'
            )
            limit = opts.get(
                "crash_loop", '{ max_restarts = 1000, within = "60s", cooldown = "5s" }'
            )
            lines.append(f"crash_loop = {limit}")
            if "http_port" in opts:
                lines.append(
                    f'[[services.{name}.probes]]\ntype = "http"\n'
                    f'url = "http://127.0.0.1:{opts["http_port"]}/"\n'
                    'interval = "1s"\ntimeout = "500ms"\nfailures = 3'
                )
        config = self.dir / "medic.toml"
        config.write_text("\n".join(lines) + "\n")
        argv = [
            sys.executable,
            "-m",
            "medic",
            "--store",
            str(self.dir / "m.db"),
            "-c",
            str(config),
            "up",
            "--quiet",
        ]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sock = self.dir / "medic.sock"
        deadline = time.monotonic() + 30
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.01)


class Supervisord(System):
    name = "supervisord"

    def start(self, services: list[tuple[str, list[str], dict[str, Any]]]) -> None:
        d = self.dir
        conf = textwrap.dedent(f"""\
            [unix_http_server]
            file={d}/supervisor.sock
            [supervisord]
            logfile={d}/supervisord.log
            pidfile={d}/supervisord.pid
            childlogdir={d}
            nodaemon=true
            [rpcinterface:supervisor]
            supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
            """)
        for name, argv, _ in services:
            conf += textwrap.dedent(f"""\
                [program:{name}]
                command={" ".join(argv)}
                autorestart=true
                startsecs=1
                startretries=3
                stdout_logfile={d}/{name}.out
                stderr_logfile={d}/{name}.err
                """)
        (d / "supervisord.conf").write_text(conf)
        self.proc = subprocess.Popen(
            [str(BIN / "supervisord"), "-c", str(d / "supervisord.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


class PM2(System):
    name = "pm2"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "PM2_HOME": str(self.dir / "home")}

    def start(self, services: list[tuple[str, list[str], dict[str, Any]]]) -> None:
        for name, argv, _ in services:
            subprocess.run(
                ["pm2", "start", argv[0], "--name", name, "--interpreter", "none", "--", *argv[1:]],
                env=self._env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=True,
                timeout=60,
            )

    def stop(self) -> None:
        subprocess.run(
            ["pm2", "kill"],
            env=self._env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )

    def daemon_pid(self) -> int | None:
        try:
            return int((self.dir / "home" / "pm2.pid").read_text().strip())
        except (OSError, ValueError):
            return None


# ---------------------------------------------------------------- scenarios ---


def kill9(
    kinds: list[type[System]], child: Path, work: Path, trials: int, rounds: int
) -> dict[str, Any]:
    samples: dict[str, list[float]] = {k.name: [] for k in kinds}
    lost: dict[str, int] = {k.name: 0 for k in kinds}
    per_round = max(1, trials // rounds)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("kill -9 → new child", total=per_round * rounds * len(kinds))
        for _ in range(rounds):
            for kind in kinds:
                system = kind(work)
                events = system.dir / "events"
                system.start([("svc", [str(child), "run", str(events)], {})])
                try:
                    got = wait_new_start(events, 0, 30)
                    seen = 1
                    for _ in range(per_round):
                        if got is None:
                            break
                        time.sleep(random.uniform(1.3, 2.3))
                        killed_at = time.time_ns()
                        os.kill(got[0], signal.SIGKILL)
                        got = wait_new_start(events, seen, 10)
                        seen += 1
                        if got is None:
                            lost[kind.name] += 1
                        else:
                            samples[kind.name].append((got[1] - killed_at) / 1e6)
                        progress.advance(task)
                finally:
                    system.stop()
    out = {}
    for name, values in samples.items():
        if values:
            values.sort()
            out[name] = {
                "n": len(values),
                "median_ms": statistics.median(values),
                "p95_ms": values[min(len(values) - 1, int(0.95 * len(values)))],
                "min_ms": values[0],
                "max_ms": values[-1],
                "lost": lost[name],
                "samples_ms": values,
            }
    return out


def hang(
    kinds: list[type[System]], child: Path, work: Path, medic_trials: int, window: float
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("SIGSTOP → new child", total=medic_trials + len(kinds) - 1)
        for kind in kinds:
            port = free_port()
            system = kind(work)
            events = system.dir / "events"
            system.start(
                [("svc", [str(child), "http", str(events), str(port)], {"http_port": port})]
            )
            values: list[float | None] = []
            try:
                got = wait_new_start(events, 0, 30)
                seen = 1
                for _ in range(medic_trials if kind is Medic else 1):
                    if got is None:
                        break
                    time.sleep(2.5)
                    stopped_at = time.time_ns()
                    os.kill(got[0], signal.SIGSTOP)
                    new = wait_new_start(events, seen, window)
                    seen += 1
                    values.append(None if new is None else (new[1] - stopped_at) / 1e6)
                    if new is None:
                        os.kill(got[0], signal.SIGKILL)
                        new = wait_new_start(events, seen, 10)
                        seen += 1
                    got = new
                    progress.advance(task)
            finally:
                system.stop()
            done = [v for v in values if v is not None]
            out[kind.name] = {
                "trials": len(values),
                "replaced": len(done),
                "window_s": window,
                "median_ms": statistics.median(done) if done else None,
                "samples_ms": values,
            }
    return out


def crashloop(kinds: list[type[System]], child: Path, work: Path, window: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    limit = '{ max_restarts = 5, within = "60s", cooldown = "5s" }'
    for kind in kinds:
        system = kind(work)
        events = system.dir / "events"
        with console.status(f"crash loop: {kind.name} for {window:g}s"):
            system.start([("svc", [str(child), "crash", str(events)], {"crash_loop": limit})])
            time.sleep(window)
            system.stop()
        times = [ns / 1e9 for _, ns in starts(events)]
        gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
        out[kind.name] = {"starts": len(times), "gaps_s": gaps, "window_s": window}
    return out


def idle50(
    kinds: list[type[System]], child: Path, work: Path, seconds: float, probes: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in kinds:
        system = kind(work)
        services = []
        for i in range(50):
            port = free_port()
            opts = {"http_port": port} if probes else {}
            services.append(
                (f"s{i:02d}", [str(child), "http", str(system.dir / f"e{i}"), str(port)], opts)
            )
        with console.status(
            f"idle, 50 services: {kind.name} ({'with' if probes else 'no'} probes)"
        ):
            system.start(services)
            time.sleep(8)  # everything started and settled
            pid = system.daemon_pid()
            if pid is None:
                system.stop()
                continue
            proc = psutil.Process(pid)
            cpu0, ctx0, t0 = (
                sum(proc.cpu_times()[:2]),
                sum(proc.num_ctx_switches()),
                time.monotonic(),
            )
            time.sleep(seconds)
            cpu1, ctx1, t1 = (
                sum(proc.cpu_times()[:2]),
                sum(proc.num_ctx_switches()),
                time.monotonic(),
            )
            rss = proc.memory_info().rss
            system.stop()
        out[kind.name] = {
            "cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / (t1 - t0), 3),
            "context_switches_per_s": round((ctx1 - ctx0) / (t1 - t0), 2),
            "rss_mb": round(rss / 2**20, 1),
            "seconds": seconds,
            "probes": probes,
        }
    return out


def _pm2_version(listing: str | None) -> str | None:
    found = re.search(r"pm2@([\w.]+)", listing or "")
    return found.group(1) if found else None


def machine() -> dict[str, Any]:
    def ver(cmd: list[str]) -> str | None:
        try:
            return (
                subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
                or None
            )
        except OSError:
            return None

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "medic": version("medic"),
        "supervisor": version("supervisor"),
        "pm2": _pm2_version(ver(["npm", "ls", "-g", "pm2", "--depth=0"])),
        "load_avg": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="few trials, for a smoke run")
    parser.add_argument("--scenarios", default="kill9,hang,crashloop,idle50")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    trials, rounds = (8, 2) if args.quick else (40, 4)
    kinds: list[type[System]] = [Medic, Supervisord]
    if shutil.which("pm2"):
        kinds.append(PM2)
    work = Path(tempfile.mkdtemp(prefix="medic-bench-"))
    child = build_child(work)
    results: dict[str, Any] = {
        "machine": machine(),
        "command": " ".join(["bench/supervisor.py", *sys.argv[1:]]),
    }
    wanted = args.scenarios.split(",")
    try:
        if "kill9" in wanted:
            results["kill9"] = kill9(kinds, child, work, trials, rounds)
        if "hang" in wanted:
            results["hang"] = hang(
                kinds, child, work, 2 if args.quick else 5, 6 if args.quick else 15
            )
        if "crashloop" in wanted:
            results["crashloop"] = crashloop(kinds, child, work, 8 if args.quick else 20)
        if "idle50" in wanted:
            seconds = 5 if args.quick else 20
            results["idle50"] = idle50([Medic, Supervisord], child, work, seconds, probes=True)
            results["idle50_no_probes"] = idle50([Medic], child, work, seconds, probes=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"wrote {args.out}")


def report(results: dict[str, Any]) -> None:
    console.print(f"machine: {results['machine']}")
    if "kill9" in results:
        k = results["kill9"]
        base = k.get("medic", {}).get("median_ms")
        console.print("\n[bold]kill -9 → new child running[/bold] (ms)")
        for name, r in k.items():
            ratio = f"{r['median_ms'] / base:.1f}× medic" if base else ""
            console.print(
                f"  {name:12} n={r['n']:3} median {r['median_ms']:8.2f}  p95 {r['p95_ms']:8.2f}  max {r['max_ms']:8.2f}  {ratio}"
            )
    if "hang" in results:
        console.print("\n[bold]SIGSTOP hang → new child running[/bold]")
        for name, r in results["hang"].items():
            med = (
                f"median {r['median_ms']:.0f} ms"
                if r["median_ms"] is not None
                else f"never within {r['window_s']:g} s"
            )
            console.print(f"  {name:12} replaced {r['replaced']}/{r['trials']}  {med}")
    if "crashloop" in results:
        console.print("\n[bold]instant crash loop[/bold]: gaps between starts (s)")
        for name, r in results["crashloop"].items():
            console.print(
                f"  {name:12} {r['starts']} starts in {r['window_s']:g}s: {r['gaps_s'][:24]}"
            )
    for key in ("idle50", "idle50_no_probes"):
        if key in results:
            console.print(f"\n[bold]{key}[/bold]")
            for name, r in results[key].items():
                console.print(
                    f"  {name:12} cpu {r['cpu_percent_of_one_core']:.2f}% of a core, {r['context_switches_per_s']}/s ctx switches, RSS {r['rss_mb']} MB"
                )


if __name__ == "__main__":
    main()
