"""Reading medic.toml: TOML syntax, ${VAR} expansion, validation, one clear error.

Every error names the file, the key path (`services.web.probes[0].interval`) and
what was expected, so a user fixes it without reading medic's source.
"""

from __future__ import annotations

import os
import signal
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from medic.config._schema import MedicConfig
from medic.config._units import MissingVariable, expand_env
from medic.errors import ConfigError

__all__ = ["LoadedConfig", "load_config", "parse_config"]

_PROBE_TAGS = {"process", "http", "tcp", "command", "heartbeat", "resource"}
_CHANNEL_TAGS = {"webhook", "slack", "email", "pagerduty", "command"}


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A validated config and where it came from (relative paths resolve against `base_dir`)."""

    path: Path
    model: MedicConfig

    @property
    def base_dir(self) -> Path:
        return self.path.resolve().parent


def _key_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    previous: int | str | None = None
    for index, item in enumerate(loc):
        # pydantic puts a union's tag (a probe's or a channel's type) and its
        # validators' names in the path; the user never wrote them.
        tag = (isinstance(previous, int) and item in _PROBE_TAGS) or (
            index >= 2 and loc[index - 2] == "channels" and item in _CHANNEL_TAGS
        )
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif not (tag or item.startswith("function-") or item.endswith("]")):
            parts.append(f".{item}" if parts else item)
        previous = item
    return "".join(parts)


def _explain(error: Mapping[str, Any]) -> str:
    kind, message = error.get("type", ""), str(error.get("msg", ""))
    given = error.get("input")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    channel = "channels" in error.get("loc", ())
    what, tags = ("channel", _CHANNEL_TAGS) if channel else ("probe", _PROBE_TAGS)
    if kind == "union_tag_invalid":
        tag = given.get("type") if isinstance(given, dict) else given
        return f"unknown {what} type {tag!r}; expected one of {', '.join(sorted(tags))}"
    if kind == "union_tag_not_found":
        return f"{what} needs a `type` key"
    message = message.removeprefix("Value error, ")
    if kind in ("literal_error", "string_pattern_mismatch") or "Input should" in message:
        return f"{message} (got {given!r})"
    return message


def parse_config(text: str, *, path: Path, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Validate medic.toml content; `path` is only used for messages and relative paths."""
    where = str(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=where) from exc
    try:
        data = expand_env(raw, os.environ if env is None else env)
    except MissingVariable as exc:
        raise ConfigError(str(exc), path=where, key=exc.key) from exc
    try:
        model = MedicConfig.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        lines = [f"{_key_path(e['loc']) or '(top level)'}: {_explain(e)}" for e in errors]
        first_key = _key_path(errors[0]["loc"]) or None
        message = _explain(errors[0]) if len(lines) == 1 else "\n  " + "\n  ".join(lines)
        # Not chained: pydantic's error quotes every input value, and a value that
        # came from ${VAR} (or a secret pasted by mistake) must not reach a traceback.
        raise ConfigError(message, path=where, key=first_key if len(lines) == 1 else None) from None
    return LoadedConfig(path=path, model=model)


def load_config(path: Path, *, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read and validate a medic.toml file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError("file not found", path=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=str(path)) from exc
    return parse_config(text, path=path, env=env)


def signal_number(name: str) -> int:
    """The number of a signal name already checked by the schema."""
    return int(signal.Signals[name])
