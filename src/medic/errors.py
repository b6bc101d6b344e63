"""One root for every error medic raises, named by who is at fault.

    MedicError
    ├── UserError                  the caller or the user's input is wrong
    │   ├── ConfigError            a config file: names the file, key path, expectation
    │   ├── InvalidInput           an argument, payload or file line that cannot be taken
    │   ├── NotFound               an id that names nothing
    │   └── IllegalTransition      a state change the state machine forbids
    ├── EnvironmentFault           the world failed us: disk, network, a service down
    │   ├── StoreUnavailable       the store cannot be opened or reached
    │   ├── StoreCorrupt           stored data no longer matches its hash or format
    │   └── NoSpace                a filesystem ran out of space (ENOSPC, EDQUOT)
    └── MedicInternalError         a bug in medic itself; please report it

Third-party errors are translated into these at the boundary with
``raise ... from exc`` so the cause is never lost.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EnvironmentFault",
    "IllegalTransition",
    "InvalidInput",
    "MedicError",
    "MedicInternalError",
    "NoSpace",
    "NotFound",
    "StoreCorrupt",
    "StoreUnavailable",
    "UserError",
]


class MedicError(Exception):
    """Base of every error medic raises on purpose."""


class UserError(MedicError):
    """The input was wrong; fixing it is up to whoever gave it."""


class ConfigError(UserError):
    """A configuration file is invalid.

    The message always names the file, the key path and what was expected, so
    the user can fix it without reading medic's source.
    """

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        self.path = path
        self.key = key
        where = ":".join(part for part in (path, key) if part)
        super().__init__(f"{where}: {message}" if where else message)


class InvalidInput(UserError):
    """An argument, API payload or input line that medic cannot take."""


class NotFound(UserError):
    """An identifier that names nothing in the store."""


class IllegalTransition(UserError):
    """A state machine refused a transition (for example: acknowledge a closed incident)."""

    def __init__(self, entity: str, current: str, target: str) -> None:
        self.entity = entity
        self.current = current
        self.target = target
        super().__init__(f"{entity}: cannot go from {current!r} to {target!r}")


class EnvironmentFault(MedicError):
    """Something outside medic failed: a disk, the network, a database server."""


class StoreUnavailable(EnvironmentFault):
    """The store could not be opened, migrated or reached."""


class MedicInternalError(MedicError):
    """An invariant inside medic broke. This is a bug: please report it."""


class StoreCorrupt(EnvironmentFault):
    """Stored data (a checkpoint blob, a manifest) no longer matches its hash or format."""


class NoSpace(EnvironmentFault):
    """A filesystem medic writes to is full; what was there before is left intact."""
