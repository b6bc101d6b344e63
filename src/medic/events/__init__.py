"""Frozen event types with stable names: what flows from detection to the record."""

from medic.events._alerts import (
    AlertLevel,
    Delivery,
    DeliveryStatus,
    Notification,
    NotificationKind,
)
from medic.events._signal import Action, ExceptionInfo, Frame, Signal

__all__ = [
    "Action",
    "AlertLevel",
    "Delivery",
    "DeliveryStatus",
    "ExceptionInfo",
    "Frame",
    "Notification",
    "NotificationKind",
    "Signal",
]
