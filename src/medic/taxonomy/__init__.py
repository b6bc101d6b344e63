"""Failure kinds, severities, classification and grouping fingerprints (kernel layer).

Everything here is pure standard-library code so that every layer can say what a
failure is in the same words.
"""

from medic.taxonomy._classify import (
    ExitStatus,
    HttpStatus,
    ProbeResult,
    Rule,
    classify,
    parse_retry_after,
    register_rule,
    rules,
    unregister_rule,
    verdict,
)
from medic.taxonomy._grouping import (
    GROUPING_VERSION,
    Grouper,
    Grouping,
    GroupingRule,
    group,
    normalize_message,
)
from medic.taxonomy._kinds import Classification, Kind, Severity
from medic.taxonomy._rules import install_builtin_rules

install_builtin_rules()

__all__ = [
    "GROUPING_VERSION",
    "Classification",
    "ExitStatus",
    "Grouper",
    "Grouping",
    "GroupingRule",
    "HttpStatus",
    "Kind",
    "ProbeResult",
    "Rule",
    "Severity",
    "classify",
    "group",
    "normalize_message",
    "parse_retry_after",
    "register_rule",
    "rules",
    "unregister_rule",
    "verdict",
]
