"""Frozen event types with stable names: what flows from detection to the record."""

from medic.events._alerts import (
    AlertLevel,
    Delivery,
    DeliveryStatus,
    Notification,
    NotificationKind,
)
from medic.events._health import HealthEvent, ServiceHealthy, ServiceUnhealthy
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
from medic.events._process import (
    ProcessEvent,
    ServiceExited,
    ServiceFailover,
    ServiceFatal,
    ServiceKilling,
    ServiceReady,
    ServiceRestarting,
    ServiceStarting,
    ServiceStopped,
    SupervisorUncleanStop,
)
from medic.events._signal import Action, ExceptionInfo, Frame, Signal

__all__ = [
    "Action",
    "AlertLevel",
    "CallRejected",
    "CallTimedOut",
    "CircuitClosed",
    "CircuitHalfOpened",
    "CircuitOpened",
    "Delivery",
    "DeliveryStatus",
    "ExceptionInfo",
    "FallbackUsed",
    "Frame",
    "HealthEvent",
    "Notification",
    "NotificationKind",
    "PolicyEvent",
    "ProcessEvent",
    "RetryAttempted",
    "ServiceExited",
    "ServiceFailover",
    "ServiceFatal",
    "ServiceHealthy",
    "ServiceKilling",
    "ServiceReady",
    "ServiceRestarting",
    "ServiceStarting",
    "ServiceStopped",
    "ServiceUnhealthy",
    "Signal",
    "SupervisorUncleanStop",
    "policy_signal",
]
