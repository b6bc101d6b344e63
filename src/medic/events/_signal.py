"""The signal: one observation that something failed, in the shape every source shares.

A probe failure, an exception caught by a policy, a log line, an Alertmanager
alert and a Sentry event all become a `Signal` before anything else looks at
them, so one grouping path and one incident path serve them all.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from medic.taxonomy import Kind, Severity

__all__ = ["Action", "ExceptionInfo", "Frame", "Signal"]


class Action(enum.StrEnum):
    """What the signal asks of its incident (PagerDuty Events v2's event_action, plus mitigate).

    An automated source (the supervisor) mitigates when a restart succeeds and
    resolves once probes pass again; both find the incident by `dedup_key`.
    """

    TRIGGER = "trigger"
    ACKNOWLEDGE = "acknowledge"
    MITIGATE = "mitigate"
    RESOLVE = "resolve"


@dataclass(frozen=True, slots=True)
class Frame:
    """One stack frame. Grouping uses module + function only, never line numbers or paths."""

    function: str
    module: str = ""
    filename: str = ""
    lineno: int | None = None
    in_app: bool = True


@dataclass(frozen=True, slots=True)
class ExceptionInfo:
    """An exception as Sentry describes it: type, value and frames (innermost last)."""

    type: str
    value: str = ""
    frames: tuple[Frame, ...] = ()

    @classmethod
    def from_exception(
        cls, exc: BaseException, *, app_prefixes: tuple[str, ...] = ()
    ) -> ExceptionInfo:
        """Describe a live exception; frames whose module starts with an app prefix are in-app.

        With no prefixes, frames outside the standard library and site-packages count
        as in-app, which is what a service's own code usually is.
        """
        frames: list[Frame] = []
        tb = exc.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            module = str(tb.tb_frame.f_globals.get("__name__", ""))
            filename = code.co_filename
            if app_prefixes:
                in_app = module.startswith(app_prefixes)
            else:
                in_app = "site-packages" not in filename and not filename.startswith("<frozen")
            frames.append(Frame(code.co_name, module, filename, tb.tb_lineno, in_app))
            tb = tb.tb_next
        return cls(type(exc).__qualname__, str(exc), tuple(frames))


@dataclass(frozen=True, slots=True)
class Signal:
    """One observation that something failed (or, with action=RESOLVE, stopped failing).

    `source` + `external_id` make a signal idempotent: recording the same pair twice
    stores it once. `fingerprint` overrides grouping into issues; `dedup_key`
    overrides grouping into incidents. `occurred_at` is when the failure began
    (impact start, for MTTD and MTTR); `detected_at` is when a rule decided it was a
    failure (a probe's third miss); both default to the time of recording.
    """

    service: str
    message: str
    kind: Kind = Kind.UNKNOWN
    severity: Severity | None = None
    source: str = "api"
    occurred_at: datetime | None = None
    detected_at: datetime | None = None
    external_id: str | None = None
    fingerprint: tuple[str, ...] = ()
    dedup_key: str | None = None
    action: Action = Action.TRIGGER
    exception: ExceptionInfo | None = None
    probe: str | None = None
    reason: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    release: str | None = None
    environment: str | None = None
    title: str | None = None
