"""From `[alerts]` and `[escalation]` to a ready Dispatcher and escalation Ladder.

Channels are checked when the plan is built (addresses, template files, CA
files, which secret variables are set), so `medic check` and `medic up` report
a broken channel before any incident needs it. Notifiers are built only in
`AlertsPlan.dispatcher`, on the clock the app injects; their secrets stay
environment variable names and are read at each send, so a rotated token takes
effect without a restart.
"""

from __future__ import annotations

import os
import random
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

from medic.alerts import (
    CommandNotifier,
    Dispatcher,
    EmailNotifier,
    MessageTemplate,
    Notifier,
    PagerDutyNotifier,
    RateLimit,
    RetryPolicy,
    Routing,
    Secret,
    SlackNotifier,
    Templates,
    WebhookNotifier,
)
from medic.bus import Bus
from medic.clock import Clock, system_clock
from medic.config._alerts import (
    AlertsModel,
    CommandChannel,
    EmailChannel,
    EscalationModel,
    PagerDutyChannel,
    RateLimitModel,
    SlackChannel,
    WebhookChannel,
)
from medic.errors import ConfigError
from medic.events import AlertLevel
from medic.recovery import DEFAULT_LADDER, Condition, Ladder, Level

__all__ = ["AlertsPlan", "ChannelPlan", "ChannelSecret", "alerts_plan", "ladder_of"]

ChannelModel = WebhookChannel | SlackChannel | EmailChannel | PagerDutyChannel | CommandChannel


@dataclass(frozen=True, slots=True)
class ChannelSecret:
    """A secret a channel needs: the config key that names it and the variable's name."""

    key: str
    env: str

    def is_set(self, environ: Mapping[str, str] | None = None) -> bool:
        return bool((os.environ if environ is None else environ).get(self.env))


@dataclass(frozen=True, slots=True)
class ChannelPlan:
    """One configured channel: what `medic alerts list` shows and how to build its notifier."""

    name: str
    type: str
    target: str
    rate_limit: RateLimit | None
    secrets: tuple[ChannelSecret, ...]
    model: ChannelModel = field(repr=False)
    base_dir: Path = field(repr=False)

    def notifier(self, *, clock: Clock, templates: Templates) -> Notifier:
        """A fresh notifier on `clock`; raises ConfigError naming the key for a bad setting."""
        model, key = self.model, f"alerts.channels.{self.name}"
        match model:
            case WebhookChannel():
                return WebhookNotifier(
                    name=self.name, url=model.url, headers=model.headers,
                    token=_secret(model.token_env), signing_secret=_secret(model.signing_secret_env),
                    timeout=model.timeout, clock=clock,
                )  # fmt: skip
            case SlackChannel():
                return SlackNotifier(
                    name=self.name, url=Secret(model.url_env), timeout=model.timeout, clock=clock
                )
            case EmailChannel():
                return EmailNotifier(
                    name=self.name, host=model.host, port=model.smtp_port,
                    security=model.security, username=model.username,
                    password=_secret(model.password_env), sender=model.sender,
                    recipients=model.to, template=model.template, templates=templates,
                    ssl_context=_ssl_context(model.ca_file, self.base_dir, f"{key}.ca_file"),
                    timeout=model.timeout, clock=clock,
                )  # fmt: skip
            case PagerDutyChannel():
                return PagerDutyNotifier(
                    name=self.name, routing_key=Secret(model.routing_key_env), url=model.url,
                    timeout=model.timeout, clock=clock,
                )  # fmt: skip
            case CommandChannel():
                return CommandNotifier(
                    name=self.name, argv=model.argv, timeout=model.timeout, clock=clock
                )
        raise ConfigError(f"unknown channel model {type(model).__name__}", key=key)


def _secret(env: str | None) -> Secret | None:
    return Secret(env) if env is not None else None


def _path(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _ssl_context(ca_file: str | None, base: Path, key: str) -> ssl.SSLContext | None:
    if ca_file is None:
        return None
    path = _path(base, ca_file)
    try:
        return ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load CA file {path}: {exc}", key=key) from None


def _secrets_of(name: str, model: ChannelModel) -> tuple[ChannelSecret, ...]:
    keys = ("token_env", "signing_secret_env", "url_env", "password_env", "routing_key_env")
    found: list[ChannelSecret] = []
    for attr in keys:
        env = getattr(model, attr, None)
        if env is not None:
            found.append(ChannelSecret(f"alerts.channels.{name}.{attr}", env))
    return tuple(found)


def _limit(model: RateLimitModel | None) -> RateLimit | None:
    return None if model is None else RateLimit(model.per_minute, model.burst)


@dataclass(frozen=True, slots=True)
class AlertsPlan:
    """The configured alerting; the default has no channels, so notices only reach the log.

    `dispatcher()` builds the runtime; `link_for()` fills the incident link;
    `templates` holds the message templates (the shipped `internal` and
    `customer`, or the files `[alerts.templates]` names).
    """

    channels: tuple[ChannelPlan, ...] = ()
    routing: Routing = field(default_factory=Routing)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limit: RateLimit = field(default_factory=RateLimit)
    templates: Templates = field(default_factory=Templates)
    link: str = ""
    source: str | None = None

    def channel(self, name: str) -> ChannelPlan:
        for channel in self.channels:
            if channel.name == name:
                return channel
        known = ", ".join(c.name for c in self.channels) or "none configured"
        raise ConfigError(f"no alert channel {name!r}; known: {known}", path=self.source)

    def secrets(self) -> tuple[ChannelSecret, ...]:
        return tuple(s for c in self.channels for s in c.secrets)

    def missing_secrets(self, environ: Mapping[str, str] | None = None) -> list[ChannelSecret]:
        """Secrets whose environment variable is unset or empty."""
        return [s for s in self.secrets() if not s.is_set(environ)]

    def check_secrets(self, environ: Mapping[str, str] | None = None) -> None:
        """Raise a ConfigError naming the first unset variable (never any value)."""
        missing = self.missing_secrets(environ)
        if missing:
            first = missing[0]
            more = f" (and {', '.join(s.env for s in missing[1:])})" if missing[1:] else ""
            raise ConfigError(
                f"environment variable {first.env} is not set{more}",
                path=self.source,
                key=first.key,
            )

    def template(self, name: str) -> MessageTemplate:
        """A message template by name: `internal` (SEV1 notice), `customer`, or one configured."""
        return self.templates[name]

    def link_for(self, incident_id: int) -> str:
        """The incident's link from `alerts.link`, or "" when none is configured."""
        return self.link.format(id=int(incident_id)) if self.link else ""

    def dispatcher(
        self,
        *,
        bus: Bus | None,
        clock: Clock = system_clock,
        rng: random.Random | None = None,
        routing: Routing | None = None,
    ) -> Dispatcher:
        """A Dispatcher over every configured channel (plus the log) on `clock`.

        Checks now that every secret's variable is set, so a missing one stops
        startup with its name instead of failing the first page.
        """
        self.check_secrets()
        notifiers: list[Notifier] = []
        for channel in self.channels:
            try:
                notifiers.append(channel.notifier(clock=clock, templates=self.templates))
            except ConfigError as exc:
                raise _located(exc, self.source, f"alerts.channels.{channel.name}") from None
        limits = {c.name: c.rate_limit for c in self.channels if c.rate_limit is not None}
        return Dispatcher(
            notifiers=notifiers, routing=routing or self.routing, clock=clock, rng=rng,
            retry=self.retry, rate_limit=self.rate_limit, rate_limits=limits, bus=bus,
        )  # fmt: skip

    def only(self, name: str, level: AlertLevel) -> Routing:
        """A routing that sends `level` to the one channel `name` (for `medic alerts test`)."""
        self.channel(name)
        return Routing({level: (name,)})


def _located(exc: ConfigError, source: str | None, key: str) -> ConfigError:
    """`exc` said again with the config file and the channel's key path in front."""
    where = ":".join(part for part in (exc.path, exc.key) if part)
    message = str(exc).removeprefix(f"{where}: ") if where else str(exc)
    if exc.key is not None and exc.key.startswith("alerts."):
        key = exc.key
    return ConfigError(message, path=source, key=key)


def alerts_plan(
    model: AlertsModel, *, base_dir: Path, source: str | None = None, check: bool = True
) -> AlertsPlan:
    """Validate every channel by building it once; load the configured template files."""
    overrides = {name: _path(base_dir, path) for name, path in model.templates.items()}
    for name, path in overrides.items():
        try:
            MessageTemplate.load(name, path)  # to name the key of a broken file
        except ConfigError as exc:
            raise ConfigError(str(exc), path=source, key=f"alerts.templates.{name}") from None
    templates = Templates(overrides)
    channels: list[ChannelPlan] = []
    for name, channel in model.channels.items():
        key = f"alerts.channels.{name}"
        ca_file = channel.ca_file if isinstance(channel, EmailChannel) else None
        if ca_file is not None and not _path(base_dir, ca_file).is_file():
            raise ConfigError("CA file not found", path=source, key=f"{key}.ca_file")
        plan = ChannelPlan(
            name, channel.type, "", _limit(channel.rate_limit), _secrets_of(name, channel),
            channel, base_dir,
        )  # fmt: skip
        try:
            built = plan.notifier(clock=system_clock, templates=templates)
        except ConfigError as exc:
            raise _located(exc, source, key) from None
        channels.append(replace(plan, target=built.target))
    try:
        routing = Routing.from_mapping({str(k): v for k, v in model.routes.items()})
    except ConfigError as exc:
        raise ConfigError(str(exc), path=source) from None
    retry = model.retry
    result = AlertsPlan(
        channels=tuple(channels),
        routing=routing,
        retry=RetryPolicy(
            retry.attempts, retry.initial, retry.factor, retry.max_delay, retry.jitter
        ),
        rate_limit=RateLimit(model.rate_limit.per_minute, model.rate_limit.burst),
        templates=templates,
        link=model.link,
        source=source,
    )
    if check:
        result.check_secrets()
    return result


def ladder_of(model: EscalationModel) -> Ladder:
    """Seed 000's ladder with each configured rung's keys laid over its default."""
    levels: list[Level] = []
    for number in range(1, model.levels + 1):
        base, given = DEFAULT_LADDER.levels[number - 1], model.level(number)
        budget: timedelta | None = base.budget
        if given.budget == "response":
            budget = None
        elif given.budget is not None:
            budget = timedelta(seconds=float(given.budget))
        levels.append(
            Level(
                number,
                given.name or base.name,
                budget,
                Condition(given.condition) if given.condition else base.condition,
                base.repeat if given.repeat is None else given.repeat,
            )
        )
    return Ladder(tuple(levels))
