"""Durations ("250ms", "5s", "15m"), sizes ("512MB") and ${VAR} expansion for medic.toml.

Sizes use binary multiples (1 KB = 1024 B), as supervisord and most ops tools
read them; KiB/MiB/GiB are accepted as the same thing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator

from medic import clock

__all__ = ["Duration", "Size", "expand_env", "parse_duration", "parse_size"]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def parse_duration(value: object) -> float:
    """Seconds from "250ms", "5s", "15m", "2h", "1d" or a bare number (the kernel's parser)."""
    if not isinstance(value, str | int | float):
        raise ValueError(f"expected a duration like '250ms', '5s' or '15m', got {value!r}")
    return clock.parse_duration(value).total_seconds()


def parse_size(value: object) -> int:
    """Bytes from "512MB", "10KB", "1GiB" or a bare number of bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size like '512MB'")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and (match := _SIZE.match(value)):
        unit = (match.group(2) or "b").lower()[0]
        return int(float(match.group(1)) * _SIZE_UNITS[unit])
    raise ValueError(f"expected a size like '512MB' or '10KB', got {value!r}")


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]


class MissingVariable(ValueError):
    """A ${VAR} names an environment variable that is not set and has no default."""

    def __init__(self, name: str, key: str) -> None:
        self.name, self.key = name, key
        super().__init__(f"environment variable {name} is not set (use ${{{name}:-default}})")


def expand_env(data: Any, env: Mapping[str, str], key: str = "") -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string; `$$` is a literal `$`."""
    if isinstance(data, str):

        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise MissingVariable(name, key)

        return _VAR.sub(substitute, data)
    if isinstance(data, dict):
        return {k: expand_env(v, env, f"{key}.{k}" if key else str(k)) for k, v in data.items()}
    if isinstance(data, list):
        return [expand_env(v, env, f"{key}[{i}]") for i, v in enumerate(data)]
    return data
