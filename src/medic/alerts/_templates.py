"""Editable message templates (seed 002's SEV1 internal notice and customer communication).

A template is a `string.Template` file: a first line ``SUBJECT: …``, then the
body. An optional ``.html`` sibling is the HTML body of an email. Values are
escaped for where they land, never the template (the template is the operator's
own text): subjects and text fields are single lines with control characters
removed, so an incident title cannot forge a header or a "STATUS: Resolved"
line; HTML values are HTML-escaped and links that are not http(s) are dropped.
Substitution is one pass, so a `$name` inside a value stays literal.
"""

from __future__ import annotations

import html
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

from medic.errors import ConfigError
from medic.events import Notification
from medic.taxonomy import Severity

__all__ = ["FIELDS", "MessageTemplate", "RenderedMessage", "Templates"]

FIELDS = frozenset(
    {
        "incident_id", "key", "title", "service", "severity", "severity_label", "level",
        "kind", "status", "status_label", "link", "started_at", "timeline", "impact",
        "symptoms", "commander", "war_room", "now", "next_update",
    }
)  # fmt: skip
_LISTS = ("timeline", "symptoms")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SEVERITY_LABEL = {1: "Critical", 2: "Major", 3: "Minor", 4: "Low"}
_STATUS_LABEL = {
    "triggered": "Investigating",
    "acknowledged": "Investigating",
    "mitigated": "Mitigating",
    "resolved": "Resolved",
    "closed": "Resolved",
}
_MAX_FIELD, _MAX_LINES, _MAX_SUBJECT = 500, 30, 200
MAX_TEMPLATE_BYTES = 64 * 1024


def one_line(value: object, limit: int = _MAX_FIELD) -> str:
    """`value` as one line: control characters and line breaks become single spaces."""
    text = _CONTROL.sub(" ", str(value)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def safe_link(url: str) -> str:
    """An http(s) URL, or nothing: `javascript:` and friends never reach a message."""
    url = one_line(url, 2000)
    return url if re.match(r"(?i)https?://[^\s\"'<>]+$", url) else ""


def _stamp(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC") if when else "unknown"


def _fields(note: Notification, now: datetime) -> dict[str, str | list[str]]:
    sev = Severity(note.severity)
    return {
        "incident_id": str(int(note.incident_id)),
        "key": one_line(note.dedup_key),
        "title": one_line(note.title),
        "service": one_line(note.service),
        "severity": str(sev),
        "severity_label": _SEVERITY_LABEL[sev.value],
        "level": str(note.level),
        "kind": str(note.kind),
        "status": one_line(note.status, 40),
        "status_label": _STATUS_LABEL.get(note.status, one_line(note.status, 40).title()),
        "link": safe_link(note.link),
        "started_at": _stamp(note.started_at),
        "timeline": [one_line(x) for x in note.timeline[-_MAX_LINES:]],
        "impact": one_line(note.impact) or "being assessed",
        "symptoms": [one_line(x) for x in note.symptoms[:_MAX_LINES]] or [one_line(note.title)],
        "commander": one_line(note.commander) or "unassigned",
        "war_room": one_line(note.war_room) or "not opened",
        "now": _stamp(now),
        "next_update": _stamp(now + timedelta(minutes=30)),
    }


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    subject: str
    text: str
    html: str | None


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """One named template; build it with `parse` so that unknown placeholders fail early."""

    name: str
    subject: string.Template
    text: string.Template
    html: string.Template | None
    source: str

    @classmethod
    def parse(
        cls, name: str, text: str, *, html_text: str | None = None, source: str = "<string>"
    ) -> MessageTemplate:
        first, _, body = text.lstrip("\ufeff").partition("\n")
        if not first.upper().startswith("SUBJECT:"):
            raise ConfigError("the first line must be 'SUBJECT: …'", path=source)
        parts = {"subject": first[len("SUBJECT:") :].strip(), "text": body.lstrip("\n")}
        if html_text is not None:
            parts["html"] = html_text
        built: dict[str, string.Template] = {}
        for part, content in parts.items():
            template = string.Template(content)
            if not template.is_valid():
                raise ConfigError(f"invalid $-placeholder in the {part}", path=source)
            unknown = set(template.get_identifiers()) - FIELDS
            if unknown:
                raise ConfigError(
                    f"unknown placeholder(s) {', '.join(sorted(unknown))} in the {part}; "
                    f"known: {', '.join(sorted(FIELDS))}",
                    path=source,
                )
            built[part] = template
        return cls(name, built["subject"], built["text"], built.get("html"), source)

    @classmethod
    def load(cls, name: str, path: Path) -> MessageTemplate:
        """Read `path` (and `path` with suffix .html, when present)."""
        html_path = path.with_suffix(".html")
        try:
            if path.stat().st_size > MAX_TEMPLATE_BYTES:
                raise ConfigError(
                    f"template larger than {MAX_TEMPLATE_BYTES} bytes", path=str(path)
                )
            text = path.read_text(encoding="utf-8")
            html_text = html_path.read_text(encoding="utf-8") if html_path.is_file() else None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read template: {exc}", path=str(path)) from exc
        return cls.parse(name, text, html_text=html_text, source=str(path))

    def render(self, note: Notification, *, now: datetime) -> RenderedMessage:
        fields = _fields(note, now)
        plain = {
            k: "\n".join(f"- {x}" for x in v) if isinstance(v, list) else v
            for k, v in fields.items()
        }
        subject = one_line(self.subject.substitute(plain), _MAX_SUBJECT)
        rendered_html = None
        if self.html is not None:
            marked = {
                k: "".join(f"<li>{html.escape(x)}</li>" for x in v)
                if isinstance(v, list)
                else html.escape(v, quote=True)
                for k, v in fields.items()
            }
            rendered_html = self.html.substitute(marked)
        return RenderedMessage(subject, self.text.substitute(plain), rendered_html)


def _default(name: str) -> MessageTemplate:
    folder = resources.files("medic.alerts") / "templates"
    html_file = folder / f"{name}.html"
    return MessageTemplate.parse(
        name,
        (folder / f"{name}.txt").read_text(encoding="utf-8"),
        html_text=html_file.read_text(encoding="utf-8") if html_file.is_file() else None,
        source=f"medic.alerts:templates/{name}.txt",
    )


class Templates:
    """The shipped templates (`internal`, `customer`), each replaceable by a file of the user's."""

    DEFAULT_NAMES = ("internal", "customer")

    def __init__(self, overrides: Mapping[str, str | Path] | None = None) -> None:
        self._by_name = {name: _default(name) for name in self.DEFAULT_NAMES}
        for name, path in (overrides or {}).items():
            self._by_name[name] = MessageTemplate.load(name, Path(path))

    def __getitem__(self, name: str) -> MessageTemplate:
        try:
            return self._by_name[name]
        except KeyError:
            raise ConfigError(
                f"no message template {name!r}; known: {', '.join(sorted(self._by_name))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def __repr__(self) -> str:
        return f"Templates({', '.join(self.names())})"
