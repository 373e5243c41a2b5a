"""The policy engine contract and the decision cache contract the policy stage codes against."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar, runtime_checkable

from ._decision import PolicyDecision

V = TypeVar("V")


@runtime_checkable
class PolicyEngine(Protocol):
    """Decides policy inputs. Implementations: the embedded engine behind an
    inline, thread or process executor, and remote OPA.

    ``evaluate`` follows the pipeline's convention: it returns the decision
    directly when it needs no I/O (the inline executor), or an awaitable of it
    (an executor hop, an HTTP call). Either may raise
    :class:`PolicyEvaluationError` or :class:`PolicyEngineUnavailableError`;
    the stage fails closed on both.
    """

    @property
    def name(self) -> str:
        """What runs the policy, e.g. "embedded/inline", "opa"."""
        ...

    def evaluate(self, input_json: bytes) -> PolicyDecision | Awaitable[PolicyDecision]: ...

    async def start(self) -> None:
        """Acquire resources (pools, sessions) before the first evaluation."""
        ...

    async def aclose(self) -> None:
        """Release them; the engine must not be used afterwards."""
        ...

    def stats(self) -> dict[str, int | float]: ...


class DecisionCache(Protocol[V]):
    """The tiered decision cache, as the policy stage uses it (implemented in ``cache/``).

    ``get_local`` reads the in-process tier only: synchronous, O(1), no I/O.
    ``get_or_load`` goes L1 -> L2 -> ``loader``; concurrent identical misses
    share one ``loader`` call. An exception from ``loader`` propagates to every
    waiter and is never cached.
    """

    def get_local(self, key: bytes) -> V | None: ...

    async def get_or_load(self, key: bytes, loader: Callable[[], Awaitable[V]]) -> V: ...
