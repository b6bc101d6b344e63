"""The composition root: `medic up` and the control socket its commands talk to.

Layer 4 (assembly). It wires the supervisor, the health monitor and the tracker
together through the bus; the CLI drives it through `MedicApp` and `ControlClient`.
"""

from medic.app._app import MedicApp
from medic.app._control import ControlClient, ControlServer
from medic.app._paths import RuntimePaths
from medic.app._recorder import Recorder

__all__ = ["ControlClient", "ControlServer", "MedicApp", "Recorder", "RuntimePaths"]
