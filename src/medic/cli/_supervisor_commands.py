"""Commands that run and drive the supervisor: check, up, status, start, stop, restart, logs, reload, down.

`medic up` runs in this process; every other command talks to it through the
control socket beside the store, so they need the same `-c`/`--store` as `up`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from medic.app import ControlClient, RuntimePaths
from medic.cli._main import Obj, cli
from medic.errors import UserError


def _with_config(command: Callable[..., None]) -> Callable[..., None]:
    """Accept `-c FILE` after the subcommand too (`medic up -c medic.toml`), as the issue's users type it."""

    def set_config(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
        if value is not None:
            ctx.ensure_object(Obj).config = value

    return click.option(
        "-c", "--config", type=click.Path(dir_okay=False, path_type=Path), expose_value=False,
        callback=set_config, is_eager=True, help="medic.toml to use (same as the global -c).",
    )(command)  # fmt: skip


def _config(obj: Obj) -> Path:
    if obj.config is None:
        raise UserError("no medic.toml in the current directory; pass -c FILE")
    return obj.config


def _client(obj: Obj) -> ControlClient:
    paths = RuntimePaths.for_store(obj.store_url(), config=obj.config)
    return ControlClient(paths.socket)


@cli.command()
@click.pass_obj
@_with_config
def check(obj: Obj) -> None:
    """Validate medic.toml without running anything."""
    from medic.config import build_plan, load_config

    path = _config(obj)
    plan = build_plan(load_config(path), log_dir=None)  # also: every alert secret is set
    channels = len(plan.alerts.channels)
    click.echo(
        f"{path}: ok ({_count(len(plan.services), 'service')}, "
        f"{_count(len(plan.probes), 'probe')}, {_count(len(plan.groups), 'group')})"
        + (f"; {_count(channels, 'alert channel')}" if channels else "")
        + (f"; {_count(len(plan.backups), 'backup schedule')}" if plan.backups else "")
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _describe(event: object) -> str | None:
    # Only `up` prints events; the client commands need not load them.
    from medic.events import (
        BackupCreated,
        BackupFailed,
        RollbackCompleted,
        RpoBreached,
        ServiceExited,
        ServiceFailover,
        ServiceFatal,
        ServiceHealthy,
        ServiceKilling,
        ServiceReady,
        ServiceRestarting,
        ServiceUnhealthy,
    )

    match event:
        case ServiceReady():
            return f"{event.service}: ready (pid {event.pid}, via {event.via}, {event.startup_seconds:.2f}s)"
        case ServiceExited(expected=False):
            return f"{event.service}: {event.description}" + (
                f" ({event.reason})" if event.reason else ""
            )
        case ServiceRestarting():
            return f"{event.service}: restarting in {event.delay:.2f}s (failure {event.failures})"
        case ServiceFatal():
            return f"{event.service}: FATAL (crash loop), retrying in {event.cooldown:g}s"
        case ServiceKilling():
            return f"{event.service}: killing pid {event.pid} ({event.stage}): {event.reason}"
        case ServiceUnhealthy():
            return f"{event.service}: unhealthy ({event.probe}): {event.evidence}"
        case ServiceHealthy(recovered=True):
            return f"{event.service}: healthy again ({event.probe})"
        case ServiceFailover():
            return f"group {event.service}: failover {event.from_service} -> {event.to_service}"
        case BackupCreated(schedule=name) if name:
            return f"backup {name}: {event.kind} snapshot {event.snapshot_id} ({event.files} files, {event.duration_s:.2f}s)"
        case BackupFailed(schedule=name) if name:
            return f"backup {name}: FAILED: {event.error}"
        case RpoBreached():
            age = "no verified backup" if event.age_s is None else f"RPO {_age(event.age_s)}"
            return f"backup {event.schedule}: {age}, over the {_age(event.objective_s)} objective"
        case RollbackCompleted(resumed=True):
            return f"finished an interrupted rollback to {event.checkpoint_id} ({event.duration_s:.2f}s)"
    return None


@cli.command()
@click.option(
    "--detach", is_flag=True, help="Run in the background; logs go to medic.out beside the store."
)
@click.option("--quiet", is_flag=True, help="Do not print lifecycle events.")
@click.pass_obj
@_with_config
def up(obj: Obj, detach: bool, quiet: bool) -> None:
    """Start every service and keep them alive until Ctrl-C, SIGTERM or `medic down`."""
    from medic.app import MedicApp
    from medic.config import load_config

    path = _config(obj)
    load_config(path)  # fail fast, in the foreground, on a bad config
    paths = RuntimePaths.for_store(obj.store_url(), config=path)
    if detach:
        _detach(obj, path, paths)
        return

    def echo(event: object) -> None:
        line = _describe(event)
        if line is not None and not quiet:
            click.echo(f"{time.strftime('%H:%M:%S')} {line}")

    app = MedicApp(config_path=path, store_url=obj.store_url(), echo=echo)

    def ready() -> None:
        if not quiet:
            click.echo(f"medic up: {path} (pid {os.getpid()}); control socket {paths.socket}")

    asyncio.run(app.run(on_ready=ready))


def _detach(obj: Obj, path: Path, paths: RuntimePaths) -> None:
    paths.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    argv = [
        sys.executable,
        "-m",
        "medic",
        "--store",
        obj.store_url(),
        "-c",
        str(path),
        "up",
        "--quiet",
    ]
    with open(paths.daemon_log, "ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    client = ControlClient(paths.socket, timeout=2)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UserError(
                f"medic exited at once (code {proc.returncode}); see {paths.daemon_log}"
            )
        try:
            client.call({"cmd": "status"})
        except UserError:
            time.sleep(0.05)
            continue
        click.echo(f"medic running in the background (pid {proc.pid}); logs in {paths.daemon_log}")
        return
    raise UserError(f"medic did not answer within 20s; see {paths.daemon_log}")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the raw status as JSON.")
@click.pass_obj
@_with_config
def status(obj: Obj, as_json: bool) -> None:
    """Each service: state, pid, uptime, restarts, health and the last probe result."""
    answer = _client(obj).call({"cmd": "status"})
    if as_json:
        answer.pop("ok", None)
        click.echo(json.dumps(answer, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("service", "state", "pid", "uptime", "restarts", "health", "last probe", box=None)
    for svc in answer["services"]:
        probe: dict[str, Any] | None = svc.get("last_probe")
        last = (
            "-"
            if not probe
            else f"{probe['probe']}: {'ok' if probe['ok'] else 'FAIL'} {probe['detail']}"
        )
        state = svc["state"] + (f" ({_age(svc['fatal_for'])} left)" if svc.get("fatal_for") else "")
        table.add_row(
            svc["service"], state, str(svc["pid"] or "-"), _age(svc["uptime"]),
            str(svc["restarts"]), svc["health"], last[:80],
        )  # fmt: skip
    if answer["services"] or not answer.get("backups"):
        Console().print(table)  # a backups-only medic has no service table to show
    if answer.get("backups"):
        _print_backups(answer["backups"])
    recovery = answer.get("recovery") or {}
    if recovery.get("running") or recovery.get("recent"):
        _print_recovery(recovery)


def _print_recovery(recovery: dict[str, Any]) -> None:
    """The engine's plans: which run now, and how the last ones ended, step by step."""
    from rich.console import Console
    from rich.table import Table

    table = Table("recovery", "incident", "outcome", "steps", box=None)
    for name in recovery.get("running", []):
        table.add_row(name, "-", "running", "")
    for plan in reversed(recovery.get("recent", [])):
        if plan["recovered"]:
            outcome = f"recovered by {plan['by']}"
        else:
            outcome = f"escalated to L{plan['escalated_to']}"
        table.add_row(
            plan["service"], str(plan["incident"] or "-"), outcome, "; ".join(plan["steps"])[:100]
        )
    Console().print(table)


def _print_backups(backups: list[dict[str, Any]]) -> None:
    """One row per schedule (the RPO against its objective, the last run), then each failure."""
    from datetime import UTC, datetime

    from rich.console import Console
    from rich.table import Table

    table = Table("backup", "rpo", "objective", "", "last verified", "last run", box=None)
    now = datetime.now(UTC)
    failures: list[str] = []
    for b in backups:
        run: dict[str, Any] | None = b.get("last_run")
        verified: dict[str, Any] | None = b.get("last_verified")
        last = "-"
        if run:
            ago = _age((now - datetime.fromisoformat(run["at"])).total_seconds())
            last = f"{ago} ago " + ("ok" if run["ok"] else "FAILED")
            if not run["ok"]:
                failures.append(f"{b['name']}: {run['error']}")
        table.add_row(
            b["name"], _age(b["rpo_s"]), _age(b["objective_s"]),
            "BREACHED" if b["breached"] else "ok",
            verified["snapshot"] if verified else "-", last,
        )  # fmt: skip
    console = Console()
    console.print(table)
    for line in failures:
        console.print(line, markup=False, highlight=False)


def _act(obj: Obj, command: str, service: str) -> None:
    answer = _client(obj).call({"cmd": command, "service": service})
    click.echo(f"{service}: {answer['state']}")


@cli.command()
@click.argument("service")
@click.pass_obj
@_with_config
def start(obj: Obj, service: str) -> None:
    """Start SERVICE now (skips any backoff or crash-loop cooldown)."""
    _act(obj, "start", service)


@cli.command()
@click.argument("service")
@click.pass_obj
@_with_config
def stop(obj: Obj, service: str) -> None:
    """Stop SERVICE gracefully; it stays stopped until `medic start`."""
    _act(obj, "stop", service)


@cli.command()
@click.argument("service")
@click.pass_obj
@_with_config
def restart(obj: Obj, service: str) -> None:
    """Stop SERVICE gracefully and start it again."""
    _act(obj, "restart", service)


@cli.command()
@click.argument("service")
@click.option("-n", "lines", default=50, show_default=True, help="How many recent lines.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@click.pass_obj
@_with_config
def logs(obj: Obj, service: str, lines: int, follow: bool) -> None:
    """Print SERVICE's recent output (and follow it with -f)."""
    request = {"cmd": "logs", "service": service, "n": lines, "follow": follow}
    try:
        for message in _client(obj).stream(request, timeout=None if follow else -1.0):
            for line in message.get("lines", []):
                click.echo(line)
            if "line" in message:
                click.echo(message["line"])
    except KeyboardInterrupt:
        return


@cli.command()
@click.pass_obj
@_with_config
def reload(obj: Obj) -> None:
    """Apply medic.toml changes, restarting only the services that changed."""
    answer = _client(obj).call({"cmd": "reload"})
    for key in ("added", "changed", "removed", "probes_changed"):
        click.echo(f"{key}: {', '.join(answer[key]) or '-'}")
    if answer.get("backups_changed"):
        click.echo("backup schedules: changed, now running the new ones")


@cli.command()
@click.pass_obj
@_with_config
def down(obj: Obj) -> None:
    """Stop every service (reverse dependency order) and end `medic up`."""
    paths = RuntimePaths.for_store(obj.store_url(), config=obj.config)
    client = ControlClient(paths.socket)
    client.call({"cmd": "down"})
    deadline = time.monotonic() + 120
    while paths.socket.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    click.echo("medic is down")
