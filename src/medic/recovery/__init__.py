"""The recovery engine (orchestration layer): escalation and runbooks."""

from medic.recovery._escalation import DEFAULT_LADDER, Condition, Escalator, Fired, Ladder, Level
from medic.recovery._runbook_actions import ActionUnavailable, MedicActions, MedicActionSet
from medic.recovery._runbook_matching import (
    RunbookLevelAction,
    incident_facts,
    matching_runbooks,
    run_matching_non_destructive,
)
from medic.recovery._runbook_model import (
    INCIDENT_VARIABLES,
    AppliesTo,
    HttpAction,
    HttpVerify,
    MedicAction,
    MedicActionName,
    RunAction,
    Runbook,
    RunVerify,
    Step,
    TcpVerify,
    check_value,
    references,
)
from medic.recovery._runbooks import (
    RunbookResult,
    RunbookRunner,
    StepOutcome,
    StepResult,
    describe_step,
)

__all__ = [
    "DEFAULT_LADDER",
    "INCIDENT_VARIABLES",
    "ActionUnavailable",
    "AppliesTo",
    "Condition",
    "Escalator",
    "Fired",
    "HttpAction",
    "HttpVerify",
    "Ladder",
    "Level",
    "MedicAction",
    "MedicActionName",
    "MedicActionSet",
    "MedicActions",
    "RunAction",
    "RunVerify",
    "Runbook",
    "RunbookLevelAction",
    "RunbookResult",
    "RunbookRunner",
    "Step",
    "StepOutcome",
    "StepResult",
    "TcpVerify",
    "check_value",
    "describe_step",
    "incident_facts",
    "matching_runbooks",
    "references",
    "run_matching_non_destructive",
]
