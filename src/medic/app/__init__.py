"""The composition root: `medic up` and the control socket its commands talk to.

Layer 4 (assembly). It wires the supervisor, the health monitor and the tracker
together through the bus; the CLI drives it through `MedicApp` and `ControlClient`.

Each name loads its module on first use (PEP 562): `medic status`, `stop` or
`logs` need only the control client and the runtime paths, not the whole app
with SQLAlchemy, pydantic and every capability behind `MedicApp`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medic.app._app import MedicApp
    from medic.app._control import ControlClient, ControlServer
    from medic.app._paths import RuntimePaths
    from medic.app._recorder import Recorder

__all__ = ["ControlClient", "ControlServer", "MedicApp", "Recorder", "RuntimePaths"]

_HOMES = {
    "ControlClient": "medic.app._control",
    "ControlServer": "medic.app._control",
    "MedicApp": "medic.app._app",
    "Recorder": "medic.app._recorder",
    "RuntimePaths": "medic.app._paths",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
