"""`medic runbook list|show|run`: declared procedures, read from a folder of YAML or JSON files.

The CLI has no supervisor, so medic actions (restart, checkpoint, …) are not
available here: a step that needs one fails with a clear reason, before any
destructive step after it can run. Wiring the supervisor's and the checkpoint
store's actions into runbooks belongs to the recovery engine inside `medic up`.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from rich.text import Text

from medic.cli._main import Obj, cli
from medic.cli._render import actor_option, console, echo_json, json_option, open_tracker, table
from medic.config import load_config, load_runbooks
from medic.errors import InvalidInput, NotFound
from medic.recovery import (
    MedicActionSet,
    Runbook,
    RunbookResult,
    RunbookRunner,
    Step,
    StepOutcome,
    describe_step,
)

__all__: list[str] = []

OUTPUT_LINES = 10


def _folder(ctx: click.Context, folder: Path | None) -> Path:
    """--dir, else the config's `runbooks` folder (default runbooks/ beside it), else ./runbooks."""
    if folder is not None:
        return folder
    obj = ctx.find_object(Obj)
    if obj is None or obj.config is None:
        return Path("runbooks")
    base = obj.config.resolve().parent
    if obj.config.is_file():
        return (base / load_config(obj.config).model.runbooks).resolve()
    return base / "runbooks"


def _find(runbooks: list[Runbook], name: str, folder: Path) -> Runbook:
    for rb in runbooks:
        if rb.name == name:
            return rb
    known = ", ".join(rb.name for rb in runbooks) or "none"
    raise NotFound(f"no runbook {name!r} in {folder} (known: {known})")


def dir_option(func: Any) -> Any:
    return click.option(
        "--dir",
        "folder",
        type=click.Path(file_okay=False, path_type=Path),
        help="Folder of runbook files (default: runbooks/ beside the config file).",
    )(func)


def _applies(rb: Runbook) -> str:
    a = rb.applies_to
    parts = [
        f"service={','.join(a.services)}" if a.services else "",
        f"kind={','.join(k.value for k in a.kinds)}" if a.kinds else "",
        f"severity={','.join(map(str, a.severities))}" if a.severities else "",
        f"fingerprint={','.join(a.fingerprints)}" if a.fingerprints else "",
    ]
    return " ".join(p for p in parts if p) or "(run by hand only)"


def _step_json(step: Step) -> dict[str, Any]:
    return {
        "name": step.name,
        "context": step.context,
        "plan": describe_step(step),
        "timeout_s": step.timeout / timedelta(seconds=1),
        "destructive": step.destructive,
        "backup_first": step.backup_first,
    }


def _runbook_json(rb: Runbook, *, steps: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": rb.name,
        "description": rb.description,
        "source": rb.source,
        "applies_to": _applies(rb),
        "destructive": rb.destructive,
        "variables": dict(rb.variables),
    }
    if steps:
        out["steps"] = [_step_json(s) for s in rb.steps]
    else:
        out["steps"] = len(rb.steps)
    return out


@cli.group("runbook")
def runbook_group() -> None:
    """Declared procedures: context → action → verification, with dry run and confirmation."""


@runbook_group.command("list")
@dir_option
@json_option
@click.pass_context
def list_command(ctx: click.Context, folder: Path | None, as_json: bool) -> None:
    """List the runbooks in the folder."""
    where = _folder(ctx, folder)
    runbooks = load_runbooks(where)
    if as_json:
        echo_json([_runbook_json(rb, steps=False) for rb in runbooks])
        return
    rows = [
        (
            rb.name,
            str(len(rb.steps)),
            "yes" if rb.destructive else "no",
            _applies(rb),
            " ".join(rb.description.split())[:80],
        )
        for rb in runbooks
    ]
    t = table(
        f"runbooks in {where}", ["name", "steps", "destructive", "applies to", "description"], rows
    )
    console().print(t)


@runbook_group.command("show")
@click.argument("name")
@dir_option
@json_option
@click.pass_context
def show_command(ctx: click.Context, name: str, folder: Path | None, as_json: bool) -> None:
    """Show a runbook: what it is for and each step with its context."""
    where = _folder(ctx, folder)
    rb = _find(load_runbooks(where), name, where)
    if as_json:
        echo_json(_runbook_json(rb, steps=True))
        return
    out = console()
    out.print(Text(f"{rb.name}  ({rb.source})", style="bold"))
    out.print(Text(" ".join(rb.description.split())))
    out.print(Text(f"applies to: {_applies(rb)}"))
    if rb.variables:
        shown = ", ".join(
            f"{k}={v if v is not None else '(required)'}" for k, v in rb.variables.items()
        )
        out.print(Text(f"variables: {shown}"))
    for i, step in enumerate(rb.steps, 1):
        flags = [
            f
            for f, on in (("destructive", step.destructive), ("backup first", step.backup_first))
            if on
        ]
        out.print(
            Text(f"\n{i}. {step.name}" + (f"  [{', '.join(flags)}]" if flags else ""), style="bold")
        )
        out.print(Text(f"   why:  {step.context}"))
        out.print(Text(f"   does: {describe_step(step)}"))


def _var(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise InvalidInput(f"--var: expected NAME=VALUE, got {text!r}")
    return key.strip(), value


def _ask(step: Step) -> bool:
    return click.confirm(
        f"Step {step.name!r} is destructive ({step.context.strip()}). Run it?", default=False
    )


def _print_result(result: RunbookResult) -> None:
    out = console()
    if result.dry_run:
        out.print(Text(f"DRY RUN of {result.runbook}: nothing is changed.", style="bold"))
    for s in result.steps:
        out.print(Text(f"\n{s.index + 1}. {s.name}: {s.outcome}", style="bold"))
        out.print(Text(f"   why:  {s.context.strip()}"))
        out.print(Text(f"   {'would' if result.dry_run else 'does'}: {s.plan}"))
        if s.reason:
            out.print(Text(f"   reason: {s.reason}"))
        for line in s.output.splitlines()[-OUTPUT_LINES:]:
            out.print(Text(f"   | {line}"))
    out.print(Text(f"\nrunbook {result.runbook}: {result.outcome}", style="bold"))


@runbook_group.command("run")
@click.argument("name")
@dir_option
@click.option("--dry-run", is_flag=True, help="Print every step with its context; change nothing.")
@click.option("--yes", is_flag=True, help="Run destructive steps without asking.")
@click.option("--incident", "incident_id", type=int, help="Record every step on this incident.")
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE", help="Set a variable.")
@actor_option
@json_option
@click.pass_context
def run_command(
    ctx: click.Context,
    name: str,
    folder: Path | None,
    dry_run: bool,
    yes: bool,
    incident_id: int | None,
    variables: tuple[str, ...],
    actor: str,
    as_json: bool,
) -> None:
    """Run a runbook's steps in order; the first failed step or verification stops it.

    Destructive steps run only with --yes or after a yes at the prompt; without a
    terminal and without --yes they are skipped. Exits 1 unless every step succeeded.
    """
    where = _folder(ctx, folder)
    rb = _find(load_runbooks(where), name, where)
    tracker = open_tracker(ctx) if incident_id is not None else None
    incident = tracker.incident(incident_id) if tracker and incident_id is not None else None
    runner = RunbookRunner(
        actions=MedicActionSet(context="the medic CLI"), tracker=tracker, actor=actor
    )
    confirm: bool | Any = True if yes else (_ask if sys.stdin.isatty() and not as_json else False)
    result = asyncio.run(
        runner.run(
            rb,
            incident=incident,
            variables=dict(_var(v) for v in variables),
            dry_run=dry_run,
            confirm=confirm,
        )
    )
    if as_json:
        echo_json(result)
    else:
        _print_result(result)
    if result.outcome not in (StepOutcome.SUCCESS, StepOutcome.PLANNED):
        ctx.exit(1)
