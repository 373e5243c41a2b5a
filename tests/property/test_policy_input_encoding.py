"""The policy stage's fast encoder writes exactly the canonical JSON of the documented input.

The decision cache key is computed from these bytes, so any divergence would
split one question into two keys (or, worse, merge two).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from enhanced_agent_bus.models import AgentMessage, MessageType, Priority
from enhanced_agent_bus.pipeline import StageContext
from enhanced_agent_bus.policy import (
    PolicyInputEncoder,
    PolicyInputSpec,
    build_policy_input,
    canonical_json,
)
from enhanced_agent_bus.registry import AgentRecord

IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,12}", fullmatch=True)
TEXT = st.text(max_size=12)
JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


async def _handler(message: AgentMessage, context: Any) -> None:
    return None


@st.composite
def records(draw: st.DrawFn) -> AgentRecord:
    return AgentRecord(
        agent_id=draw(IDS),
        tenant_id=draw(st.sampled_from(["acme", "globex", "ünïcode"])),
        role=draw(st.sampled_from(["planner", "worker", "rôle", ""])),
        capabilities=frozenset(draw(st.lists(TEXT, max_size=3))),
        handler=_handler,
        mailbox=None,  # type: ignore[arg-type]
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[AgentMessage, StageContext, PolicyInputSpec]:
    sender = draw(records())
    recipient = draw(st.one_of(st.none(), records()))
    topic = draw(st.one_of(st.none(), st.just("news/daily")))
    payload = draw(
        st.dictionaries(st.sampled_from(["amount", "order", "notes", "é"]), JSON, max_size=4)
    )
    message = AgentMessage(
        from_agent=sender.agent_id,
        to_agent=recipient.agent_id if recipient else None,
        topic=topic,
        # Message tenant ids are validated ASCII; registry records are not.
        tenant_id=sender.tenant_id if sender.tenant_id.isascii() else "acme",
        message_type=draw(st.sampled_from(list(MessageType))),
        priority=draw(st.sampled_from(list(Priority))),
        payload=payload,
        metadata=draw(
            st.dictionaries(
                st.sampled_from(["action", "proposed_by", "trace_id", "ticket"]), TEXT, max_size=4
            )
        ),
    )
    spec = PolicyInputSpec(
        metadata_keys=tuple(draw(st.sets(st.sampled_from(["action", "proposed_by", "ticket"])))),
        payload_fields=tuple(
            draw(st.sets(st.sampled_from([("amount",), ("order", "env"), ("é",)])))
        ),
    )
    ctx_topic = draw(st.one_of(st.none(), st.just("override")))
    return message, StageContext(sender, recipient, ctx_topic), spec


@settings(max_examples=300, deadline=None)
@given(cases())
def test_encoder_matches_canonical_json_of_the_document(
    case: tuple[AgentMessage, StageContext, PolicyInputSpec],
) -> None:
    message, ctx, spec = case
    encoder = PolicyInputEncoder(spec, max_agents=2)
    expected = canonical_json(build_policy_input(message, ctx, spec))
    assert encoder.encode(message, ctx) == expected
    # Memoized fragments give the same bytes the second time.
    assert encoder.encode(message, ctx) == expected
