"""The wire format of a signal: one JSON object, as a JSONL line or an API payload.

Validated once, here, at the edge: every error is an `InvalidInput` naming the
field (``exception.frames[2].lineno``) and what was expected, so a bad line in a
million-line file can be fixed without reading medic's source. Unknown keys are
refused rather than ignored: a typo (``severty``) must not silently become the
default. Sizes are bounded so one hostile payload cannot hold the recorder.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from medic.errors import InvalidInput
from medic.events import Action, ExceptionInfo, Frame, Signal
from medic.taxonomy import Kind, Severity

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "SIGNAL_FIELDS",
    "jsonable",
    "parse_signal_line",
    "signal_from_json",
    "signal_to_json",
]

# PagerDuty Events v2 refuses payloads above 512 KB; medic takes the same bound.
MAX_PAYLOAD_BYTES = 512 * 1024
MAX_NAME = 200
MAX_KEY = 500
MAX_TEXT = 64 * 1024
MAX_FRAMES = 250
MAX_TAGS = 64
MAX_FINGERPRINT_PARTS = 32

_TEXTS = {"message": MAX_TEXT, "title": MAX_KEY, "reason": MAX_KEY}
SIGNAL_FIELDS = frozenset(
    {
        "service",
        "message",
        "kind",
        "severity",
        "source",
        "occurred_at",
        "detected_at",
        "external_id",
        "fingerprint",
        "dedup_key",
        "action",
        "exception",
        "probe",
        "reason",
        "tags",
        "release",
        "environment",
        "title",
    }
)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_EXCEPTION_FIELDS = frozenset({"type", "value", "frames"})
_FRAME_FIELDS = frozenset({"module", "function", "filename", "lineno", "in_app"})
# Epoch seconds outside these years are a unit mistake (milliseconds) or garbage.
_MIN_EPOCH = 0.0
_MAX_EPOCH = datetime(9999, 1, 1, tzinfo=UTC).timestamp()


def parse_signal_line(line: str | bytes, *, where: str = "") -> Signal:
    """One JSONL line (or request body) to a Signal; `where` prefixes every error."""
    prefix = f"{where}: " if where else ""
    if len(line) > MAX_PAYLOAD_BYTES:
        raise InvalidInput(f"{prefix}line is {len(line)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"{prefix}not valid JSON: {exc}") from None
    return signal_from_json(obj, where=where)


def signal_from_json(obj: Any, *, where: str = "") -> Signal:
    """A decoded JSON object to a Signal, refusing anything the recorder could not take."""
    p = _Path(where)
    if not isinstance(obj, dict):
        raise p.error(f"expected a JSON object, got {_type(obj)}")
    unknown = set(obj) - SIGNAL_FIELDS
    if unknown:
        raise p.error(
            f"unknown field(s) {', '.join(sorted(map(repr, unknown)))}; "
            f"expected some of: {', '.join(sorted(SIGNAL_FIELDS))}"
        )
    get = obj.get  # absent fields cost no path object: only present ones are checked
    return Signal(
        service=_required(_name(obj, "service", p), p, "service"),
        message=_required(_text(obj, "message", p), p, "message"),
        kind=Kind.UNKNOWN if get("kind") is None else _kind(obj["kind"], p.at("kind")),
        severity=None if get("severity") is None else _severity(obj["severity"], p.at("severity")),
        source=_name(obj, "source", p) or "api",
        occurred_at=_time(get("occurred_at"), p.at("occurred_at"))
        if "occurred_at" in obj
        else None,
        detected_at=_time(get("detected_at"), p.at("detected_at"))
        if "detected_at" in obj
        else None,
        external_id=_key(get("external_id"), p.at("external_id"), MAX_NAME)
        if "external_id" in obj
        else None,
        fingerprint=_fingerprint(get("fingerprint"), p.at("fingerprint"))
        if "fingerprint" in obj
        else (),
        dedup_key=_key(get("dedup_key"), p.at("dedup_key"), MAX_KEY)
        if "dedup_key" in obj
        else None,
        action=_action(get("action"), p.at("action")) if "action" in obj else Action.TRIGGER,
        exception=_exception(get("exception"), p.at("exception")) if "exception" in obj else None,
        probe=_name(obj, "probe", p),
        reason=_text(obj, "reason", p),
        tags=_tags(get("tags"), p.at("tags")) if "tags" in obj else {},
        release=_name(obj, "release", p),
        environment=_name(obj, "environment", p),
        title=_text(obj, "title", p),
    )


def signal_to_json(signal: Signal) -> dict[str, Any]:
    """The inverse of `signal_from_json`: defaults and empty fields are left out."""
    out: dict[str, Any] = {"service": signal.service, "message": signal.message}
    if signal.kind is not Kind.UNKNOWN:
        out["kind"] = signal.kind.value
    if signal.severity is not None:
        out["severity"] = str(Severity(signal.severity))
    if signal.source != "api":
        out["source"] = signal.source
    for name in ("occurred_at", "detected_at"):
        moment = getattr(signal, name)
        if moment is not None:
            out[name] = _iso(moment)
    if signal.fingerprint:
        out["fingerprint"] = list(signal.fingerprint)
    if signal.action is not Action.TRIGGER:
        out["action"] = signal.action.value
    exc = signal.exception
    if exc is not None:
        out["exception"] = {
            "type": exc.type,
            "value": exc.value,
            "frames": [
                {
                    "module": f.module,
                    "function": f.function,
                    "filename": f.filename,
                    "lineno": f.lineno,
                    "in_app": f.in_app,
                }
                for f in exc.frames
            ],
        }
    if signal.tags:
        out["tags"] = dict(signal.tags)
    for name in ("external_id", "dedup_key", "probe", "reason", "release", "environment", "title"):
        value = getattr(signal, name)
        if value is not None:
            out[name] = value
    return out


def jsonable(value: Any) -> Any:
    """Views (frozen dataclasses) as JSON values: datetimes in ISO 8601, SEVn, enums by value."""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, Severity):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


# -- field parsers -------------------------------------------------------------------


class _Path:
    """Where in the payload a value sits (``line 7``, ``exception.frames[2]``), for errors.

    Built lazily: the path is spelled out only when an error needs it, because a
    valid line (the common case) never does.
    """

    __slots__ = ("name", "parent", "where")

    def __init__(self, where: str, parent: _Path | None = None, name: str = "") -> None:
        self.where = where
        self.parent = parent
        self.name = name

    def at(self, name: str) -> _Path:
        return _Path(self.where, self, name)

    @property
    def path(self) -> str:
        names: list[str] = []
        node: _Path | None = self
        while node is not None and node.name:
            names.append(node.name)
            node = node.parent
        out = ""
        for name in reversed(names):
            out += name if not out or name.startswith("[") else f".{name}"
        return out

    def error(self, message: str) -> InvalidInput:
        parts = [part for part in (self.where, self.path) if part]
        return InvalidInput(": ".join([*parts, message]))


def _type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string"}.get(
        type(value), "an array" if isinstance(value, list) else "an object"
    )


def _string(value: Any, p: _Path, limit: int, *, single_line: bool) -> str:
    if not isinstance(value, str):
        raise p.error(f"expected a string, got {_type(value)}")
    if len(value) > limit:
        raise p.error(f"{len(value)} characters; the limit is {limit}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise p.error("not valid Unicode (a lone surrogate escape such as \\ud800)") from None
    if "\x00" in value:
        raise p.error("holds a NUL character")
    if single_line and _CONTROL.search(value):
        raise p.error(f"{value[:40]!r} holds control characters")
    return value


def _required(value: str | None, p: _Path, name: str) -> str:
    if value is None:
        raise p.at(name).error("required, and missing")
    return value


def _name(obj: dict[str, Any], name: str, p: _Path) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    q = p.at(name)
    text = _string(value, q, MAX_NAME, single_line=True).strip()
    if not text:
        raise q.error("must not be empty")
    return text


def _text(obj: dict[str, Any], name: str, p: _Path) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    q = p.at(name)
    return _string(value, q, _TEXTS[name], single_line=False)


def _key(value: Any, p: _Path, limit: int) -> str | None:
    if value is None:
        return None
    text = _string(value, p, limit, single_line=True)
    if not text.strip():
        raise p.error("must not be empty")
    return text


def _kind(value: Any, p: _Path) -> Kind:
    if value is None:
        return Kind.UNKNOWN
    if not isinstance(value, str):
        raise p.error(f"expected a string, got {_type(value)}")
    try:
        return Kind.parse(value)
    except ValueError as exc:
        raise p.error(str(exc)) from None


def _severity(value: Any, p: _Path) -> Severity | None:
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise p.error(f"expected SEV1–SEV4 or 1–4, got {_type(value)}")
    try:
        return Severity.parse(value)
    except ValueError as exc:
        raise p.error(str(exc)) from None


def _action(value: Any, p: _Path) -> Action:
    if value is None:
        return Action.TRIGGER
    choices = ", ".join(a.value for a in Action)
    if not isinstance(value, str):
        raise p.error(f"expected one of {choices}, got {_type(value)}")
    try:
        return Action(value.strip().lower())
    except ValueError:
        raise p.error(f"unknown action {value[:40]!r}; expected one of: {choices}") from None


def _time(value: Any, p: _Path) -> datetime | None:
    """ISO 8601 (naive means UTC) or epoch seconds, as Sentry SDKs send either."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise p.error("expected an ISO 8601 time or epoch seconds, got a boolean")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
        if not math.isfinite(seconds) or not _MIN_EPOCH <= seconds < _MAX_EPOCH:
            raise p.error(f"epoch seconds {value!r} out of range (milliseconds by mistake?)")
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 64:
            raise p.error("too long for a time")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise p.error(
                f"{value[:40]!r} is not an ISO 8601 time (like 2026-11-25T08:20:00Z)"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    raise p.error(f"expected an ISO 8601 time or epoch seconds, got {_type(value)}")


def _fingerprint(value: Any, p: _Path) -> tuple[str, ...]:
    if value is None:
        return ()
    parts = [value] if isinstance(value, str) else value
    if not isinstance(parts, list):
        raise p.error(f"expected a string or an array of strings, got {_type(value)}")
    if not parts or len(parts) > MAX_FINGERPRINT_PARTS:
        raise p.error(f"expected 1–{MAX_FINGERPRINT_PARTS} parts, got {len(parts)}")
    out = []
    for i, part in enumerate(parts):
        q = p if isinstance(value, str) else p.at(f"[{i}]")
        text = _string(part, q, MAX_KEY, single_line=True)
        if not text.strip():
            raise q.error("must not be empty")
        out.append(text)
    return tuple(out)


def _tags(value: Any, p: _Path) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise p.error(f"expected an object of strings, got {_type(value)}")
    if len(value) > MAX_TAGS:
        raise p.error(f"{len(value)} tags; the limit is {MAX_TAGS}")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise p.error(f"tag names must be strings, got {_type(key)}")
        q = p.at(key if key.isidentifier() else f"[{key[:40]!r}]")
        name = _string(key, q, MAX_NAME, single_line=True)
        if not name.strip():
            raise p.error("a tag name must not be empty")
        out[name] = _string(item, q, MAX_KEY, single_line=True)
    return out


def _exception(value: Any, p: _Path) -> ExceptionInfo | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise p.error(f"expected an object {{type, value, frames}}, got {_type(value)}")
    unknown = set(value) - _EXCEPTION_FIELDS
    if unknown:
        raise p.error(
            f"unknown field(s) {', '.join(sorted(map(repr, unknown)))}; expected type, value, frames"
        )
    type_ = _string(value.get("type"), p.at("type"), MAX_NAME, single_line=True).strip()
    if not type_:
        raise p.at("type").error("must not be empty")
    text = value.get("value")
    text = "" if text is None else _string(text, p.at("value"), MAX_TEXT, single_line=False)
    frames_value = value.get("frames")
    if frames_value is None:
        frames_value = []
    if not isinstance(frames_value, list):
        raise p.at("frames").error(f"expected an array, got {_type(frames_value)}")
    if len(frames_value) > MAX_FRAMES:
        raise p.at("frames").error(f"{len(frames_value)} frames; the limit is {MAX_FRAMES}")
    frames = tuple(_frame(f, p.at("frames").at(f"[{i}]")) for i, f in enumerate(frames_value))
    return ExceptionInfo(type_, text, frames)


def _frame(value: Any, p: _Path) -> Frame:
    if not isinstance(value, dict):
        raise p.error(f"expected an object, got {_type(value)}")
    unknown = set(value) - _FRAME_FIELDS
    if unknown:
        raise p.error(
            f"unknown field(s) {', '.join(sorted(map(repr, unknown)))}; "
            f"expected {', '.join(sorted(_FRAME_FIELDS))}"
        )
    function = _string(value.get("function"), p.at("function"), MAX_NAME, single_line=True)
    if not function.strip():
        raise p.at("function").error("must not be empty")
    module = value.get("module")
    filename = value.get("filename")
    lineno = value.get("lineno")
    in_app = value.get("in_app", True)
    if lineno is not None and (
        not isinstance(lineno, int) or isinstance(lineno, bool) or not 0 <= lineno < 10**9
    ):
        raise p.at("lineno").error(f"expected a line number ≥ 0, got {lineno!r}"[:120])
    if not isinstance(in_app, bool):
        raise p.at("in_app").error(f"expected true or false, got {_type(in_app)}")
    return Frame(
        function=function,
        module="" if module is None else _string(module, p.at("module"), MAX_KEY, single_line=True),
        filename=""
        if filename is None
        else _string(filename, p.at("filename"), MAX_KEY, single_line=True),
        lineno=lineno,
        in_app=in_app,
    )


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
