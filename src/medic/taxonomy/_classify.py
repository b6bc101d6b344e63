"""classify: what a failure is, from an exception, an HTTP status, an exit or a probe.

Every subject goes through one rule table, and built-in rules are registered with
the same `register_rule` a user calls, so a user rule for a class or a status code
takes precedence over the built-in one (the newest rule for a key is asked first;
a rule may decline by returning None and the next one is asked).

Exception rules are keyed by the dotted path of a class (``module.QualName``) and
are looked up along the exception's MRO, most specific class first. Matching by
name means the rules for httpx, requests, aiohttp, SQLAlchemy, psycopg and redis
cost nothing and import nothing: they can only fire for an exception whose class
came from that package, which therefore is installed and imported.
"""

from __future__ import annotations

import signal as _signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from medic.errors import InvalidInput
from medic.taxonomy._kinds import Classification, Kind, Severity

__all__ = [
    "ExitStatus",
    "HttpStatus",
    "ProbeResult",
    "Rule",
    "classify",
    "parse_retry_after",
    "register_rule",
    "rules",
    "unregister_rule",
    "verdict",
]

Subject = Literal["exception", "http", "exit", "signal", "probe"]
Handler = Classification | Callable[[Any], Classification | None]

# The recovery strategies that usually fit a kind; a rule may name its own.
STRATEGIES: dict[Kind, tuple[str, ...]] = {
    Kind.CONNECTION: ("retry", "failover", "restart"),
    Kind.TIMEOUT: ("retry", "failover", "degrade"),
    Kind.AUTH: ("escalate",),
    Kind.PERMISSION: ("escalate", "run-runbook"),
    Kind.RESOURCE: ("restart", "degrade", "run-runbook", "escalate"),
    Kind.DATA_INTEGRITY: ("rollback", "restore", "escalate"),
    Kind.CONFIG: ("rollback", "escalate"),
    Kind.DEPENDENCY: ("retry", "fallback", "failover", "degrade"),
    Kind.UNKNOWN: ("restart", "escalate"),
}


def verdict(
    kind: Kind, retryable: bool, reason: str, severity: Severity = Severity.SEV3
) -> Classification:
    """A classification with the strategies that usually fit its kind."""
    return Classification(kind, retryable, severity, STRATEGIES[kind], reason)


@dataclass(frozen=True, slots=True)
class HttpStatus:
    """An HTTP response status (from a client call or an HTTP probe)."""

    code: int
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """How a supervised child ended: an exit code, or the signal that killed it.

    `from_returncode` reads `subprocess`'s convention (negative = killed by signal)
    and the shell's (128 + N = killed by signal N).
    """

    code: int | None = None
    signal: int | None = None

    @classmethod
    def from_returncode(cls, returncode: int) -> ExitStatus:
        if returncode < 0:
            return cls(signal=-returncode)
        if 128 < returncode < 128 + 65:
            return cls(code=returncode, signal=returncode - 128)
        return cls(code=returncode)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """A failed health probe: its reason word (``timeout``, ``refused``, ``rss``…)."""

    reason: str
    probe: str = ""
    status: int | None = None


def _key_of(subject: Subject, key: object) -> str | int:
    if subject == "exception":
        if isinstance(key, type) and issubclass(key, BaseException):
            return f"{key.__module__}.{key.__qualname__}"
        if isinstance(key, str) and "." in key:
            return key
        raise InvalidInput(f"an exception rule needs a class or 'module.Class', got {key!r}")
    if subject == "signal" and isinstance(key, str):
        try:
            return int(_signal.Signals[key.upper()])
        except KeyError:
            raise InvalidInput(f"unknown signal name {key!r}") from None
    if subject in ("http", "exit", "signal") and isinstance(key, int) and not isinstance(key, bool):
        return key
    if subject == "http" and isinstance(key, str) and key in {"1xx", "2xx", "3xx", "4xx", "5xx"}:
        return key
    if subject == "probe" and isinstance(key, str) and key:
        return key.strip().lower()
    raise InvalidInput(f"a {subject} rule cannot be keyed by {key!r}")


@dataclass(frozen=True, slots=True)
class Rule:
    """One classification rule: for `subject` matching `key`, answer `then`.

    `key` is an exception class or ``"module.QualName"`` (subject ``exception``),
    a status code or ``"4xx"`` (``http``), an exit code (``exit``), a signal number
    or name (``signal``), or a probe reason word (``probe``). `then` is a fixed
    `Classification` or a function of the subject returning one, or None to let
    the next rule answer.
    """

    name: str
    subject: Subject
    key: Any
    then: Handler

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", _key_of(self.subject, self.key))

    def apply(self, value: Any) -> Classification | None:
        then = self.then
        return then if isinstance(then, Classification) else then(value)


_lock = threading.Lock()
_table: dict[tuple[str, str | int], tuple[Rule, ...]] = {}
_mro_cache: dict[type, tuple[Rule, ...]] = {}
# Per class, the answer when it cannot depend on the instance (the first rule up the
# MRO is a fixed Classification): a retry's failure path then classifies in one lookup.
_fixed_cache: dict[type, Classification | None] = {}


def register_rule(rule: Rule) -> Rule:
    """Add `rule` ahead of every earlier rule for the same key; returns it (for undo)."""
    with _lock:
        slot = (rule.subject, rule.key)
        _table[slot] = (rule, *_table.get(slot, ()))
        _mro_cache.clear()
        _fixed_cache.clear()
    return rule


def unregister_rule(rule: Rule) -> None:
    """Remove a rule added with `register_rule` (tests and plugins unloading)."""
    with _lock:
        slot = (rule.subject, rule.key)
        remaining = tuple(r for r in _table.get(slot, ()) if r is not rule)
        if remaining:
            _table[slot] = remaining
        else:
            _table.pop(slot, None)
        _mro_cache.clear()
        _fixed_cache.clear()


def rules() -> tuple[Rule, ...]:
    """Every registered rule, newest first within a key (for docs and `medic` listings)."""
    with _lock:
        return tuple(rule for chain in _table.values() for rule in chain)


_MAX_CACHED_CLASSES = 4096  # classes made at run time must not grow the caches forever


def _exception_chain(cls: type) -> tuple[Rule, ...]:
    chain = _mro_cache.get(cls)
    if chain is None:
        if len(_mro_cache) >= _MAX_CACHED_CLASSES:
            _mro_cache.clear()
            _fixed_cache.clear()
        found: list[Rule] = []
        for base in cls.__mro__:
            found.extend(_table.get(("exception", f"{base.__module__}.{base.__qualname__}"), ()))
        chain = tuple(found)
        _mro_cache[cls] = chain
    return chain


_UNKNOWN = verdict(Kind.UNKNOWN, False, "no rule matched")


def _first(rules_: tuple[Rule, ...], value: Any) -> Classification | None:
    for rule in rules_:
        answer = rule.apply(value)
        if answer is not None:
            return answer
    return None


def _classify_exception(exc: BaseException) -> Classification:
    if isinstance(exc, BaseExceptionGroup):
        parts = [classify(inner) for inner in exc.exceptions]
        return next((c for c in parts if not c.retryable), parts[0])
    cls = type(exc)
    try:
        result = _fixed_cache[cls]
    except KeyError:
        chain = _exception_chain(cls)
        first = chain[0].then if chain else _UNKNOWN
        result = _fixed_cache[cls] = first if isinstance(first, Classification) else None
    if result is None:
        result = _first(_exception_chain(cls), exc) or _UNKNOWN
    hint = getattr(exc, "retry_after", None)
    if result.retry_after is None and isinstance(hint, int | float) and hint >= 0:
        result = replace(result, retry_after=float(hint))
    return result


def _classify_http(status: HttpStatus) -> Classification:
    code = status.code
    found = _first(_table.get(("http", code), ()), status) or _first(
        _table.get(("http", f"{code // 100}xx"), ()), status
    )
    result = found or verdict(Kind.UNKNOWN, False, f"HTTP {code} has no rule", Severity.SEV4)
    if status.retry_after is not None and result.retry_after is None:
        result = replace(result, retry_after=status.retry_after)
    return result


def _classify_exit(status: ExitStatus) -> Classification:
    if status.signal is not None:
        found = _first(_table.get(("signal", status.signal), ()), status)
        if found is not None:
            return found
    if status.code is not None:
        found = _first(_table.get(("exit", status.code), ()), status)
        if found is not None:
            return found
    what = f"signal {status.signal}" if status.signal is not None else f"exit code {status.code}"
    return verdict(Kind.UNKNOWN, True, f"the process ended with {what}", Severity.SEV2)


def _classify_probe(result: ProbeResult) -> Classification:
    found = _first(_table.get(("probe", result.reason.strip().lower()), ()), result)
    if found is not None:
        return found
    if result.status is not None:
        return _classify_http(HttpStatus(result.status))
    return verdict(Kind.UNKNOWN, True, f"probe failed: {result.reason}")


def classify(
    subject: BaseException | int | HttpStatus | ExitStatus | ProbeResult,
) -> Classification:
    """Say what a failure is: kind, whether retrying can help, a severity hint.

    An `int` is an HTTP status code; use `ExitStatus` for a process and
    `ProbeResult` for a health probe.
    """
    if isinstance(subject, BaseException):
        return _classify_exception(subject)
    if isinstance(subject, HttpStatus):
        return _classify_http(subject)
    if isinstance(subject, int) and not isinstance(subject, bool):
        return _classify_http(HttpStatus(subject))
    if isinstance(subject, ExitStatus):
        return _classify_exit(subject)
    if isinstance(subject, ProbeResult):
        return _classify_probe(subject)
    raise InvalidInput(
        f"cannot classify {type(subject).__name__}; expected an exception, an HTTP status "
        "code, an ExitStatus or a ProbeResult"
    )


_MAX_RETRY_AFTER = 86_400.0


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from an HTTP ``Retry-After`` value (seconds or an HTTP date), or None.

    Hostile values (negative, NaN, absurdly far) are clamped to [0, one day].
    """
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)
