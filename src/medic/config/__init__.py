"""medic.toml: the schema, loading with clear errors, and the plan `medic up` runs.

Layer 4 (assembly): the only place that parses user files.
"""

from medic.config._load import LoadedConfig, load_config, parse_config
from medic.config._runtime import Plan, TrackerSettings, build_plan, tracker_settings
from medic.config._schema import MedicConfig
from medic.config._units import expand_env, parse_duration, parse_size

__all__ = [
    "LoadedConfig",
    "MedicConfig",
    "Plan",
    "TrackerSettings",
    "build_plan",
    "expand_env",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_size",
    "tracker_settings",
]
