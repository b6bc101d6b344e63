"""Which runbooks fit an incident, and the L2 rung that runs the safe ones unattended.

Issue 6: "at level L2 the engine runs the matching non-destructive runbooks by
itself". A runbook with any destructive step waits for a human, whatever it
matches; its name still lands on the timeline so the human knows it exists.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from medic.clock import Clock, system_clock
from medic.errors import UserError
from medic.recovery._escalation import Level
from medic.recovery._runbook_actions import MedicActions, MedicActionSet
from medic.recovery._runbook_model import Runbook
from medic.recovery._runbooks import RunbookResult, RunbookRunner
from medic.taxonomy import Classification, Kind, Severity
from medic.tracker import IncidentView, Tracker

__all__ = [
    "RunbookLevelAction",
    "incident_facts",
    "matching_runbooks",
    "run_matching_non_destructive",
]


@dataclass(frozen=True, slots=True)
class Facts:
    service: str
    kind: Kind | None
    fingerprints: frozenset[str]
    severity: Severity | None


def incident_facts(tracker: Tracker, incident: IncidentView) -> Facts:
    """What matching needs from an incident: its service, severity, and its issues' kind and hashes."""
    kind: Kind | None = None
    hashes: set[str] = set()
    for issue_id in incident.issue_ids:
        issue = tracker.issue(issue_id)
        if kind is None:
            with contextlib.suppress(ValueError):
                kind = Kind.parse(issue.kind)
        hashes.update(str(h.get("hash")) for h in issue.hashes if h.get("hash"))
    return Facts(incident.service, kind, frozenset(hashes), incident.severity)


def matching_runbooks(
    runbooks: Iterable[Runbook],
    *,
    service: str,
    kind: Kind | None = None,
    fingerprints: Iterable[str] = (),
    severity: Severity | None = None,
    classification: Classification | None = None,
) -> list[Runbook]:
    """The runbooks whose `applies_to` fits; a classification supplies kind and severity."""
    if classification is not None:
        kind = kind or classification.kind
        severity = severity or classification.severity
    prints = frozenset(fingerprints)
    return [
        rb
        for rb in runbooks
        if rb.applies_to.matches(service=service, kind=kind, fingerprints=prints, severity=severity)
    ]


async def run_matching_non_destructive(
    incident: IncidentView,
    *,
    runbooks: Sequence[Runbook],
    tracker: Tracker,
    runner: RunbookRunner,
) -> list[RunbookResult]:
    """Run, one after another, every matching runbook that has no destructive step."""
    facts = await asyncio.to_thread(incident_facts, tracker, incident)
    fitting = matching_runbooks(
        runbooks,
        service=facts.service,
        kind=facts.kind,
        fingerprints=facts.fingerprints,
        severity=facts.severity,
    )
    results: list[RunbookResult] = []
    for rb in fitting:
        if rb.destructive:
            await asyncio.to_thread(
                tracker.add_timeline,
                incident.id,
                kind="runbook_step",
                message=f"runbook {rb.name} matches but has destructive steps: "
                f"run it by hand with `medic runbook run {rb.name} --incident {incident.id}`",
                actor=runner.actor,
                details={"runbook": rb.name, "outcome": "skipped", "reason": "destructive"},
            )
            continue
        try:
            results.append(await runner.run(rb, incident=incident))
        except UserError as exc:  # a value that cannot be used: say so, try the next runbook
            await asyncio.to_thread(
                tracker.add_timeline,
                incident.id,
                kind="runbook_step",
                message=f"runbook {rb.name} could not start: {exc}",
                actor=runner.actor,
                details={"runbook": rb.name, "outcome": "skipped", "reason": str(exc)},
            )
    return results


@dataclass(frozen=True)
class RunbookLevelAction:
    """An `Escalator` action for L2: `Escalator(actions={2: RunbookLevelAction(...)})`.

    Runbooks can take minutes, and the escalator awaits its actions inside `tick`;
    give `spawn` (say `task_group.create_task` of the app's task group) so the
    ladder of other incidents keeps moving while they run.
    """

    runbooks: Sequence[Runbook]
    tracker: Tracker
    actions: MedicActions = field(default_factory=lambda: MedicActionSet())
    clock: Clock = system_clock
    spawn: Callable[[Coroutine[Any, Any, list[RunbookResult]]], object] | None = None

    async def __call__(self, incident: IncidentView, level: Level, loop: int) -> None:
        runner = RunbookRunner(actions=self.actions, tracker=self.tracker, clock=self.clock)
        work = run_matching_non_destructive(
            incident, runbooks=self.runbooks, tracker=self.tracker, runner=runner
        )
        if self.spawn is not None:
            self.spawn(work)
        else:
            await work
