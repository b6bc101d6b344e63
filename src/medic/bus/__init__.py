"""The in-process event bus with bounded, back-pressured subscriptions."""

from medic.bus._bus import Bus, Overflow, Subscription

__all__ = ["Bus", "Overflow", "Subscription"]
