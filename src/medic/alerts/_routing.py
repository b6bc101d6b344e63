"""Which channels hear which alert level.

A rule names channels by their `name` (one configured channel) or their `kind`
(every email channel), ``*`` for every channel, or ``dashboard`` for none at all
(the notice is only recorded, and the dashboard shows it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from medic.errors import ConfigError
from medic.events import AlertLevel

__all__ = ["ALL", "DASHBOARD", "DEFAULT_ROUTES", "Routing"]

ALL = "*"
DASHBOARD = "dashboard"

DEFAULT_ROUTES: Mapping[AlertLevel, tuple[str, ...]] = MappingProxyType(
    {
        AlertLevel.CRITICAL: (ALL,),
        AlertLevel.HIGH: ("email", "webhook"),
        AlertLevel.MEDIUM: (DASHBOARD,),
        AlertLevel.LOW: ("log",),
    }
)


@dataclass(frozen=True, slots=True)
class Routing:
    """Alert level → channel names or kinds; levels left out keep their default route."""

    routes: Mapping[AlertLevel, tuple[str, ...]] = field(default_factory=lambda: DEFAULT_ROUTES)

    def __post_init__(self) -> None:
        merged = dict(DEFAULT_ROUTES)
        for level, names in self.routes.items():
            merged[AlertLevel.parse(str(level))] = tuple(str(n).strip() for n in names)
        object.__setattr__(self, "routes", MappingProxyType(merged))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Iterable[str]]) -> Routing:
        """Build from config text such as ``{"high": ["email", "pager"]}``."""
        routes: dict[AlertLevel, tuple[str, ...]] = {}
        for key, names in data.items():
            try:
                level = AlertLevel.parse(key)
            except ValueError as exc:
                raise ConfigError(str(exc), key=f"alerts.routes.{key}") from None
            if isinstance(names, str):
                raise ConfigError("expected a list of channel names", key=f"alerts.routes.{key}")
            routes[level] = tuple(names)
        return cls(routes)

    def check(self, *, names: Iterable[str], kinds: Iterable[str]) -> None:
        """Every rule names something that can exist: a channel, a kind, ``*`` or ``dashboard``."""
        known = {ALL, DASHBOARD, *names, *kinds}
        for level, rule in self.routes.items():
            unknown = [n for n in rule if n not in known]
            if unknown:
                raise ConfigError(
                    f"unknown channel(s) {', '.join(map(repr, unknown))}; "
                    f"known: {', '.join(sorted(known))}",
                    key=f"alerts.routes.{level}",
                )

    def __repr__(self) -> str:
        inner = ", ".join(f"{lv}={list(names)}" for lv, names in self.routes.items())
        return f"Routing({inner})"
