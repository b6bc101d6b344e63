"""Reading runbook files (YAML or JSON) into `medic.recovery.Runbook` values.

The only place that parses runbook files. A file is someone's input, maybe a
hostile one: it is read only up to a size, parsed with `yaml.safe_load`'s rules
(no tags that build objects, no aliases, no duplicate keys), and checked key by
key, so every error names the file, the key path (`steps[2].action.run[0]`) and
what was expected. An unknown key is an error: a typo such as `destrutive: true`
must never silently turn a safety flag off.
"""

from __future__ import annotations

import json
import re
from collections.abc import Set
from pathlib import Path
from typing import Any, NoReturn

import yaml

from medic.clock import parse_duration
from medic.errors import ConfigError, InvalidInput
from medic.recovery import (
    INCIDENT_VARIABLES,
    AppliesTo,
    HttpAction,
    HttpVerify,
    MedicAction,
    MedicActionName,
    RunAction,
    Runbook,
    RunVerify,
    Step,
    TcpVerify,
    check_value,
    references,
)
from medic.taxonomy import Kind, Severity

__all__ = ["RUNBOOK_SUFFIXES", "load_runbook_file", "load_runbooks", "parse_runbook"]

RUNBOOK_SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILE_BYTES = 256 * 1024
MAX_FILES = 1000
MAX_STEPS = 100
MAX_ARGV = 256
MAX_TEXT = 8192
MAX_TIMEOUT_S = 3600.0
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})
_MEDIC_ARGS: dict[MedicActionName, dict[str, type]] = {
    MedicActionName.RESTART: {"service": str},
    MedicActionName.CHECKPOINT: {"paths": list},
    MedicActionName.ROLLBACK: {"checkpoint": str},
    MedicActionName.RESTORE: {"snapshot": str},
    MedicActionName.FAILOVER: {"group": str},
    MedicActionName.SET_DEGRADED: {"service": str, "feature": str, "on": bool},
}
_OPTIONAL_ARGS = {"paths", "on"}


class _SafeLoader(yaml.SafeLoader):
    """safe_load's rules, plus: no aliases (no billion laughs) and no duplicate keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in runbooks", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        # Keys are taken as written: in YAML 1.1 a bare `on:` key would be the boolean True.
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, f"expected a mapping, got {node.id}", node.start_mark
            )
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "keys must be plain strings", key_node.start_mark
                )
            key = str(key_node.value)
            if key in out:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            out[key] = self.construct_object(value_node, deep=deep)
        return out


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def load_runbook_file(path: Path | str) -> Runbook:
    """One runbook from a .yaml, .yml or .json file."""
    path = Path(path)
    where = str(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", path=where) from exc
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"file is larger than {MAX_FILE_BYTES // 1024} KiB", path=where)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=where) from exc
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text, object_pairs_hook=_no_duplicates)
        else:
            data = yaml.load(text, Loader=_SafeLoader)  # noqa: S506 (_SafeLoader is safe_load's loader)
    except RecursionError as exc:
        raise ConfigError("nested too deeply", path=where) from exc
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"not valid {_format(path)}: {_one_line(exc)}", path=where) from exc
    return parse_runbook(data, source=where)


def load_runbooks(folder: Path | str) -> list[Runbook]:
    """Every runbook file in `folder` (not recursive), sorted by name; names must be unique."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError("runbook folder does not exist (give --dir)", path=str(folder))
    files = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in RUNBOOK_SUFFIXES and p.is_file()
    )
    if len(files) > MAX_FILES:
        raise ConfigError(f"more than {MAX_FILES} runbook files", path=str(folder))
    by_name: dict[str, Runbook] = {}
    for file in files:
        runbook = load_runbook_file(file)
        if runbook.name in by_name:
            raise ConfigError(
                f"runbook {runbook.name!r} is also defined in {by_name[runbook.name].source}",
                path=str(file),
                key="name",
            )
        by_name[runbook.name] = runbook
    return [by_name[name] for name in sorted(by_name)]


def _format(path: Path) -> str:
    return "JSON" if path.suffix.lower() == ".json" else "YAML"


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:500]


class _Check:
    """Typed access to parsed data that raises ConfigError naming the file and key path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, message: str) -> NoReturn:
        raise ConfigError(message, path=self.source, key=key or None)

    def mapping(
        self, value: Any, key: str, *, allowed: Set[str], required: Set[str] = frozenset()
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(key, f"expected a mapping, got {_kind(value)}")
        for k in value:
            if k not in allowed:
                self.fail(
                    _join(key, str(k)), f"unknown key; expected one of {', '.join(sorted(allowed))}"
                )
        for k in sorted(required):
            if k not in value:
                self.fail(_join(key, k), "is required")
        return value

    def text(self, value: Any, key: str, *, empty: bool = False, limit: int = MAX_TEXT) -> str:
        if not isinstance(value, str):
            self.fail(key, f"expected a string, got {_kind(value)}")
        if not empty and not value.strip():
            self.fail(key, "must not be empty")
        if len(value) > limit or "\x00" in value:
            self.fail(key, f"must be at most {limit} characters, without NUL")
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, got {_kind(value)}")
        return value

    def integer(self, value: Any, key: str, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            self.fail(key, f"expected an integer from {lo} to {hi}, got {value!r:.50}")
        return value

    def strings(self, value: Any, key: str, *, limit: int, one: bool = True) -> tuple[str, ...]:
        """A list of strings; a single string is accepted where `one` allows it."""
        if one and isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.fail(key, f"expected a list of strings, got {_kind(value)}")
        if len(value) > limit:
            self.fail(key, f"at most {limit} items")
        return tuple(self.text(v, f"{key}[{i}]") for i, v in enumerate(value))


def _kind(value: Any) -> str:
    names = {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def _join(key: str, part: str) -> str:
    return f"{key}.{part}" if key else part


def parse_runbook(data: Any, *, source: str) -> Runbook:
    """A runbook from already-parsed data (a mapping), checked key by key."""
    c = _Check(source)
    top = c.mapping(
        data,
        "",
        allowed={"name", "description", "applies_to", "variables", "steps"},
        required={"name", "steps"},
    )
    name = c.text(top["name"], "name", limit=64)
    if not _NAME.fullmatch(name):
        c.fail("name", f"{name!r}: expected lowercase letters, digits, '-', '_' or '.', ≤ 64")
    description = c.text(top.get("description", ""), "description", empty=True)
    applies_to = _applies_to(c, top.get("applies_to", {}))
    variables = _variables(c, top.get("variables", {}))
    known = set(variables) | INCIDENT_VARIABLES
    raw_steps = top["steps"]
    if not isinstance(raw_steps, list) or not raw_steps:
        c.fail("steps", f"expected a non-empty list of steps, got {_kind(raw_steps)}")
    if len(raw_steps) > MAX_STEPS:
        c.fail("steps", f"at most {MAX_STEPS} steps")
    steps = tuple(_step(c, s, f"steps[{i}]", known) for i, s in enumerate(raw_steps))
    return Runbook(
        name=name,
        description=description,
        steps=steps,
        applies_to=applies_to,
        variables=variables,
        source=source,
    )


def _variables(c: _Check, value: Any) -> dict[str, str | None]:
    if not isinstance(value, dict):
        c.fail("variables", f"expected a mapping of name: default, got {_kind(value)}")
    out: dict[str, str | None] = {}
    for k, v in value.items():
        key = f"variables.{k}"
        if not _VAR.fullmatch(str(k)):
            c.fail(key, "a variable name is letters, digits and '_', not starting with a digit")
        if v is not None:
            if isinstance(v, int | float) and not isinstance(v, bool):
                v = str(v)
            try:
                check_value(k, c.text(v, key))
            except InvalidInput as exc:
                c.fail(key, str(exc))
        out[k] = v
    return out


def _applies_to(c: _Check, value: Any) -> AppliesTo:
    m = c.mapping(value, "applies_to", allowed={"service", "kind", "fingerprint", "severity"})
    kinds, severities = [], []
    for i, k in enumerate(c.strings(m.get("kind", []), "applies_to.kind", limit=20)):
        try:
            kinds.append(Kind.parse(k))
        except ValueError as exc:
            c.fail(f"applies_to.kind[{i}]", str(exc))
    raw_sev = m.get("severity", [])
    if isinstance(raw_sev, int | str):
        raw_sev = [raw_sev]
    if not isinstance(raw_sev, list):
        c.fail("applies_to.severity", f"expected a list like [SEV1, SEV2], got {_kind(raw_sev)}")
    for i, s in enumerate(raw_sev):
        try:
            severities.append(Severity.parse(s))
        except ValueError as exc:
            c.fail(f"applies_to.severity[{i}]", str(exc))
    return AppliesTo(
        services=c.strings(m.get("service", []), "applies_to.service", limit=100),
        kinds=tuple(kinds),
        fingerprints=c.strings(m.get("fingerprint", []), "applies_to.fingerprint", limit=100),
        severities=tuple(severities),
    )


def _refs(c: _Check, text: str, key: str, known: set[str]) -> str:
    unknown = references(text) - known
    if unknown:
        c.fail(
            key,
            f"refers to undeclared variable {', '.join(sorted(unknown))} "
            f"(declare it under variables, or use {', '.join(sorted(INCIDENT_VARIABLES))})",
        )
    return text


def _argv(c: _Check, value: Any, key: str, known: set[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        c.fail(key, "expected an argv list like [program, arg, …] (no shell is used)")
    argv = c.strings(value, key, limit=MAX_ARGV, one=False)
    return tuple(_refs(c, a, f"{key}[{i}]", known) for i, a in enumerate(argv))


def _url(c: _Check, value: Any, key: str, known: set[str]) -> str:
    url = _refs(c, c.text(value, key, limit=2048), key, known)
    if not url.startswith(("http://", "https://")):
        c.fail(key, f"expected an http:// or https:// URL, got {url!r:.80}")
    return url


def _step(c: _Check, value: Any, key: str, known: set[str]) -> Step:
    allowed = {"name", "context", "action", "verify", "timeout", "destructive", "backup_first"}
    m = c.mapping(
        value, key, allowed=allowed | {"backup_paths"}, required={"name", "context", "action"}
    )
    raw = m.get("timeout", "30s")
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        c.fail(f"{key}.timeout", f"expected a duration such as 30s or 2m, got {raw!r}")
    try:
        timeout = parse_duration(raw)
    except ValueError as exc:
        c.fail(f"{key}.timeout", str(exc))
    if not 0 < timeout.total_seconds() <= MAX_TIMEOUT_S:
        c.fail(f"{key}.timeout", f"must be more than 0 and at most {MAX_TIMEOUT_S:g}s")
    paths = c.strings(m.get("backup_paths", []), f"{key}.backup_paths", limit=100)
    return Step(
        name=c.text(m["name"], f"{key}.name", limit=200),
        context=c.text(m["context"], f"{key}.context"),
        action=_action(c, m["action"], f"{key}.action", known),
        verify=_verify(c, m["verify"], f"{key}.verify", known) if "verify" in m else None,
        timeout=timeout,
        destructive=c.boolean(m.get("destructive", False), f"{key}.destructive"),
        backup_first=c.boolean(m.get("backup_first", False), f"{key}.backup_first"),
        backup_paths=tuple(_refs(c, p, f"{key}.backup_paths", known) for p in paths),
    )


def _one_of(c: _Check, m: dict[str, Any], key: str, choices: tuple[str, ...]) -> str:
    present = [k for k in choices if k in m]
    if len(present) != 1:
        c.fail(key, f"expected exactly one of {', '.join(choices)}, got {present or 'none'}")
    return present[0]


def _action(
    c: _Check, value: Any, key: str, known: set[str]
) -> RunAction | HttpAction | MedicAction:
    m = c.mapping(value, key, allowed={"run", "http", "medic", "with"})
    kind = _one_of(c, m, key, ("run", "http", "medic"))
    if "with" in m and kind != "medic":
        c.fail(f"{key}.with", "only a medic action takes `with`")
    if kind == "run":
        return RunAction(_argv(c, m["run"], f"{key}.run", known))
    if kind == "http":
        k = f"{key}.http"
        h = c.mapping(
            m["http"], k, allowed={"method", "url", "body", "expect_status"}, required={"url"}
        )
        method = c.text(h.get("method", "POST"), f"{k}.method").upper()
        if method not in _METHODS:
            c.fail(f"{k}.method", f"expected one of {', '.join(sorted(_METHODS))}")
        body, content_type = h.get("body"), None
        if isinstance(body, dict | list):
            body, content_type = json.dumps(body), "application/json"
        if body is not None:
            body = _refs(
                c, c.text(body, f"{k}.body", empty=True, limit=64 * 1024), f"{k}.body", known
            )
        raw = h.get("expect_status", [])
        statuses = [raw] if isinstance(raw, int) else raw
        if not isinstance(statuses, list):
            c.fail(f"{k}.expect_status", f"expected a status or a list of them, got {_kind(raw)}")
        codes = tuple(c.integer(s, f"{k}.expect_status", 100, 599) for s in statuses)
        return HttpAction(method, _url(c, h["url"], f"{k}.url", known), body, codes, content_type)
    return _medic(c, m, key, known)


def _medic(c: _Check, m: dict[str, Any], key: str, known: set[str]) -> MedicAction:
    raw = c.text(m["medic"], f"{key}.medic")
    try:
        name = MedicActionName(raw)
    except ValueError:
        choices = ", ".join(n.value for n in MedicActionName)
        c.fail(f"{key}.medic", f"{raw!r}: expected one of {choices}")
    spec = _MEDIC_ARGS[name]
    k = f"{key}.with"
    w = c.mapping(m.get("with", {}), k, allowed=set(spec), required=set(spec) - _OPTIONAL_ARGS)
    args: dict[str, str | bool | tuple[str, ...]] = {}
    for arg, typ in spec.items():
        if arg not in w:
            continue
        if typ is bool:
            args[arg] = c.boolean(w[arg], f"{k}.{arg}")
        elif typ is list:
            items = c.strings(w[arg], f"{k}.{arg}", limit=100)
            args[arg] = tuple(_refs(c, x, f"{k}.{arg}", known) for x in items)
        else:
            args[arg] = _refs(c, c.text(w[arg], f"{k}.{arg}", limit=512), f"{k}.{arg}", known)
    return MedicAction(name, args)


def _verify(c: _Check, value: Any, key: str, known: set[str]) -> RunVerify | HttpVerify | TcpVerify:
    m = c.mapping(value, key, allowed={"run", "expect_exit", "http", "tcp"})
    kind = _one_of(c, m, key, ("run", "http", "tcp"))
    if "expect_exit" in m and kind != "run":
        c.fail(f"{key}.expect_exit", "only a `run` verification takes expect_exit")
    if kind == "run":
        code = c.integer(m.get("expect_exit", 0), f"{key}.expect_exit", 0, 255)
        return RunVerify(_argv(c, m["run"], f"{key}.run", known), code)
    if kind == "http":
        k = f"{key}.http"
        h = c.mapping(
            m["http"], k, allowed={"url", "expect_status", "expect_body"}, required={"url"}
        )
        status = c.integer(h.get("expect_status", 200), f"{k}.expect_status", 100, 599)
        body = h.get("expect_body")
        if body is not None:
            body = c.text(body, f"{k}.expect_body", limit=4096)
        return HttpVerify(_url(c, h["url"], f"{k}.url", known), status, body)
    k = f"{key}.tcp"
    t = c.mapping(m["tcp"], k, allowed={"host", "port"}, required={"host", "port"})
    host = _refs(c, c.text(t["host"], f"{k}.host", limit=255), f"{k}.host", known)
    return TcpVerify(host, c.integer(t["port"], f"{k}.port", 1, 65535))
