"""What a runbook is, once its file has been read and validated.

The model lives here, beside the executor, because the engine (layer 3) runs
runbooks and may not import the assembly layer that parses files
(`medic.config.load_runbooks`). Everything is frozen: a loaded runbook is a value.

Variables are substituted into single argv elements, URLs, bodies and the
arguments of medic actions, never into a shell (there is none), and every value
must look like a plain word or path, so a service name arriving in a signal
cannot smuggle an option, a newline or a `..` into a command.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from medic.errors import InvalidInput
from medic.taxonomy import Kind, Severity

__all__ = [
    "INCIDENT_VARIABLES",
    "AppliesTo",
    "HttpAction",
    "HttpVerify",
    "MedicAction",
    "MedicActionName",
    "RunAction",
    "RunVerify",
    "Runbook",
    "Step",
    "TcpVerify",
    "check_value",
    "references",
    "substitute",
]

INCIDENT_VARIABLES = frozenset({"incident.id", "incident.service", "incident.severity"})
MAX_VALUE = 512
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)\}")
_SAFE_VALUE = re.compile(r"[A-Za-z0-9_./~][A-Za-z0-9_.:/@+=,~%-]*")


class MedicActionName(enum.StrEnum):
    """The recovery actions a runbook may ask medic itself to take."""

    RESTART = "restart"
    CHECKPOINT = "checkpoint"
    ROLLBACK = "rollback"
    RESTORE = "restore"
    FAILOVER = "failover"
    SET_DEGRADED = "set_degraded"


@dataclass(frozen=True, slots=True)
class RunAction:
    argv: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HttpAction:
    method: str
    url: str
    body: str | None = None
    expect_status: tuple[int, ...] = ()  # empty: any 2xx
    content_type: str | None = None  # application/json when the file gave the body as data


@dataclass(frozen=True, slots=True)
class MedicAction:
    name: MedicActionName
    args: Mapping[str, str | bool | tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunVerify:
    argv: tuple[str, ...]
    expect_exit: int = 0


@dataclass(frozen=True, slots=True)
class HttpVerify:
    url: str
    expect_status: int = 200
    expect_body: str | None = None  # a substring the body must contain


@dataclass(frozen=True, slots=True)
class TcpVerify:
    host: str
    port: int


Action = RunAction | HttpAction | MedicAction
Verify = RunVerify | HttpVerify | TcpVerify


@dataclass(frozen=True, slots=True)
class Step:
    """One step: why (`context`), what (`action`) and how we know it worked (`verify`)."""

    name: str
    context: str
    action: Action
    verify: Verify | None = None
    timeout: timedelta = timedelta(seconds=30)
    destructive: bool = False
    backup_first: bool = False
    backup_paths: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AppliesTo:
    """Which incidents a runbook is for; each non-empty field must match (any of its values).

    An empty `AppliesTo` matches nothing automatically: such a runbook is run by hand only.
    """

    services: tuple[str, ...] = ()
    kinds: tuple[Kind, ...] = ()
    fingerprints: tuple[str, ...] = ()
    severities: tuple[Severity, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.services or self.kinds or self.fingerprints or self.severities)

    def matches(
        self,
        *,
        service: str,
        kind: Kind | None = None,
        fingerprints: frozenset[str] = frozenset(),
        severity: Severity | None = None,
    ) -> bool:
        if self.empty:
            return False
        if self.services and service not in self.services:
            return False
        if self.kinds and kind not in self.kinds:
            return False
        if self.fingerprints and not fingerprints & set(self.fingerprints):
            return False
        return not (self.severities and severity not in self.severities)


@dataclass(frozen=True, slots=True)
class Runbook:
    name: str
    description: str
    steps: tuple[Step, ...]
    applies_to: AppliesTo = AppliesTo()
    variables: Mapping[str, str | None] = field(default_factory=dict)  # None: no default
    source: str | None = None

    @property
    def destructive(self) -> bool:
        """True when any step needs a confirmation: such runbooks never run unattended."""
        return any(step.destructive for step in self.steps)

    def __repr__(self) -> str:
        return f"Runbook(name={self.name!r}, steps={len(self.steps)}, source={self.source!r})"


def check_value(name: str, value: str) -> str:
    """A variable's value, if it is a plain word or path; InvalidInput otherwise."""
    if (
        not isinstance(value, str)
        or len(value) > MAX_VALUE
        or not _SAFE_VALUE.fullmatch(value)
        or ".." in value.split("/")
    ):
        raise InvalidInput(
            f"variable {name}: {value!r} is not a plain value (letters, digits and . _ / : @ + = , ~ % -,"
            f" not starting with '-', no '..', at most {MAX_VALUE} characters)"
        )
    return value


def references(text: str) -> set[str]:
    """The variable names `text` refers to as `${name}`."""
    return set(_REFERENCE.findall(text))


def substitute(text: str, values: Mapping[str, str], *, keep_missing: bool = False) -> str:
    """Replace each `${name}` with its checked value; a missing name raises, or stays for a dry run.

    Values are checked where they are used, so an incident whose service name is
    not a plain word still runs the runbooks that do not mention it.
    """

    def one(match: re.Match[str]) -> str:
        key = match.group(1)
        if key in values:
            return check_value(key, values[key])
        if keep_missing:
            return match.group(0)
        raise InvalidInput(f"variable ${{{key}}} has no value (give --incident or --var {key}=…)")

    return _REFERENCE.sub(one, text)
