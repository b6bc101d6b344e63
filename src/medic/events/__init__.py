"""Frozen event types with stable names: what flows from detection to the record."""

from medic.events._policy import (
    CallRejected,
    CallTimedOut,
    CircuitClosed,
    CircuitHalfOpened,
    CircuitOpened,
    FallbackUsed,
    PolicyEvent,
    RetryAttempted,
    policy_signal,
)
from medic.events._signal import Action, ExceptionInfo, Frame, Signal

__all__ = [
    "Action",
    "CallRejected",
    "CallTimedOut",
    "CircuitClosed",
    "CircuitHalfOpened",
    "CircuitOpened",
    "ExceptionInfo",
    "FallbackUsed",
    "Frame",
    "PolicyEvent",
    "RetryAttempted",
    "Signal",
    "policy_signal",
]
