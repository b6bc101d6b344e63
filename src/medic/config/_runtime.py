"""From the validated schema to what the supervisor and the monitor run."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from medic.checkpoint import BackupSchedule
from medic.clock import Clock, system_clock
from medic.config._alerts_plan import AlertsPlan, alerts_plan, ladder_of
from medic.config._load import LoadedConfig, signal_number
from medic.config._recovery import RecoverySettings, recovery_settings
from medic.config._schema import (
    BackupModel,
    CommandProbe,
    HeartbeatProbe,
    HttpProbe,
    ProcessProbe,
    ResourceProbe,
    ServiceModel,
    TcpProbe,
)
from medic.errors import ConfigError
from medic.health import (
    Check,
    CommandCheck,
    HeartbeatCheck,
    HttpCheck,
    ProbeAction,
    ProbeSpec,
    ProcessCheck,
    ResourceCheck,
    TcpCheck,
)
from medic.recovery import DEFAULT_LADDER, Ladder
from medic.supervisor import (
    Backoff,
    CrashLoopLimit,
    DependencyRestart,
    FailoverGroup,
    LogSpec,
    Readiness,
    RestartPolicy,
    ServiceSpec,
    StopSpec,
)
from medic.taxonomy import GroupingRule, Severity
from medic.tracker import DEFAULT_SEVERITY_POLICIES, IssueCategory, SeverityPolicy, Tracker

__all__ = ["Plan", "TrackerSettings", "build_plan", "tracker_settings"]


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    """What the config says about recording: grouping rules, severities, categories."""

    grouping_rules: tuple[GroupingRule, ...] = ()
    severity_policies: dict[Severity, SeverityPolicy] = field(
        default_factory=lambda: dict(DEFAULT_SEVERITY_POLICIES)
    )
    categories: tuple[IssueCategory, ...] = ()

    def open(self, url: str, *, clock: Clock = system_clock) -> Tracker:
        """A Tracker on `url` that groups, grades and categorises as configured."""
        return Tracker(
            url,
            clock=clock,
            grouping_rules=self.grouping_rules,
            severity_policies=self.severity_policies,
            categories=self.categories,
        )


def tracker_settings(config: LoadedConfig) -> TrackerSettings:
    """The tracker's part of the config, with seed 002's severities where none are given."""
    model = config.model
    rules = tuple(
        GroupingRule(rule.name, dict(rule.match), tuple(rule.fingerprint))
        for rule in model.grouping.rules
    )
    policies = dict(DEFAULT_SEVERITY_POLICIES)
    for name, sev in model.severities.items():
        base = policies[Severity.parse(name)]
        policies[base.severity] = SeverityPolicy(
            base.severity,
            sev.meaning or base.meaning,
            timedelta(seconds=sev.response) if sev.response is not None else base.response_target,
            timedelta(seconds=sev.rto) if sev.rto is not None else base.rto,
        )
    categories = tuple(
        IssueCategory(
            name, cat.owner, timedelta(seconds=cat.response), tuple(cat.kinds),
            tuple(cat.services), tuple(cat.sources),
        )
        for name, cat in model.categories.items()
    )  # fmt: skip
    return TrackerSettings(rules, policies, categories)


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything `medic up` runs, derived from one config file.

    `alerts` is always present (with no channels, notices reach only the log);
    `ladder` is seed 000's unless `[escalation]` changes it, and the escalator
    ticks every `escalation_interval` seconds while `escalation_enabled`.
    """

    services: tuple[ServiceSpec, ...]
    probes: tuple[ProbeSpec, ...]
    groups: tuple[FailoverGroup, ...]
    severities: dict[str, Severity]
    tracker: TrackerSettings = field(default_factory=TrackerSettings)
    recovery: RecoverySettings = field(default_factory=RecoverySettings)
    alerts: AlertsPlan = field(default_factory=AlertsPlan)
    ladder: Ladder = DEFAULT_LADDER
    escalation_interval: float = 1.0
    escalation_enabled: bool = True
    backups: tuple[BackupSchedule, ...] = ()


def _argv(command: list[str] | str, shell: bool) -> tuple[str, ...]:
    if shell:
        return ("/bin/sh", "-c", str(command))
    return tuple(shlex.split(command)) if isinstance(command, str) else tuple(command)


def _path(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _check(model: object, base: Path) -> Check:
    match model:
        case ProcessProbe():
            return ProcessCheck()
        case HttpProbe():
            expected = model.expect_status
            statuses = tuple(expected) if isinstance(expected, list) else (expected,)
            return HttpCheck(
                url=model.url, method=model.method, expect_status=statuses,
                body_contains=model.body_contains,
            )  # fmt: skip
        case TcpProbe():
            return TcpCheck(host=model.host, port=model.port)
        case CommandProbe():
            return CommandCheck(argv=_argv(model.command, False), expect_exit=model.expect_exit)
        case HeartbeatProbe():
            return HeartbeatCheck(path=_path(base, model.path), max_age=model.max_age)
        case ResourceProbe():
            return ResourceCheck(
                rss_max=model.rss_max, cpu_max_percent=model.cpu_max_percent,
                cpu_window=model.cpu_window, fds_max_percent=model.fds_max_percent,
                threads_max=model.threads_max, disk_free_min=model.disk_free_min,
                disk_path=_path(base, model.disk_path),
            )  # fmt: skip
    raise TypeError(f"unknown probe model {model!r}")


def _service(name: str, svc: ServiceModel, base: Path, log_dir: Path | None) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        argv=_argv(svc.command, svc.shell),
        cwd=_path(base, svc.cwd) if svc.cwd else base,
        env=dict(svc.env),
        restart=RestartPolicy(svc.restart),
        backoff=Backoff(**svc.backoff.model_dump()),
        crash_loop=CrashLoopLimit(**svc.crash_loop.model_dump()),
        readiness=Readiness(svc.ready),
        start_seconds=svc.start_time,
        start_timeout=svc.start_timeout,
        stop=StopSpec(signal=signal_number(svc.stop.signal), timeout=svc.stop.timeout),
        hang_grace=svc.hang_grace,
        depends_on=tuple(svc.depends_on),
        on_dependency_restart=DependencyRestart(svc.on_dependency_restart),
        notify=svc.notify or svc.ready == "notify" or svc.watchdog is not None,
        watchdog=svc.watchdog,
        logs=LogSpec(directory=log_dir, **svc.logs.model_dump()),
    )


def _backups(config: LoadedConfig) -> tuple[BackupSchedule, ...]:
    """Schedules with absolute paths; two schedules may not share a repository.

    Pruning keeps the newest `keep` snapshots of the whole repository and the RPO
    counts any verified snapshot in it, so a shared repository would let one
    schedule delete the other's backups and vouch for its RPO.
    """
    base = config.base_dir
    owners: dict[str, str] = {}
    schedules: list[BackupSchedule] = []
    for name, model in config.model.backups.items():
        schedule = _schedule(name, model, base)
        if (other := owners.get(schedule.repo)) is not None:
            raise ConfigError(
                f"{schedule.repo} is already the repo of backups.{other}; "
                "give each schedule its own repo",
                path=str(config.path),
                key=f"backups.{name}.repo",
            )
        owners[schedule.repo] = name
        schedules.append(schedule)
    return tuple(schedules)


def _schedule(name: str, model: BackupModel, base: Path) -> BackupSchedule:
    return BackupSchedule(
        name=name,
        paths=tuple(str(_path(base, p)) for p in model.paths),
        repo=str(_path(base, model.repo).resolve()),
        every_s=model.every,
        keep=model.keep,
        dbs=tuple(str(_path(base, d)) for d in model.dbs),
        rpo_objective_s=model.rpo,
    )


def build_plan(config: LoadedConfig, *, log_dir: Path | None, check_secrets: bool = True) -> Plan:
    """Specs for the supervisor and the monitor; relative paths resolve beside the config.

    With `check_secrets` (the default, for `medic check` and `medic up`) an alert
    channel whose secret's environment variable is unset is a ConfigError naming
    the variable; `medic alerts list` turns it off to show what is missing.
    """
    base = config.base_dir
    services: list[ServiceSpec] = []
    probes: list[ProbeSpec] = []
    for name, svc in config.model.services.items():
        services.append(_service(name, svc, base, log_dir))
        used: set[str] = set()
        for index, probe in enumerate(svc.probes):
            probe_name = probe.name or probe.type
            if probe_name in used:
                probe_name = f"{probe_name}-{index}"
            used.add(probe_name)
            probes.append(
                ProbeSpec(
                    service=name, name=probe_name, check=_check(probe, base),
                    interval=probe.interval, timeout=probe.timeout, failures=probe.failures,
                    successes=probe.successes, action=ProbeAction(probe.action),
                    initial_delay=probe.initial_delay,
                )
            )  # fmt: skip
    groups = tuple(
        FailoverGroup(
            name=name, members=tuple(g.services), failback=g.failback,
            failback_after=g.failback_after,
        )
        for name, g in config.model.groups.items()
    )  # fmt: skip
    severities = {name: Severity.parse(svc.severity) for name, svc in config.model.services.items()}
    for name, backup in config.model.backups.items():  # their incidents' service name
        severities[f"backups.{name}"] = Severity.parse(backup.severity)
    model = config.model
    recovery = recovery_settings(model.recovery, model.services, base, source=str(config.path))
    alerts = alerts_plan(model.alerts, base_dir=base, source=str(config.path), check=check_secrets)
    return Plan(
        tuple(services), tuple(probes), groups, severities, tracker_settings(config),
        recovery=recovery, backups=_backups(config), alerts=alerts,
        ladder=ladder_of(model.escalation),
        escalation_interval=model.escalation.interval,
        escalation_enabled=model.escalation.enabled,
    )  # fmt: skip
