"""The words medic uses to say what a failure is and how bad it is."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["Classification", "Kind", "Severity"]


class Kind(enum.StrEnum):
    """What kind of failure a signal is; decides which recovery strategies fit."""

    CONNECTION = "connection"
    TIMEOUT = "timeout"
    AUTH = "auth"
    PERMISSION = "permission"
    RESOURCE = "resource"
    DATA_INTEGRITY = "data-integrity"
    CONFIG = "config"
    DEPENDENCY = "dependency"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: str) -> Kind:
        """Accept the canonical name, any case, and `_` for `-` (`data_integrity`)."""
        text = value.strip().lower().replace("_", "-")
        try:
            return cls(text)
        except ValueError:
            choices = ", ".join(k.value for k in cls)
            raise ValueError(
                f"unknown failure kind {value!r}; expected one of: {choices}"
            ) from None


class Severity(enum.IntEnum):
    """SEV1 (worst) to SEV4. Lower numbers are more severe, as in every on-call rota."""

    SEV1 = 1
    SEV2 = 2
    SEV3 = 3
    SEV4 = 4

    def __str__(self) -> str:
        return self.name

    @classmethod
    def parse(cls, value: str | int) -> Severity:
        """Accept `SEV2`, `sev2`, `2` or 2; anything else is a ValueError naming the choices."""
        if isinstance(value, int) and not isinstance(value, bool):
            if 1 <= value <= 4:
                return cls(value)
        elif isinstance(value, str):
            text = value.strip().upper()
            if text.startswith("SEV"):
                text = text[3:]
            if text in {"1", "2", "3", "4"}:
                return cls(int(text))
        raise ValueError(f"unknown severity {value!r}; expected SEV1, SEV2, SEV3 or SEV4")


@dataclass(frozen=True, slots=True)
class Classification:
    """What a signal is: its kind, whether trying again can help, and how bad it looks.

    `retry_after` is the wait the failure itself asked for (an HTTP ``Retry-After``,
    an open breaker's remaining time), in seconds, when it asked for one.
    """

    kind: Kind
    retryable: bool
    severity: Severity = Severity.SEV3
    strategies: tuple[str, ...] = field(default=())
    reason: str = ""
    retry_after: float | None = None
