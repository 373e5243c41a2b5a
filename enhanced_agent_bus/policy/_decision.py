"""A policy decision and the contract an engine's answer must meet.

The decision rule returns ``{"allow": <bool>, "deny": <set or list of strings>}``.
Anything else (a missing decision, a non-boolean ``allow``, a reason that is not
a string) is an engine error, and the stage fails closed on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import orjson

from ._errors import PolicyEvaluationError

#: The reason given when a policy denies without saying why.
UNEXPLAINED_DENIAL: Final = "the policy denied the message without giving a reason"

_MAX_REASONS: Final = 64
_MAX_REASON_CHARS: Final = 2_000


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """What the constitution's policy decided for one input.

    ``reasons`` is sorted, so equal decisions compare and encode equal.

    Example::

        decision = PolicyDecision.from_result({"allow": False, "deny": ["too big"]}, source="rego")
        assert decision == PolicyDecision(allow=False, reasons=("too big",))
    """

    allow: bool
    reasons: tuple[str, ...] = ()

    def to_bytes(self) -> bytes:
        """The decision as compact JSON (the L2 cache codec and the process-pool wire format)."""
        return orjson.dumps({"allow": self.allow, "reasons": list(self.reasons)})

    @classmethod
    def from_bytes(cls, raw: bytes) -> PolicyDecision:
        """Decode :meth:`to_bytes` output.

        Raises:
            ValueError: ``raw`` is not an encoded decision (garbage, truncated, wrong shape).
        """
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not an encoded policy decision: {exc}") from None
        if not isinstance(doc, dict) or set(doc) != {"allow", "reasons"}:
            raise ValueError("not an encoded policy decision: expected keys 'allow' and 'reasons'")
        allow, reasons = doc["allow"], doc["reasons"]
        if not isinstance(allow, bool) or not isinstance(reasons, list):
            raise ValueError(
                "not an encoded policy decision: 'allow' must be bool, 'reasons' a list"
            )
        if not all(isinstance(r, str) for r in reasons):
            raise ValueError("not an encoded policy decision: every reason must be a string")
        return cls(allow=allow, reasons=tuple(reasons))

    @classmethod
    def from_result(cls, result: object, *, source: str) -> PolicyDecision:
        """Check an engine's answer against the decision contract and normalize it.

        An ``allow`` of true with reasons in ``deny`` is a denial: a stated reason
        to deny always wins. A denial without reasons gets :data:`UNEXPLAINED_DENIAL`.

        Args:
            result: the decision rule's value (None when the rule is undefined).
            source: what produced it, for the error message (e.g. the rule path).

        Raises:
            PolicyEvaluationError: the answer breaks the contract.
        """
        if result is None:
            raise PolicyEvaluationError(
                f"{source} is undefined for this input: the policy must always define a decision. "
                "Give the rule a default, e.g. 'default allow := false'."
            )
        if not isinstance(result, dict):
            raise PolicyEvaluationError(
                f"{source} returned {type(result).__name__}, not an object "
                '{"allow": <bool>, "deny": <set of strings>}.'
            )
        allow = result.get("allow")
        if not isinstance(allow, bool):
            raise PolicyEvaluationError(
                f"{source} returned allow={_preview(allow)}, not a boolean. "
                "Make 'allow' a boolean rule with 'default allow := false'."
            )
        deny = result.get("deny", ())
        if not isinstance(deny, list | tuple | set | frozenset):
            raise PolicyEvaluationError(
                f"{source} returned deny={_preview(deny)}, not a set of strings."
            )
        reasons: list[str] = []
        for reason in deny:
            if not isinstance(reason, str):
                raise PolicyEvaluationError(
                    f"{source} returned a deny reason {_preview(reason)} that is not a string."
                )
            reasons.append(reason[:_MAX_REASON_CHARS])
        reasons.sort()
        if len(reasons) > _MAX_REASONS:
            dropped = len(reasons) - _MAX_REASONS
            reasons = [*reasons[:_MAX_REASONS], f"... and {dropped} more reasons"]
        if reasons:
            return cls(allow=False, reasons=tuple(reasons))
        if allow:
            return ALLOWED
        return cls(allow=False, reasons=(UNEXPLAINED_DENIAL,))


#: The one "allowed" decision (decisions are immutable, so it is shared).
ALLOWED: Final = PolicyDecision(allow=True)


class PolicyDecisionCodec:
    """Bytes codec for :class:`PolicyDecision` (what the L2 cache stores)."""

    def encode(self, value: PolicyDecision) -> bytes:
        return value.to_bytes()

    def decode(self, raw: bytes) -> PolicyDecision:
        """Raises ValueError on bytes that are not an encoded decision."""
        return PolicyDecision.from_bytes(raw)


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."
