"""Secrets by name: the config holds an environment variable's name, never its value.

A `Secret` is read at the moment of sending, so a rotated token takes effect
without a restart, and nothing that reprs or logs a channel can show it.
`redact` scrubs known secret values out of any text that leaves a channel
(error messages of httpx, smtplib or a command), because third-party errors
sometimes echo what they were given.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from medic.errors import ConfigError

__all__ = ["Secret", "redact"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
MASK = "***"


@dataclass(frozen=True, slots=True)
class Secret:
    """The name of the environment variable that holds a secret."""

    env: str

    def __post_init__(self) -> None:
        if not isinstance(self.env, str) or not _ENV_NAME.fullmatch(self.env):
            raise ConfigError(f"expected an environment variable name, got {self.env!r}")

    def reveal(self, environ: Mapping[str, str] | None = None) -> str:
        """The value, read now; a missing or empty variable is a ConfigError naming it."""
        value = (os.environ if environ is None else environ).get(self.env, "")
        if not value:
            raise ConfigError(f"environment variable {self.env} is not set", key=self.env)
        return value

    def peek(self) -> str | None:
        """The value if set, for redaction only."""
        return os.environ.get(self.env) or None

    def __repr__(self) -> str:
        return f"Secret(env={self.env!r})"


def redact(text: str, secrets: Iterable[Secret | str | None]) -> str:
    """`text` with every known secret value (and its URL-quoted form) replaced by ***."""
    values: set[str] = set()
    for item in secrets:
        value = item.peek() if isinstance(item, Secret) else item
        if value and len(value) >= 3:
            values.update({value, quote(value, safe=""), quote(value)})
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text
