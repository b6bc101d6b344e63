"""The medic actions a runbook may call, injected by whoever runs it.

The engine inside `medic up` can restart, checkpoint and fail over; the CLI
alone cannot. `MedicActionSet` takes the callables a context does have and
answers every other action with `ActionUnavailable`, a clear step failure
rather than a crash or a silent no-op.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from medic.errors import UserError

__all__ = ["ActionUnavailable", "MedicActionSet", "MedicActions"]


class ActionUnavailable(UserError):
    """The runbook asked for a medic action that this context cannot take."""


@runtime_checkable
class MedicActions(Protocol):
    """What medic itself can do for a runbook step."""

    async def restart(self, *, service: str) -> None: ...

    async def checkpoint(self, *, paths: Sequence[str]) -> str:
        """Take a checkpoint of `paths` (empty: the service's declared set); return its id."""
        ...

    async def rollback(self, *, checkpoint_id: str) -> None: ...

    async def restore(self, *, snapshot: str) -> None: ...

    async def failover(self, *, group: str) -> None: ...

    async def set_degraded(self, *, service: str, feature: str, on: bool) -> None: ...


_FIELDS: tuple[str, ...] = ("on_restart", "on_checkpoint", "on_rollback", "on_restore")
_FIELDS += ("on_failover", "on_set_degraded")


@dataclass(frozen=True, slots=True)
class MedicActionSet:
    """A `MedicActions` made of the callables given; the missing ones raise `ActionUnavailable`."""

    on_restart: Callable[[str], Awaitable[None]] | None = None
    on_checkpoint: Callable[[Sequence[str]], Awaitable[str]] | None = None
    on_rollback: Callable[[str], Awaitable[None]] | None = None
    on_restore: Callable[[str], Awaitable[None]] | None = None
    on_failover: Callable[[str], Awaitable[None]] | None = None
    on_set_degraded: Callable[[str, str, bool], Awaitable[None]] | None = None
    context: str = "this context"

    def _missing(self, action: str) -> ActionUnavailable:
        return ActionUnavailable(
            f"medic action {action!r} is not available in {self.context}; "
            "run the runbook from `medic up` (the engine), or replace the step with a command"
        )

    async def restart(self, *, service: str) -> None:
        if self.on_restart is None:
            raise self._missing("restart")
        await self.on_restart(service)

    async def checkpoint(self, *, paths: Sequence[str]) -> str:
        if self.on_checkpoint is None:
            raise self._missing("checkpoint")
        return await self.on_checkpoint(paths)

    async def rollback(self, *, checkpoint_id: str) -> None:
        if self.on_rollback is None:
            raise self._missing("rollback")
        await self.on_rollback(checkpoint_id)

    async def restore(self, *, snapshot: str) -> None:
        if self.on_restore is None:
            raise self._missing("restore")
        await self.on_restore(snapshot)

    async def failover(self, *, group: str) -> None:
        if self.on_failover is None:
            raise self._missing("failover")
        await self.on_failover(group)

    async def set_degraded(self, *, service: str, feature: str, on: bool) -> None:
        if self.on_set_degraded is None:
            raise self._missing("set_degraded")
        await self.on_set_degraded(service, feature, on)

    def __repr__(self) -> str:
        given = [n.removeprefix("on_") for n in _FIELDS if getattr(self, n) is not None]
        return f"MedicActionSet({', '.join(given) or 'none'}; context={self.context!r})"
