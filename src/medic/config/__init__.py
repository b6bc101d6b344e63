"""medic.toml: the schema, loading with clear errors, and the plan `medic up` runs; runbook files.

Layer 4 (assembly): the only place that parses user files.
"""

from medic.config._alerts_plan import AlertsPlan, ChannelPlan, ChannelSecret
from medic.config._load import LoadedConfig, load_config, parse_config
from medic.config._recovery import RecoverySettings, ServiceCheckpoint
from medic.config._runbooks import (
    RUNBOOK_SUFFIXES,
    load_runbook_file,
    load_runbooks,
    parse_runbook,
)
from medic.config._runtime import Plan, TrackerSettings, build_plan, tracker_settings
from medic.config._schema import MedicConfig
from medic.config._units import expand_env, parse_duration, parse_size

__all__ = [
    "RUNBOOK_SUFFIXES",
    "AlertsPlan",
    "ChannelPlan",
    "ChannelSecret",
    "LoadedConfig",
    "MedicConfig",
    "Plan",
    "RecoverySettings",
    "ServiceCheckpoint",
    "TrackerSettings",
    "build_plan",
    "expand_env",
    "load_config",
    "load_runbook_file",
    "load_runbooks",
    "parse_config",
    "parse_duration",
    "parse_runbook",
    "parse_size",
    "tracker_settings",
]
