"""Running a runbook: steps in order, each under its timeout, each verified, first failure stops.

A dry run renders every step (with its context and the values filled in) and
touches nothing: no process, no request, no medic action, no record. A real run
asks before each destructive step (`confirm`), takes a checkpoint before each
`backup_first` step, and, given an incident, puts every step on its timeline and
the whole run in its recovery attempts, so the record says what was done and why.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from medic.clock import Clock, system_clock
from medic.errors import InvalidInput, MedicError
from medic.recovery._runbook_actions import MedicActions, MedicActionSet
from medic.recovery._runbook_io import Probe, http_request, run_argv, tcp_connect
from medic.recovery._runbook_model import (
    HttpAction,
    HttpVerify,
    MedicAction,
    MedicActionName,
    RunAction,
    Runbook,
    RunVerify,
    Step,
    TcpVerify,
    substitute,
)
from medic.tracker import IncidentView, Tracker

__all__ = ["RunbookResult", "RunbookRunner", "StepOutcome", "StepResult", "describe_step"]

Confirm = bool | Callable[[Step], bool]


class StepOutcome(enum.StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"
    PLANNED = "planned"  # a dry run: what would have been done


@dataclass(frozen=True, slots=True)
class StepResult:
    index: int
    name: str
    context: str
    plan: str
    outcome: StepOutcome
    started_at: datetime | None = None
    ended_at: datetime | None = None
    reason: str = ""
    output: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunbookResult:
    runbook: str
    outcome: StepOutcome
    steps: tuple[StepResult, ...]
    dry_run: bool
    started_at: datetime
    ended_at: datetime
    incident_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in (StepOutcome.SUCCESS, StepOutcome.PLANNED)


def describe_step(step: Step) -> str:
    """One line saying what the step does, as a dry run prints it."""
    a = step.action
    if isinstance(a, RunAction):
        text = "run " + " ".join(a.argv)
    elif isinstance(a, HttpAction):
        text = f"http {a.method} {a.url}" + (f" (body {len(a.body)} bytes)" if a.body else "")
    else:
        args = ", ".join(f"{k}={v}" for k, v in a.args.items())
        text = f"medic {a.name}({args})"
    v = step.verify
    if isinstance(v, RunVerify):
        text += f"; verify: run {' '.join(v.argv)} exits {v.expect_exit}"
    elif isinstance(v, HttpVerify):
        text += f"; verify: GET {v.url} is {v.expect_status}"
    elif isinstance(v, TcpVerify):
        text += f"; verify: tcp {v.host}:{v.port} open"
    if step.destructive:
        text = "[destructive: asks first] " + text
    if step.backup_first:
        text = f"checkpoint {list(step.backup_paths) or '(service default)'} first; " + text
    return text + f" [timeout {step.timeout.total_seconds():g}s]"


def _render(step: Step, values: Mapping[str, str], keep: bool) -> Step:
    def s(text: str) -> str:
        return substitute(text, values, keep_missing=keep)

    a = step.action
    action: RunAction | HttpAction | MedicAction
    if isinstance(a, RunAction):
        action = RunAction(tuple(s(x) for x in a.argv))
    elif isinstance(a, HttpAction):
        action = dataclasses.replace(a, url=s(a.url), body=s(a.body) if a.body else a.body)
    else:
        args = {
            k: tuple(s(x) for x in v) if isinstance(v, tuple) else s(v) if isinstance(v, str) else v
            for k, v in a.args.items()
        }
        action = MedicAction(a.name, args)
    v = step.verify
    verify: RunVerify | HttpVerify | TcpVerify | None = v
    if isinstance(v, RunVerify):
        verify = RunVerify(tuple(s(x) for x in v.argv), v.expect_exit)
    elif isinstance(v, HttpVerify):
        verify = dataclasses.replace(v, url=s(v.url))
    elif isinstance(v, TcpVerify):
        verify = TcpVerify(s(v.host), v.port)
    paths = tuple(s(p) for p in step.backup_paths)
    return dataclasses.replace(step, action=action, verify=verify, backup_paths=paths)


@dataclass
class RunbookRunner:
    """Runs runbooks with the medic actions, tracker and clock of its context."""

    actions: MedicActions = field(default_factory=lambda: MedicActionSet())
    tracker: Tracker | None = None
    clock: Clock = system_clock
    output_limit: int = 4096
    actor: str = "medic"

    def values(
        self, runbook: Runbook, *, incident: IncidentView | None, variables: Mapping[str, str]
    ) -> dict[str, str]:
        """The runbook's defaults, overridden by `variables`, plus the incident's (checked when used)."""
        unknown = sorted(set(variables) - set(runbook.variables))
        if unknown:
            declared = ", ".join(sorted(runbook.variables)) or "none"
            raise InvalidInput(
                f"runbook {runbook.name}: unknown variable {', '.join(unknown)} (declared: {declared})"
            )
        values = {k: v for k, v in runbook.variables.items() if v is not None} | dict(variables)
        if incident is not None:
            values |= {
                "incident.id": str(incident.id),
                "incident.service": incident.service,
                "incident.severity": str(incident.severity),
            }
        return values

    async def run(
        self,
        runbook: Runbook,
        *,
        incident: IncidentView | None = None,
        variables: Mapping[str, str] | None = None,
        dry_run: bool = False,
        confirm: Confirm = False,
    ) -> RunbookResult:
        """Run (or, with `dry_run`, only describe) every step; stop at the first that fails."""
        values = self.values(runbook, incident=incident, variables=variables or {})
        # Render everything first: a missing variable fails before anything has run.
        steps = [_render(step, values, keep=dry_run) for step in runbook.steps]
        started = self.clock.now()
        results: list[StepResult] = []
        stopped: StepResult | None = None
        for index, step in enumerate(steps):
            plan = describe_step(step)
            if dry_run:
                results.append(
                    StepResult(index, step.name, step.context, plan, StepOutcome.PLANNED)
                )
                continue
            if stopped is not None:
                why = f"not run: step {stopped.index + 1} ({stopped.name}) ended {stopped.outcome}"
                results.append(
                    StepResult(
                        index, step.name, step.context, plan, StepOutcome.SKIPPED, reason=why
                    )
                )
                continue
            result = await self._step(index, step, plan, confirm)
            results.append(result)
            await self._note(runbook, incident, result, len(steps))
            if result.outcome is not StepOutcome.SUCCESS:
                stopped = result
        outcome = (
            StepOutcome.PLANNED
            if dry_run
            else stopped.outcome
            if stopped is not None
            else StepOutcome.SUCCESS
        )
        run_result = RunbookResult(
            runbook.name,
            outcome,
            tuple(results),
            dry_run,
            started,
            self.clock.now(),
            incident.id if incident else None,
        )
        if incident is not None and not dry_run:
            await self._record(runbook, incident, run_result, stopped)
        return run_result

    async def _step(self, index: int, step: Step, plan: str, confirm: Confirm) -> StepResult:
        base = StepResult(index, step.name, step.context, plan, StepOutcome.SKIPPED)
        if step.destructive:
            agreed = (
                confirm if isinstance(confirm, bool) else await asyncio.to_thread(confirm, step)
            )
            if not agreed:
                return dataclasses.replace(
                    base, reason="destructive step not confirmed (pass --yes or answer yes)"
                )
        started = self.clock.now()
        evidence: dict[str, Any] = {}
        timeout = step.timeout.total_seconds()
        try:
            if step.backup_first:
                evidence["checkpoint"] = await asyncio.wait_for(
                    self.actions.checkpoint(paths=step.backup_paths), timeout
                )
            probe = await self._act(step, timeout)
            evidence["action"] = probe.detail
            if probe.ok and step.verify is not None:
                verified = await self._verify(step, timeout)
                evidence["verify"] = verified.detail
                if not verified.ok:
                    probe = dataclasses.replace(
                        verified,
                        detail=f"verification failed: {verified.detail}",
                        output=probe.output + verified.output,
                    )
        except TimeoutError:
            probe = Probe(ok=False, timed_out=True, detail=f"timed out after {timeout:g}s")
        except MedicError as exc:
            probe = Probe(ok=False, detail=f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 (an injected medic action failed: the step failed, the run is still recorded)
            probe = Probe(ok=False, detail=f"{type(exc).__name__}: {exc}")
        outcome = (
            StepOutcome.SUCCESS
            if probe.ok
            else StepOutcome.TIMEOUT
            if probe.timed_out
            else StepOutcome.FAILURE
        )
        if probe.exit_code is not None:
            evidence["exit_code"] = probe.exit_code
        if probe.status is not None:
            evidence["status"] = probe.status
        return dataclasses.replace(
            base,
            outcome=outcome,
            started_at=started,
            ended_at=self.clock.now(),
            reason="" if probe.ok else probe.detail,
            output=probe.output[-self.output_limit :],
            evidence=evidence,
        )

    async def _act(self, step: Step, timeout: float) -> Probe:
        a = step.action
        if isinstance(a, RunAction):
            return await run_argv(a.argv, timeout=timeout, limit=self.output_limit)
        if isinstance(a, HttpAction):
            return await http_request(
                method=a.method,
                url=a.url,
                body=a.body,
                content_type=a.content_type,
                expect=a.expect_status,
                expect_body=None,
                timeout=timeout,
                limit=self.output_limit,
            )
        detail = await asyncio.wait_for(self._medic(a), timeout)
        return Probe(ok=True, detail=detail)

    async def _medic(self, a: MedicAction) -> str:
        def arg(key: str) -> str:
            value = a.args.get(key)
            if not isinstance(value, str):
                raise InvalidInput(f"medic {a.name}: argument {key!r} must be a string")
            return value

        name, acts = a.name, self.actions
        if name is MedicActionName.RESTART:
            await acts.restart(service=arg("service"))
        elif name is MedicActionName.CHECKPOINT:
            paths = a.args.get("paths", ())
            cid = await acts.checkpoint(paths=tuple(paths) if isinstance(paths, tuple) else ())
            return f"checkpoint {cid}"
        elif name is MedicActionName.ROLLBACK:
            await acts.rollback(checkpoint_id=arg("checkpoint"))
        elif name is MedicActionName.RESTORE:
            await acts.restore(snapshot=arg("snapshot"))
        elif name is MedicActionName.FAILOVER:
            await acts.failover(group=arg("group"))
        else:
            on = a.args.get("on", True)
            await acts.set_degraded(
                service=arg("service"), feature=arg("feature"), on=bool(on is True)
            )
        return f"medic {name} done"

    async def _verify(self, step: Step, timeout: float) -> Probe:
        v = step.verify
        if isinstance(v, RunVerify):
            return await run_argv(
                v.argv, timeout=timeout, limit=self.output_limit, expect_exit=v.expect_exit
            )
        if isinstance(v, HttpVerify):
            return await http_request(
                method="GET",
                url=v.url,
                body=None,
                expect=(v.expect_status,),
                expect_body=v.expect_body,
                timeout=timeout,
                limit=self.output_limit,
            )
        if isinstance(v, TcpVerify):
            return await tcp_connect(host=v.host, port=v.port, timeout=timeout)
        return Probe(ok=True)

    async def _note(
        self, runbook: Runbook, incident: IncidentView | None, r: StepResult, total: int
    ) -> None:
        if incident is None or self.tracker is None:
            return
        message = f"runbook {runbook.name} step {r.index + 1}/{total} {r.name}: {r.outcome}"
        if r.reason:
            message += f" ({r.reason})"
        details = {
            "runbook": runbook.name,
            "step": r.index + 1,
            "name": r.name,
            "context": r.context,
            "plan": r.plan,
            "outcome": str(r.outcome),
            "reason": r.reason,
            "output_tail": r.output[-1024:],
            "evidence": dict(r.evidence),
        }
        await asyncio.to_thread(
            self.tracker.add_timeline,
            incident.id,
            kind="runbook_step",
            message=message,
            actor=self.actor,
            details=details,
            at=r.ended_at,
        )

    async def _record(
        self,
        runbook: Runbook,
        incident: IncidentView,
        result: RunbookResult,
        stopped: StepResult | None,
    ) -> None:
        if self.tracker is None:
            return
        tracker, action = self.tracker, f"runbook:{runbook.name}"

        def record() -> None:
            done = sum(1 for a in tracker.recovery_attempts(incident.id) if a.action == action)
            tracker.record_recovery(
                incident.id,
                action=action,
                attempt=done + 1,
                started_at=result.started_at,
                ended_at=result.ended_at,
                outcome=str(result.outcome),
                error=f"step {stopped.index + 1} {stopped.name}: {stopped.reason}"
                if stopped
                else None,
                evidence={
                    "steps": [
                        {"name": s.name, "outcome": str(s.outcome), **s.evidence}
                        for s in result.steps
                    ],
                    "source": runbook.source,
                },
                actor=self.actor,
            )

        await asyncio.to_thread(record)
