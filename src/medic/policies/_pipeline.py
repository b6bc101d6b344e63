"""pipeline: several policies around one call, in the order given (the first is outermost).

The order is the caller's to choose because it changes behaviour; the one that
fits most services, outermost first, is::

    pipeline(fallback(...), timeout(total), retry(...), breaker, bulkhead, limiter, timeout(per try))

- fallback outermost answers whatever is left after everything else failed;
- a total timeout bounds the whole retry sequence;
- retry outside the breaker sees `CircuitOpen` and can wait for `retry_after`;
- the breaker counts each attempt, and the bulkhead and limiter admit each attempt;
- a per-attempt timeout innermost turns a hung attempt into a countable failure.

Wrapping is done once, when the pipeline decorates a function; a call then runs
the precomputed chain of wrappers with no per-call allocation of policy objects.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from medic.errors import InvalidInput

__all__ = ["Pipeline", "Policy", "pipeline"]

P = ParamSpec("P")
R = TypeVar("R")


class Policy(Protocol):
    """Anything that decorates a function into a protected function."""

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...


class Pipeline:
    """An ordered composition of policies; decorates like each of them."""

    __slots__ = ("policies",)

    def __init__(self, *policies: Policy) -> None:
        if not policies:
            raise InvalidInput("pipeline: give at least one policy")
        for policy in policies:
            if not callable(policy):
                raise InvalidInput(f"pipeline: {policy!r} is not a policy")
        self.policies = policies

    def __repr__(self) -> str:
        return "pipeline(" + ", ".join(repr(p) for p in self.policies) + ")"

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        wrapped: Callable[..., Any] = fn
        for policy in reversed(self.policies):
            wrapped = policy(wrapped)
        return cast(Callable[P, R], wrapped)

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self(fn)(*args, **kwargs)

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await self(fn)(*args, **kwargs)


def pipeline(*policies: Policy) -> Pipeline:
    """Compose `policies` around a call; the first one given is the outermost."""
    return Pipeline(*policies)
