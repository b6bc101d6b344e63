"""The `[alerts]` and `[escalation]` tables of medic.toml.

Secrets never live in the file: a channel names the environment variable that
holds its password, token or webhook URL (`password_env`, `url_env`, …). A key
that would hold the secret itself (`password`, `routing_key`) is refused with a
message saying which `*_env` key to use, and no error message ever repeats a
value given for a secret's name, in case someone pasted the secret there.
"""

from __future__ import annotations

import ipaddress
import re
import string
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from medic.config._units import Duration, parse_duration

__all__ = [
    "CHANNEL_TYPES",
    "AlertsModel",
    "CommandChannel",
    "EmailChannel",
    "EscalationModel",
    "LevelModel",
    "PagerDutyChannel",
    "RateLimitModel",
    "RetryModel",
    "SlackChannel",
    "WebhookChannel",
]

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
CHANNEL_TYPES = ("webhook", "slack", "email", "pagerduty", "command")
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"  # medic.alerts.PAGERDUTY_URL
LEVELS = ("critical", "high", "medium", "low")
# Names a route may use besides channel names: kinds, every channel, none, the logger.
ROUTE_WORDS = ("*", "dashboard", "log", *CHANNEL_TYPES)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}")
_HOST = re.compile(r"[A-Za-z0-9.:\[\]_-]{1,253}")
_ADDRESS = re.compile(r"[^\s@<>,;\"']{1,64}@[^\s@<>,;\"']{1,253}")
_LOOPBACK_NAMES = ("localhost",)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _env_name(value: object) -> str:
    # The message never echoes `value`: a user may have pasted the secret itself here.
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        raise ValueError(
            "expected the name of an environment variable (letters, digits and _, such as "
            "MEDIC_SMTP_PASSWORD), not the secret itself"
        )
    return value


EnvName = Annotated[str, BeforeValidator(_env_name)]


def _refuse_inline_secrets(data: Any, secrets: dict[str, str]) -> Any:
    if isinstance(data, dict):
        for key, instead in secrets.items():
            if key in data:
                raise ValueError(
                    f"`{key}` would put a secret in the file; set it in an environment "
                    f"variable and name that variable with `{instead}`"
                )
    return data


def _http_url(value: str) -> str:
    if not re.match(r"(?i)^https?://[^\s/?#]+", value) or any(c.isspace() for c in value):
        raise ValueError("expected an http:// or https:// URL")
    return value


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class RateLimitModel(_Strict):
    """At most `burst` notices at once, refilled at `per_minute`."""

    per_minute: float = Field(default=30.0, gt=0, le=1_000_000)
    burst: int = Field(default=10, ge=1, le=10_000)


class _ChannelBase(_Strict):
    rate_limit: RateLimitModel | None = None
    timeout: Duration = 10.0

    @field_validator("timeout")
    @classmethod
    def _sane_timeout(cls, value: float) -> float:
        if not 0 < value <= 3600:
            raise ValueError("timeout must be greater than zero and at most 1h")
        return value


class WebhookChannel(_ChannelBase):
    type: Literal["webhook"]
    url: str = Field(max_length=4096)
    headers: dict[str, str] = Field(default_factory=dict, max_length=32)
    token_env: EnvName | None = None
    signing_secret_env: EnvName | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_inline(cls, data: Any) -> Any:
        secrets = {"token": "token_env", "signing_secret": "signing_secret_env"}
        return _refuse_inline_secrets(data, secrets)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"header name {name[:100]!r} is not a valid HTTP header name")
            if any(c in text for c in "\r\n\x00") or len(text) > 8192:
                # No value in the message: a header often carries a token.
                raise ValueError(f"header {name!r}: value has a line break or is too long")
        return value


class SlackChannel(_ChannelBase):
    type: Literal["slack"]
    url_env: EnvName

    @model_validator(mode="before")
    @classmethod
    def _no_inline(cls, data: Any) -> Any:
        return _refuse_inline_secrets(data, {"url": "url_env"})


class EmailChannel(_ChannelBase):
    # `from` is a Python keyword: the key is `from`, the attribute `sender`.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)

    type: Literal["email"]
    host: str
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str | None = Field(default=None, min_length=1, max_length=256)
    password_env: EnvName | None = None
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1, max_length=100)
    template: str = Field(default="internal", pattern=NAME)
    ca_file: str | None = Field(default=None, min_length=1, max_length=4096)
    timeout: Duration = 15.0

    @model_validator(mode="before")
    @classmethod
    def _no_inline(cls, data: Any) -> Any:
        data = _refuse_inline_secrets(data, {"password": "password_env"})
        if isinstance(data, dict) and isinstance(data.get("to"), str):
            data = {**data, "to": [data["to"]]}  # one recipient may be written as a string
        return data

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not _HOST.fullmatch(value):
            raise ValueError("expected a host name or IP address such as smtp.example.com")
        return value

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        if not _ADDRESS.fullmatch(value):
            raise ValueError("expected an address like medic@example.com")
        return value

    @field_validator("to")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        bad = [a for a in value if not _ADDRESS.fullmatch(a)]
        if bad:
            raise ValueError(f"expected addresses like oncall@example.com, got {bad[0][:100]!r}")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> EmailChannel:
        if self.password_env is not None and self.username is None:
            raise ValueError("password_env needs a username")
        clear_text = self.security == "none" and not _is_loopback(self.host)
        if self.password_env is not None and clear_text:
            raise ValueError(
                "a password with security = 'none' would cross the network in clear "
                "text; use security = 'starttls' or 'tls'"
            )
        return self

    @property
    def smtp_port(self) -> int:
        """The port as given, else the usual one for the security: 465 for TLS, 587, 25."""
        if self.port is not None:
            return self.port
        return {"tls": 465, "starttls": 587, "none": 25}[self.security]


class PagerDutyChannel(_ChannelBase):
    type: Literal["pagerduty"]
    routing_key_env: EnvName
    url: str = Field(default=PAGERDUTY_URL, max_length=4096)

    @model_validator(mode="before")
    @classmethod
    def _no_inline(cls, data: Any) -> Any:
        return _refuse_inline_secrets(data, {"routing_key": "routing_key_env"})

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)


class CommandChannel(_ChannelBase):
    type: Literal["command"]
    argv: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(
        min_length=1, max_length=256
    )


ChannelModel = Annotated[
    WebhookChannel | SlackChannel | EmailChannel | PagerDutyChannel | CommandChannel,
    Field(discriminator="type"),
]


class RetryModel(_Strict):
    """How each delivery is retried (medic.alerts.RetryPolicy)."""

    attempts: int = Field(default=3, ge=1, le=20)
    initial: Duration = 1.0
    factor: float = Field(default=2.0, ge=1, le=100)
    max_delay: Duration = 30.0
    jitter: float = Field(default=0.1, ge=0, le=1)


def _link_template(value: str) -> str:
    if not value:
        return value
    try:
        fields = list(string.Formatter().parse(value))
    except ValueError as exc:
        raise ValueError(f"not a valid link template: {exc}") from None
    for _, field_name, spec, conversion in fields:
        if field_name is not None and (field_name != "id" or spec or conversion):
            raise ValueError("the only placeholder a link may hold is {id}, the incident number")
    _http_url(value.replace("{id}", "1"))
    return value


class AlertsModel(_Strict):
    link: str = Field(default="", max_length=2000)
    channels: dict[Annotated[str, Field(pattern=NAME)], ChannelModel] = Field(
        default_factory=dict, max_length=64
    )
    routes: dict[Literal["critical", "high", "medium", "low"], list[str]] = Field(
        default_factory=dict
    )
    retry: RetryModel = RetryModel()
    rate_limit: RateLimitModel = RateLimitModel()
    templates: dict[Annotated[str, Field(pattern=NAME)], str] = Field(
        default_factory=dict, max_length=32
    )

    @field_validator("link")
    @classmethod
    def _link(cls, value: str) -> str:
        return _link_template(value)

    @field_validator("channels")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name, channel in value.items():
            if name in ("dashboard", "log") or (name in CHANNEL_TYPES and name != channel.type):
                raise ValueError(
                    f"channel name {name!r} is reserved (dashboard, log) or another "
                    "channel type; routes could not tell them apart"
                )
        return value

    @field_validator("routes")
    @classmethod
    def _rules(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for level, names in value.items():
            if len(names) > 64 or any(not isinstance(n, str) or len(n) > 64 for n in names):
                raise ValueError(f"{level}: at most 64 channel names of up to 64 characters")
        return value

    def reference_errors(self) -> list[str]:
        """Routes and templates that name nothing, each with its full key path."""
        errors: list[str] = []
        known = {*self.channels, *ROUTE_WORDS}
        for level, names in self.routes.items():
            unknown = [n for n in names if n not in known]
            if unknown:
                errors.append(
                    f"alerts.routes.{level} names unknown channel(s) "
                    f"{', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}"
                )
        templates = {"internal", "customer", *self.templates}
        for name, channel in self.channels.items():
            if isinstance(channel, EmailChannel) and channel.template not in templates:
                errors.append(
                    f"alerts.channels.{name}.template names unknown template "
                    f"{channel.template!r}; known: {', '.join(sorted(templates))}"
                )
        return errors


def _budget(value: object) -> float | str:
    if value == "response":
        return "response"
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("budget must be greater than zero (or 'response')")
    return seconds


class LevelModel(_Strict):
    """One rung of the ladder; keys left out keep seed 000's default for that rung."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    budget: Annotated[float | Literal["response"], BeforeValidator(_budget)] | None = None
    condition: Literal["if_not_acknowledged", "if_not_resolved"] | None = None
    repeat: int | None = Field(default=None, ge=0, le=100)


class EscalationModel(_Strict):
    enabled: bool = True
    interval: Duration = 1.0
    levels: int = Field(default=4, ge=1, le=4)
    L1: LevelModel | None = None
    L2: LevelModel | None = None
    L3: LevelModel | None = None
    L4: LevelModel | None = None

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: float) -> float:
        if not 0 < value <= 3600:
            raise ValueError("interval must be greater than zero and at most 1h")
        return value

    @model_validator(mode="after")
    def _within(self) -> EscalationModel:
        given = [n for n in range(1, 5) if getattr(self, f"L{n}") is not None]
        above = [f"L{n}" for n in given if n > self.levels]
        if above:
            raise ValueError(
                f"levels = {self.levels} but {', '.join(above)} is configured; "
                f"raise levels or remove the table"
            )
        return self

    def level(self, number: int) -> LevelModel:
        found: LevelModel | None = getattr(self, f"L{number}")
        return found if found is not None else LevelModel()
