"""The recovery engine (orchestration layer): escalation of what recovery could not fix."""

from medic.recovery._escalation import DEFAULT_LADDER, Condition, Escalator, Fired, Ladder, Level

__all__ = ["DEFAULT_LADDER", "Condition", "Escalator", "Fired", "Ladder", "Level"]
