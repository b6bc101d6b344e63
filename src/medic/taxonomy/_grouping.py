"""Grouping: which issue a signal belongs to, and why.

The first variant that applies wins (Sentry's order, plus medic's probes):

1. ``client-fingerprint``: the signal's own fingerprint; ``{{ default }}`` expands to
   what the signal would have grouped by without it.
2. ``rule:NAME``: the first configured `GroupingRule` whose matchers all match.
3. ``exception-frames``: exception type + in-app frames (module + function; never
   line numbers, absolute paths or addresses, so a redeploy does not split issues).
4. ``exception-value``: exception type + its normalised value.
5. ``probe``: (service, probe, reason) for a health-probe failure. A probe's message
   carries evidence (latencies, pids, byte counts) and would split one failure
   into many issues, so probes group before messages.
6. ``message``: the normalised message (numbers, hex, UUIDs, IPs, host:port, paths,
   quoted strings and timestamps masked).

Every hash includes the service: the same error in two services is two issues.
The result records the version, the winning variant and its inputs so that
`medic issues show` can say why a signal landed where it did, and a later
grouping version can be introduced without splitting history.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medic.events import Signal

__all__ = [
    "GROUPING_VERSION",
    "Grouper",
    "Grouping",
    "GroupingRule",
    "group",
    "normalize_message",
]

GROUPING_VERSION = "medic-grouping:1"

# One pass over the message with one alternation; the group name says what to mask.
# Order matters: longer, more specific shapes come first.
_MASKS = re.compile(
    r"""
    (?P<ts>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)
  | (?P<uuid>\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)
  | (?P<ipport>\b(?:\d{1,3}\.){3}\d{1,3}:\d{1,5}\b|\[[0-9a-fA-F:]+\]:\d{1,5})
  | (?P<ip>\b(?:\d{1,3}\.){3}\d{1,3}\b|(?<![\w:>])(?:(?:[0-9a-fA-F]{1,4}:){1,6}|:):(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4}){0,6})?(?![\w:<])|\b[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4}){5,7}\b)
  | (?P<hostport>(?<![\w>])[A-Za-z][\w.-]*:\d{2,5}\b)
  | (?P<path>(?:(?<![\w/.>])\.{0,2}/|(?<![\w>])[A-Za-z]:\\)[^\s'",;:()\[\]{}<>]+)
  | (?P<quoted>'[^'\n]{0,200}'|"[^"\n]{0,200}")
  | (?P<hex>\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b)
  | (?P<num>(?<![\d.])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?!\d))
    """,
    re.VERBOSE,
)
_PLACEHOLDER = {
    "ts": "<timestamp>",
    "uuid": "<uuid>",
    "ipport": "<ip>:<port>",
    "ip": "<ip>",
    "hostport": "<host>:<port>",
    "path": "<path>",
    "quoted": "<str>",
    "hex": "<hex>",
    "num": "<num>",
}
# A message with none of these characters has nothing to mask: skip the big pattern.
_MASKABLE = re.compile(r"[\d'\"/\\:]")
# Shapes that may contain whitespace: quoted strings and "date time" timestamps. The
# timestamp check starts at its dash, so the search skips ahead to dashes instead of
# trying the pattern at every character.
_WIDE_TIMESTAMP = re.compile(r"-(?<=\d{4}-)\d{2}-\d{2} \d")
_MAX_MESSAGE = 1024
# Whole words of the commonest volatile shapes, which the full pattern would mask
# exactly so (tests/taxonomy check it): spotting them costs one short match
# instead of the full pattern's nine alternatives at every character. ASCII only,
# so `[0-9]` is exactly `\d`. A UUID needs a digit here: a word without any
# maskable character is never masked.
_ASCII_MASKABLE = re.compile(r"[0-9/\\:]")  # within a word of a text without quotes
_ASCII_MASKABLE_ANY = re.compile(r"[0-9'\"/\\:]")
_COMMON = re.compile(
    r"""
    (?P<num>[0-9]+(?:\.[0-9]+)?(?:ms|us|ns|s|m|h|%)?)
  | (?P<ipport>(?:[0-9]{1,3}\.){3}[0-9]{1,3}:[0-9]{1,5})
  | (?P<ip>(?:[0-9]{1,3}\.){3}[0-9]{1,3})
  | (?P<path>/[^\s'",;:()\[\]{}<>]+)
  | (?P<uuid>(?=[a-fA-F]*[0-9])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})
  | (?P<label>[A-Za-z]+:)
    """,
    re.VERBOSE,
)
_COMMON_PLACEHOLDER = {"ipport": "<ip>:<port>", "ip": "<ip>", "path": "<path>", "uuid": "<uuid>"}


def _mask(match: re.Match[str]) -> str:
    return _PLACEHOLDER[match.lastgroup or "num"]


def _mask_word(word: str) -> str:
    """One whitespace-free ASCII word holding a digit, slash, backslash or colon, masked."""
    common = _COMMON.fullmatch(word)
    if common is None:
        return _MASKS.sub(_mask, word)
    shape = common.lastgroup
    if shape == "num":
        return "<num>" + word.lstrip("0123456789.")  # the unit, if any
    if shape == "label":
        return word
    return _COMMON_PLACEHOLDER[shape or ""]


def normalize_message(message: str) -> str:
    """Mask the parts of a message that vary between occurrences of one failure.

    >>> normalize_message("timeout after 3.5s talking to 10.0.0.7:5432 (req 9f1c2e3a4b5d)")
    'timeout after <num>s talking to <ip>:<port> (req <hex>)'
    """
    # Whitespace is collapsed first, so a newline inside quotes cannot make the result
    # differ from normalising it again.
    words = message[:_MAX_MESSAGE].split()
    text = " ".join(words)
    ascii_only = text.isascii()
    if (_ASCII_MASKABLE_ANY if ascii_only else _MASKABLE).search(text) is None:
        return text
    if "'" in text or '"' in text or ("-" in text and _WIDE_TIMESTAMP.search(text) is not None):
        return _MASKS.sub(_mask, text)
    # No shape can span whitespace here, so only the words holding a digit, slash or
    # colon need the (costly) full pattern: the same result, several times faster.
    if ascii_only:
        for i, word in enumerate(words):
            if word.isalpha():
                continue
            if word.isdigit():
                words[i] = "<num>"
            elif _ASCII_MASKABLE.search(word) is not None:
                words[i] = _mask_word(word)
        return " ".join(words)
    for i, word in enumerate(words):
        if word.isdigit():
            words[i] = "<num>"
        elif _MASKABLE.search(word) is not None:
            words[i] = _MASKS.sub(_mask, word)
    return " ".join(words)


@dataclass(frozen=True, slots=True)
class GroupingRule:
    """A server-side fingerprint rule: when every matcher matches, use `fingerprint`.

    Matcher keys: ``service``, ``kind``, ``source``, ``message``, ``type`` (exception
    type), ``value`` (exception value), ``module``, ``function`` (any frame), ``probe``
    and ``tags.NAME``. Values are shell-style globs (``*timeout*``), case-sensitive.
    """

    name: str
    matchers: Mapping[str, str]
    fingerprint: tuple[str, ...] = ("{{ default }}",)
    _compiled: tuple[tuple[str, re.Pattern[str]], ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        if not self.matchers:
            raise ValueError(f"grouping rule {self.name!r} has no matchers")
        for key in self.matchers:
            if key not in _RULE_KEYS and not key.startswith("tags."):
                raise ValueError(
                    f"grouping rule {self.name!r}: unknown matcher {key!r}; "
                    f"expected one of {', '.join(sorted(_RULE_KEYS))} or tags.NAME"
                )
        compiled = tuple(
            (key, re.compile(fnmatch.translate(pattern))) for key, pattern in self.matchers.items()
        )
        object.__setattr__(self, "_compiled", compiled)

    def matches(self, signal: Signal) -> bool:
        for key, pattern in self._compiled:
            if not any(pattern.match(value) for value in _field_values(signal, key)):
                return False
        return True


_RULE_KEYS = frozenset(
    {"service", "kind", "source", "message", "type", "value", "module", "function", "probe"}
)


def _field_values(signal: Signal, key: str) -> Iterable[str]:
    exc = signal.exception
    if key == "service":
        return (signal.service,)
    if key == "kind":
        return (str(signal.kind),)
    if key == "source":
        return (signal.source,)
    if key == "message":
        return (signal.message,)
    if key == "probe":
        return (signal.probe or "",)
    if key == "type":
        return (exc.type,) if exc else ()
    if key == "value":
        return (exc.value,) if exc else ()
    if key == "module":
        return tuple(f.module for f in exc.frames) if exc else ()
    if key == "function":
        return tuple(f.function for f in exc.frames) if exc else ()
    tag = signal.tags.get(key[5:])
    return (tag,) if tag is not None else ()


@dataclass(frozen=True, slots=True)
class Grouping:
    """Which issue a signal belongs to, and the evidence for it."""

    hash: str
    variant: str
    inputs: dict[str, Any]
    version: str = GROUPING_VERSION


def _digest(parts: Iterable[str]) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


def _default(signal: Signal) -> tuple[str, dict[str, Any]]:
    """The variant the signal groups by when neither it nor a rule says otherwise."""
    exc = signal.exception
    if exc is not None:
        frames = [
            f"{f.module or _module_from_filename(f.filename)}.{f.function}"
            for f in exc.frames
            if f.in_app
        ]
        if frames:
            return "exception-frames", {"type": exc.type, "frames": frames}
        return "exception-value", {"type": exc.type, "value": normalize_message(exc.value)}
    if signal.probe:
        return "probe", {"probe": signal.probe, "reason": signal.reason or ""}
    return "message", {"message": normalize_message(signal.message)}


def _module_from_filename(filename: str) -> str:
    """A module-like name from a path: its basename without extension, never the directory."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base


def _inputs_parts(variant: str, inputs: Mapping[str, Any]) -> list[str]:
    parts = [variant]
    for key in sorted(inputs):
        value = inputs[key]
        parts.append(key)
        if isinstance(value, list | tuple):
            parts.extend(str(v) for v in value)
        else:
            parts.append(str(value))
    return parts


def _expand(fingerprint: Iterable[str], signal: Signal) -> tuple[list[str], dict[str, Any]]:
    expanded: list[str] = []
    default_used: dict[str, Any] = {}
    for part in fingerprint:
        token = part.strip()
        if token in ("{{ default }}", "{{default}}"):
            variant, inputs = _default(signal)
            default_used = {"variant": variant, **inputs}
            expanded.extend(_inputs_parts(variant, inputs))
        elif token in ("{{ type }}", "{{type}}"):
            expanded.append(signal.exception.type if signal.exception else "")
        elif token in ("{{ message }}", "{{message}}"):
            expanded.append(normalize_message(signal.message))
        else:
            expanded.append(part)
    return expanded, default_used


def group(signal: Signal, rules: Iterable[GroupingRule] = ()) -> Grouping:
    """Decide the issue fingerprint of `signal`, recording which rule won and its inputs."""
    if signal.fingerprint:
        parts, default_used = _expand(signal.fingerprint, signal)
        inputs: dict[str, Any] = {"fingerprint": list(signal.fingerprint)}
        if default_used:
            inputs["default"] = default_used
        return Grouping(_digest([signal.service, "client", *parts]), "client-fingerprint", inputs)
    for rule in rules:
        if rule.matches(signal):
            parts, default_used = _expand(rule.fingerprint, signal)
            inputs = {"rule": rule.name, "fingerprint": list(rule.fingerprint)}
            if default_used:
                inputs["default"] = default_used
            return Grouping(_digest([signal.service, "rule", *parts]), f"rule:{rule.name}", inputs)
    variant, inputs = _default(signal)
    if variant == "message":  # the common case, without the generic walk over inputs
        parts = [signal.service, variant, "message", inputs["message"]]
    else:
        parts = [signal.service, *_inputs_parts(variant, inputs)]
    return Grouping(_digest(parts), variant, inputs)


# A message's shape: its UTF-8 bytes with the digits 2-9 written as 1 (see Grouper.normalize).
_SHAPE = bytes.maketrans(b"23456789", b"11111111")
_KEPT_DIGIT = re.compile(r"[1-9]")


class Grouper:
    """`group` for a stream of signals, remembering recent answers (bounded).

    The signals of one failure repeat their grouping inputs (the normalised message,
    the exception's type and frames, the probe), so the hash and the `Grouping` are
    made once per distinct input instead of once per signal. The answers are the
    ones `group` gives; a returned `Grouping` may be shared, so treat it as read-only.
    """

    def __init__(self, rules: Iterable[GroupingRule] = (), *, size: int = 4096) -> None:
        self.rules = tuple(rules)
        self._size = size
        self._known: dict[tuple[Any, ...], Grouping] = {}
        self._masked: dict[bytes, str] = {}

    def normalize(self, message: str) -> str:
        """`normalize_message`, remembered by the message's shape (bounded).

        Every pattern of `normalize_message` treats the digits 1-9 alike (only 0
        appears on its own, in `0x`), so two messages that differ only in which of
        those digits they hold are masked at the same places. When the masked
        message keeps none of them, it is the answer for every message of that
        shape: ``took 12 ms`` and ``took 47 ms`` are masked once.
        """
        shape = message.encode("utf-8", "surrogatepass").translate(_SHAPE)
        found = self._masked.get(shape)
        if found is None:
            found = normalize_message(message)
            if _KEPT_DIGIT.search(found) is None:
                if len(self._masked) >= self._size:
                    self._masked.clear()
                self._masked[shape] = found
        return found

    def __call__(self, signal: Signal) -> Grouping:
        if signal.fingerprint or (self.rules and any(rule.matches(signal) for rule in self.rules)):
            return group(signal, self.rules)
        exc = signal.exception
        service = signal.service
        if exc is None:
            if signal.probe:
                key: tuple[Any, ...] = ("probe", service, signal.probe, signal.reason or "")
            else:
                message = self.normalize(signal.message)
                key = ("message", service, message)
                found = self._known.get(key)
                if found is None:
                    inputs = {"message": message}
                    found = Grouping(
                        _digest([service, "message", "message", message]), "message", inputs
                    )
                    self._remember(key, found)
                return found
        elif exc.frames:
            # Only stored when the frames decided (some were in-app): the same frames
            # then always decide the same way, whatever the exception's value.
            key = ("frames", service, exc.type, exc.frames)
        else:
            key = ("value", service, exc.type, self.normalize(exc.value))
        found = self._known.get(key)
        if found is None:
            found = group(signal)
            if key[0] != "frames" or found.variant == "exception-frames":
                self._remember(key, found)
        return found

    def _remember(self, key: tuple[Any, ...], grouping: Grouping) -> None:
        if len(self._known) >= self._size:
            self._known.clear()
        self._known[key] = grouping
