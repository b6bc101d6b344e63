"""Frozen event types with stable names: what flows from detection to the record."""

from medic.events._signal import Action, ExceptionInfo, Frame, Signal

__all__ = ["Action", "ExceptionInfo", "Frame", "Signal"]
