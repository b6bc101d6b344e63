"""The medic.toml schema: every key medic understands, with its type and default.

Unknown keys are errors (a typo such as `restrat` must not silently mean the
default). The models only describe and validate; `_runtime.py` turns them into
the supervisor's and the monitor's plain specs.
"""

from __future__ import annotations

import signal as _signal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from medic.config._alerts import (
    AlertsModel,
    CommandChannel,
    EmailChannel,
    EscalationModel,
    LevelModel,
    PagerDutyChannel,
    RateLimitModel,
    RetryModel,
    SlackChannel,
    WebhookChannel,
)
from medic.config._recovery import CheckpointModel, RecoveryModel, ServicePlan
from medic.config._units import Duration, Size
from medic.taxonomy import Kind

__all__ = [
    "AlertsModel",
    "BackoffModel",
    "BackupModel",
    "CategoryModel",
    "CommandChannel",
    "CommandProbe",
    "CrashLoopModel",
    "EmailChannel",
    "EscalationModel",
    "GroupModel",
    "GroupingModel",
    "GroupingRuleModel",
    "HeartbeatProbe",
    "HttpProbe",
    "LevelModel",
    "LogsModel",
    "MedicConfig",
    "PagerDutyChannel",
    "ProbeModel",
    "ProcessProbe",
    "RateLimitModel",
    "ResourceProbe",
    "RetryModel",
    "ServiceModel",
    "SeverityModel",
    "SlackChannel",
    "StopModel",
    "TcpProbe",
    "WebhookChannel",
]

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BackoffModel(_Strict):
    initial: Duration = 0.25
    factor: float = Field(default=2.0, ge=1, le=100)
    max: Duration = 30.0
    jitter: float = Field(default=0.2, ge=0, lt=1)
    reset_after: Duration = 60.0


class CrashLoopModel(_Strict):
    max_restarts: int = Field(default=5, ge=1, le=10_000)
    within: Duration = 60.0
    cooldown: Duration = 60.0


class StopModel(_Strict):
    signal: str = "SIGTERM"
    timeout: Duration = 10.0

    @field_validator("signal")
    @classmethod
    def _known_signal(cls, value: str) -> str:
        name = value.upper() if value.upper().startswith("SIG") else f"SIG{value.upper()}"
        if name not in _signal.Signals.__members__:
            raise ValueError(f"unknown signal {value!r}; expected a name such as SIGTERM or SIGINT")
        return name


class LogsModel(_Strict):
    max_bytes: Size = 10 * 1024 * 1024
    keep: int = Field(default=3, ge=0, le=100)
    tail_lines: int = Field(default=1000, ge=1, le=100_000)


class _ProbeBase(_Strict):
    name: str | None = Field(default=None, pattern=NAME)
    interval: Duration = 1.0
    timeout: Duration = 1.0
    failures: int = Field(default=3, ge=1, le=1000)
    successes: int = Field(default=1, ge=1, le=1000)
    action: Literal["restart", "alert", "failover"] = "restart"
    initial_delay: Duration = 0.0

    @model_validator(mode="after")
    def _positive(self) -> _ProbeBase:
        if self.interval <= 0 or self.timeout <= 0:
            raise ValueError("interval and timeout must be greater than zero")
        return self


class ProcessProbe(_ProbeBase):
    type: Literal["process"]


class HttpProbe(_ProbeBase):
    type: Literal["http"]
    url: str = Field(pattern=r"^https?://")
    method: Literal["GET", "HEAD", "POST", "PUT", "OPTIONS"] = "GET"
    expect_status: int | list[int] = 200
    body_contains: str | None = None


class TcpProbe(_ProbeBase):
    type: Literal["tcp"]
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)


class CommandProbe(_ProbeBase):
    type: Literal["command"]
    command: list[str] | str
    expect_exit: int = Field(default=0, ge=0, le=255)


class HeartbeatProbe(_ProbeBase):
    type: Literal["heartbeat"]
    path: str
    max_age: Duration


class ResourceProbe(_ProbeBase):
    type: Literal["resource"]
    rss_max: Size | None = None
    cpu_max_percent: float | None = Field(default=None, gt=0)
    cpu_window: Duration = 60.0
    fds_max_percent: float | None = Field(default=None, gt=0, le=100)
    threads_max: int | None = Field(default=None, ge=1)
    disk_free_min: Size | None = None
    disk_path: str = "/"

    @model_validator(mode="after")
    def _some_threshold(self) -> ResourceProbe:
        limits = (self.rss_max, self.cpu_max_percent, self.fds_max_percent)
        if all(v is None for v in (*limits, self.threads_max, self.disk_free_min)):
            raise ValueError(
                "a resource probe needs at least one of rss_max, cpu_max_percent, "
                "fds_max_percent, threads_max, disk_free_min"
            )
        return self


ProbeModel = Annotated[
    ProcessProbe | HttpProbe | TcpProbe | CommandProbe | HeartbeatProbe | ResourceProbe,
    Field(discriminator="type"),
]


class ServiceModel(_Strict):
    command: list[str] | str
    shell: bool = False
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    restart: Literal["always", "on-failure", "never"] = "always"
    backoff: BackoffModel = BackoffModel()
    crash_loop: CrashLoopModel = CrashLoopModel()
    depends_on: list[str] = Field(default_factory=list)
    on_dependency_restart: Literal["ignore", "restart"] = "ignore"
    ready: Literal["uptime", "probe", "notify"] = "uptime"
    start_time: Duration = 1.0
    start_timeout: Duration = 30.0
    hang_grace: Duration = 2.0
    stop: StopModel = StopModel()
    notify: bool = False
    watchdog: Duration | None = None
    severity: Literal["SEV1", "SEV2", "SEV3", "SEV4"] = "SEV3"
    logs: LogsModel = LogsModel()
    probes: list[ProbeModel] = Field(default_factory=list, max_length=32)
    recovery: ServicePlan | None = None
    checkpoint: CheckpointModel | None = None

    @field_validator("recovery")
    @classmethod
    def _plan_kinds(cls, value: ServicePlan | None) -> ServicePlan | None:
        if isinstance(value, dict):
            return {Kind.parse(kind).value: plan for kind, plan in value.items()}
        return value

    @field_validator("command")
    @classmethod
    def _not_empty(cls, value: list[str] | str) -> list[str] | str:
        if not value or (isinstance(value, str) and not value.strip()):
            raise ValueError("command must not be empty")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> ServiceModel:
        if self.ready == "probe" and not self.probes:
            raise ValueError("ready = 'probe' needs at least one probe")
        if self.shell and not isinstance(self.command, str):
            raise ValueError("shell = true needs command as one string")
        return self


class GroupModel(_Strict):
    services: list[str] = Field(min_length=2)
    failback: bool = False
    failback_after: Duration = 30.0


SeverityName = Literal["SEV1", "SEV2", "SEV3", "SEV4"]


class SeverityModel(_Strict):
    """What a severity means and its response target and RTO (defaults: seed 002's table)."""

    meaning: str | None = Field(default=None, max_length=500)
    response: Duration | None = None
    rto: Duration | None = None


class GroupingRuleModel(_Strict):
    """A server-side fingerprint rule: when every `match` glob matches, group by `fingerprint`."""

    name: str = Field(pattern=NAME)
    match: dict[str, str] = Field(min_length=1, max_length=16)
    fingerprint: list[str] = Field(default_factory=lambda: ["{{ default }}"], min_length=1)

    @model_validator(mode="after")
    def _valid_rule(self) -> GroupingRuleModel:
        from medic.taxonomy import GroupingRule

        GroupingRule(self.name, dict(self.match), tuple(self.fingerprint))  # raises ValueError
        return self


class GroupingModel(_Strict):
    rules: list[GroupingRuleModel] = Field(default_factory=list, max_length=200)


class CategoryModel(_Strict):
    """Seed 000's issue categories: new issues that match get this owner and response time."""

    owner: str = Field(min_length=1, max_length=200)
    response: Duration
    kinds: list[str] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: list[str]) -> list[str]:
        from medic.taxonomy import Kind

        return [Kind.parse(kind).value for kind in value]


class BackupModel(_Strict):
    """A `[backups.NAME]` table: a verified backup into its own repository every `every`."""

    paths: list[str] = Field(default_factory=list, max_length=1000)
    dbs: list[str] = Field(default_factory=list, max_length=100)
    repo: str = Field(min_length=1, max_length=4096)
    every: Duration
    keep: int = Field(default=7, ge=1, le=100_000)
    rpo: Duration | None = None
    severity: Literal["SEV1", "SEV2", "SEV3", "SEV4"] = "SEV3"

    @field_validator("paths", "dbs")
    @classmethod
    def _no_blank(cls, value: list[str]) -> list[str]:
        for index, item in enumerate(value):
            if not item.strip():
                raise ValueError(f"entry [{index}] is empty; give a path")
        return value

    @field_validator("every", "rpo")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("must be a duration greater than zero, such as '1h'")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> BackupModel:
        if not self.paths and not self.dbs:
            raise ValueError("needs `paths` or `dbs`: there is nothing to back up")
        if self.rpo is not None and self.rpo < self.every:
            raise ValueError(
                f"rpo ({self.rpo:g}s) is shorter than every ({self.every:g}s): between runs the "
                "newest backup is up to `every` old, so the objective could never be met"
            )
        return self


class MedicConfig(_Strict):
    services: dict[Annotated[str, Field(pattern=NAME)], ServiceModel] = Field(default_factory=dict)
    groups: dict[Annotated[str, Field(pattern=NAME)], GroupModel] = Field(default_factory=dict)
    severities: dict[SeverityName, SeverityModel] = Field(default_factory=dict)
    grouping: GroupingModel = GroupingModel()
    categories: dict[Annotated[str, Field(pattern=NAME)], CategoryModel] = Field(
        default_factory=dict
    )
    runbooks: str = Field(default="runbooks", min_length=1, max_length=4096)
    recovery: RecoveryModel = RecoveryModel()
    alerts: AlertsModel = AlertsModel()
    escalation: EscalationModel = EscalationModel()
    backups: dict[Annotated[str, Field(pattern=NAME)], BackupModel] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references(self) -> MedicConfig:
        if not self.services and not self.backups:
            raise ValueError(
                "nothing to run: define at least one [services.NAME] or [backups.NAME] table"
            )
        names = set(self.services)
        for name, service in self.services.items():
            for dep in service.depends_on:
                if dep not in names:
                    raise ValueError(f"services.{name}.depends_on names unknown service {dep!r}")
        in_group: dict[str, str] = {}
        for group_name, group in self.groups.items():
            for member in group.services:
                if member not in names:
                    raise ValueError(
                        f"groups.{group_name}.services names unknown service {member!r}"
                    )
                if member in in_group:
                    raise ValueError(
                        f"service {member!r} is in groups {in_group[member]} and {group_name}"
                    )
                in_group[member] = group_name
        for name, service in self.services.items():
            if any(p.action == "failover" for p in service.probes) and name not in in_group:
                raise ValueError(
                    f"services.{name}: a probe with action 'failover' needs the service in a group"
                )
        problems = self.alerts.reference_errors()
        if problems:
            raise ValueError("\n  ".join(problems))
        return self
