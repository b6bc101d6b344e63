"""Frozen event types with stable names: what flows from detection to the record."""

from medic.events._alerts import (
    AlertLevel,
    Delivery,
    DeliveryStatus,
    Notification,
    NotificationKind,
)
from medic.events._health import HealthEvent, ServiceHealthy, ServiceUnhealthy
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
    "Delivery",
    "DeliveryStatus",
    "ExceptionInfo",
    "Frame",
    "HealthEvent",
    "Notification",
    "NotificationKind",
    "ProcessEvent",
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
]
