"""medic keeps services alive and tells the truth about their failures.

The package is layered (see docs/architecture.md); a module imports only from
its own layer or below, and import-linter enforces it:

    0 kernel          medic.errors, medic.clock, medic.taxonomy, medic.events
    1 mechanisms      medic.policies, medic.bus, medic.logs
    2 capabilities    medic.supervisor, medic.health, medic.checkpoint,
                      medic.tracker, medic.alerts, medic.diagnostics
    3 orchestration   medic.recovery, medic.chaos
    4 assembly        medic.config, medic.plugins, medic.app
    5 faces           medic.web, medic.cli

`import medic` stays light: it pulls in the kernel only, never SQLAlchemy or a
web framework. Import the capability you need (`from medic.tracker import
Tracker`).
"""

from medic._version import __version__
from medic.errors import MedicError

__all__ = ["MedicError", "__version__"]
