"""Failure kinds, severities, classification and grouping fingerprints (kernel layer).

Everything here is pure standard-library code so that every layer can say what a
failure is in the same words.
"""

from medic.taxonomy._grouping import (
    GROUPING_VERSION,
    Grouping,
    GroupingRule,
    group,
    normalize_message,
)
from medic.taxonomy._kinds import Classification, Kind, Severity

__all__ = [
    "GROUPING_VERSION",
    "Classification",
    "Grouping",
    "GroupingRule",
    "Kind",
    "Severity",
    "group",
    "normalize_message",
]
