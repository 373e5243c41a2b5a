"""The policy stage: every message is decided by the constitution's Rego policy.

Flow for one (message, recipient)::

    build the policy input -> key = xxh3_128(constitutional hash + canonical input)
      -> cache.get_local(key)      hit: return the Verdict now, no await
      -> cache.get_or_load(key, evaluate)   L2, then the engine; identical
                                            concurrent misses share one evaluation
    (no cache: evaluate directly; the inline executor answers synchronously)

A denial carries one ``Reason("policy", "policy_denied", ...)`` per reason the
policy gave. Any engine failure - an error, a broken decision contract, a
timeout, an unreachable OPA - denies with ``policy_error`` (fail closed) and is
counted; errors are never cached, so the next message asks again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable, Iterator
from typing import TYPE_CHECKING, Final

from ..constitution import Constitution
from ..models import AgentMessage, MessageType, Priority, Reason
from ..policy._data import parse_constitution_data
from ..policy._decision import PolicyDecision
from ..policy._engine import DecisionCache, PolicyEngine
from ..policy._factory import create_policy_engine
from ..policy._input import PolicyInputEncoder, PolicyInputSpec, policy_input_document
from ..policy._key import canonical_json, decision_key_from_json
from ..policy._settings import PolicySettings
from ._stage import ALLOW, StageContext, Verdict, VerdictKind

if TYPE_CHECKING:
    from ..registry import AgentRecord

logger = logging.getLogger(__name__)

STAGE: Final = "policy"
_EMPTY_PAYLOAD_BYTES: Final = 2  # len(b"{}")
_WARM_CONCURRENCY: Final = 32


class PolicyStage:
    """The ``policy`` validation stage.

    Build it with :meth:`from_constitution`, ``await start()`` it before the first
    message (and ``await warm(...)`` to pre-load decisions), ``await aclose()``
    it when the bus stops or after a reload has swapped in a new stage.

    Example::

        stage = PolicyStage.from_constitution(constitution, settings.policy, cache=cache)
        await stage.start()
        await stage.warm(registry, MessageType)
        verdict = stage.check(message, StageContext(sender, recipient))
        if not isinstance(verdict, Verdict):
            verdict = await verdict
    """

    name: str = STAGE

    def __init__(
        self,
        engine: PolicyEngine,
        *,
        constitutional_hash: str,
        input_spec: PolicyInputSpec | None = None,
        cache: DecisionCache[PolicyDecision] | None = None,
        eval_timeout_s: float = 1.0,
        warm_max_decisions: int = 4_096,
    ) -> None:
        self.engine = engine
        self.constitutional_hash = constitutional_hash
        self._encoder = PolicyInputEncoder(input_spec or PolicyInputSpec())
        self._cache = cache
        self._eval_timeout_s = eval_timeout_s
        self._warm_max = warm_max_decisions
        self.decisions = 0
        self.evaluations = 0
        self.allows = 0
        self.denials = 0
        self.errors = 0
        self.timeouts = 0
        self.local_hits = 0
        self.cache_loads = 0
        self.warmed = 0

    @classmethod
    def from_constitution(
        cls,
        constitution: Constitution,
        settings: PolicySettings | None = None,
        *,
        cache: DecisionCache[PolicyDecision] | None = None,
    ) -> PolicyStage:
        """The stage for ``constitution`` with the engine ``settings`` asks for.

        Raises:
            PolicyLoadError: the bundle's policy does not load (the bus keeps its
                current constitution).
            ConfigurationError: the data document has the wrong shape.
        """
        settings = settings or PolicySettings()
        data = parse_constitution_data(constitution)
        return cls(
            create_policy_engine(constitution, settings),
            constitutional_hash=constitution.hash,
            input_spec=PolicyInputSpec.from_data(data),
            cache=cache,
            eval_timeout_s=settings.eval_timeout_s,
            warm_max_decisions=settings.warm_max_decisions,
        )

    async def start(self) -> None:
        """Start the engine (spawn executor workers, open the OPA session)."""
        await self.engine.start()

    async def aclose(self) -> None:
        await self.engine.aclose()

    def check(self, message: AgentMessage, ctx: StageContext) -> Verdict | Awaitable[Verdict]:
        self.decisions += 1
        input_json = self._encoder.encode(message, ctx)
        if self._cache is not None:
            key = decision_key_from_json(self.constitutional_hash, input_json)
            cached = self._cache.get_local(key)
            if cached is not None:
                self.local_hits += 1
                return self._verdict(cached)
            return self._load(self._cache, key, input_json, message)
        self.evaluations += 1
        try:
            outcome = self.engine.evaluate(input_json)
        except Exception as exc:
            return self._failed(exc, message)
        if isinstance(outcome, PolicyDecision):
            return self._verdict(outcome)
        return self._await_outcome(outcome, message)

    async def _load(
        self,
        cache: DecisionCache[PolicyDecision],
        key: bytes,
        input_json: bytes,
        message: AgentMessage,
    ) -> Verdict:
        self.cache_loads += 1
        try:
            decision = await cache.get_or_load(key, lambda: self._evaluate(input_json))
        except Exception as exc:
            return self._failed(exc, message)
        return self._verdict(decision)

    async def _await_outcome(
        self, outcome: Awaitable[PolicyDecision], message: AgentMessage
    ) -> Verdict:
        try:
            async with asyncio.timeout(self._eval_timeout_s):
                decision = await outcome
        except Exception as exc:
            return self._failed(exc, message)
        return self._verdict(decision)

    async def _evaluate(self, input_json: bytes) -> PolicyDecision:
        """The cache loader: one engine evaluation, bounded by ``eval_timeout_s``."""
        self.evaluations += 1
        outcome = self.engine.evaluate(input_json)
        if isinstance(outcome, PolicyDecision):
            return outcome
        async with asyncio.timeout(self._eval_timeout_s):
            return await outcome

    def _verdict(self, decision: PolicyDecision) -> Verdict:
        if decision.allow:
            self.allows += 1
            return ALLOW
        self.denials += 1
        return Verdict(
            VerdictKind.DENY,
            tuple(Reason(STAGE, "policy_denied", reason) for reason in decision.reasons),
        )

    def _failed(self, exc: Exception, message: AgentMessage) -> Verdict:
        self.errors += 1
        if isinstance(exc, TimeoutError):
            self.timeouts += 1
            cause = f"no decision within {self._eval_timeout_s:g} s"
        else:
            cause = f"{type(exc).__name__}: {exc}"
        logger.warning(
            "policy engine %s failed on message %s: %s",
            self.engine.name,
            message.message_id,
            type(exc).__name__,
            extra={"stage": STAGE, "message_id": message.message_id, "code": "policy_error"},
        )
        return Verdict.deny(
            STAGE,
            "policy_error",
            f"policy engine {self.engine.name} failed ({cause}); "
            "the message was denied (fail closed)",
        )

    async def warm(
        self, records: Iterable[AgentRecord], message_types: Iterable[MessageType]
    ) -> int:
        """Pre-load decisions for registered agents so first messages hit the cache.

        For every pair of agents in the same tenant and every type in
        ``message_types``, the decision for the plain shape of such a message
        (normal priority, empty payload, no metadata) is loaded into the cache.
        Pairs are ordered so each (tenant, sender role, recipient role, type) is
        covered before any is covered twice. At most ``warm_max_decisions`` are
        loaded and at most twice that many candidates examined, so a large
        registry costs a bounded start-up. Messages of another shape (other
        sizes, metadata) miss once each: the key is the exact input. Without a
        cache this does nothing.

        Returns:
            how many decisions were loaded. Failures are logged and counted as
            errors; they never fail the caller (messages fail closed instead).
        """
        if self._cache is None or self._warm_max == 0:
            return 0
        types = list(dict.fromkeys(message_types))
        jobs: list[tuple[bytes, bytes]] = []
        seen: set[bytes] = set()
        budget = 2 * self._warm_max
        candidates = (
            (sender, recipient, message_type)
            for sender, recipient in _warm_pairs(list(records))
            for message_type in types
        )
        for sender, recipient, message_type in candidates:
            if budget <= 0 or len(jobs) >= self._warm_max:
                break
            budget -= 1
            input_json = canonical_json(
                policy_input_document(
                    sender,
                    recipient,
                    message_type=message_type.value,
                    priority=Priority.NORMAL.value,
                    tenant_id=sender.tenant_id,
                    size_bytes=_EMPTY_PAYLOAD_BYTES,
                )
            )
            key = decision_key_from_json(self.constitutional_hash, input_json)
            if key in seen or self._cache.get_local(key) is not None:
                continue
            seen.add(key)
            jobs.append((key, input_json))
        loaded = 0
        for start in range(0, len(jobs), _WARM_CONCURRENCY):
            batch = jobs[start : start + _WARM_CONCURRENCY]
            results = await asyncio.gather(
                *(self._warm_one(self._cache, key, input_json) for key, input_json in batch)
            )
            loaded += sum(results)
        self.warmed += loaded
        return loaded

    async def _warm_one(
        self, cache: DecisionCache[PolicyDecision], key: bytes, input_json: bytes
    ) -> bool:
        try:
            await cache.get_or_load(key, lambda: self._evaluate(input_json))
        except Exception as exc:
            self.errors += 1
            logger.warning(
                "policy cache warm-up could not evaluate a decision: %s",
                type(exc).__name__,
                extra={"stage": STAGE},
            )
            return False
        return True

    def stats(self) -> dict[str, int | float]:
        """Counters for the metrics exporter (cheap: plain attribute reads)."""
        return {
            "decisions": self.decisions,
            "evaluations": self.evaluations,
            "allows": self.allows,
            "denials": self.denials,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "local_hits": self.local_hits,
            "cache_loads": self.cache_loads,
            "warmed": self.warmed,
            **self.engine.stats(),
        }


def _warm_pairs(records: list[AgentRecord]) -> Iterator[tuple[AgentRecord, AgentRecord]]:
    """Same-tenant (sender, recipient) pairs: one per (tenant, sender role, recipient role)
    first, then every pair. Lazy, so a large registry costs only what the bound lets through."""
    tenants: dict[str, dict[str, list[AgentRecord]]] = {}
    for record in records:
        tenants.setdefault(record.tenant_id, {}).setdefault(record.role, []).append(record)
    for roles in tenants.values():
        for senders in roles.values():
            for recipients in roles.values():
                yield senders[0], recipients[0]
    for roles in tenants.values():
        members = [record for group in roles.values() for record in group]
        for sender in members:
            for recipient in members:
                yield sender, recipient
