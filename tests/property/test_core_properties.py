"""Invariants of the core bus, checked on random inputs."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from enhanced_agent_bus import (
    AgentBus,
    AgentContext,
    AgentMessage,
    BusSettings,
    DeliveryStatus,
    MailboxSettings,
    MessageType,
)
from tests.conftest import write_bundle

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "message_id",
        "correlation_id",
        "from_agent",
        "to_agent",
        "topic",
        "tenant_id",
        "message_type",
        "priority",
        "payload",
        "metadata",
        "constitutional_hash",
        "created_at",
        "expires_at",
        "extra",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_only_ever_raise_validation_errors(raw: bytes) -> None:
    with contextlib.suppress(ValidationError):  # anything else propagates and fails
        AgentMessage.model_validate_json(raw)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(field_names, json_values, max_size=10))
def test_random_documents_validate_or_raise_validation_errors(document: dict[str, object]) -> None:
    try:
        raw = orjson.dumps(document)
    except (TypeError, orjson.JSONEncodeError):
        return
    try:
        message = AgentMessage.model_validate_json(raw)
    except ValidationError:
        return
    # Anything accepted round-trips losslessly.
    assert AgentMessage.model_validate_json(message.model_dump_json()) == message


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_accepted_payloads_round_trip(payload: dict[str, object]) -> None:
    try:
        message = AgentMessage(from_agent="a", tenant_id="t", payload=payload)
    except ValidationError:
        return
    assert AgentMessage.model_validate_json(message.model_dump_json()).payload == message.payload
    assert message.payload_size_bytes == len(orjson.dumps(message.payload))


tenants = st.sampled_from(["acme", "globex", "initech"])
agents = st.lists(tenants, min_size=2, max_size=8)
operations = st.lists(
    st.tuples(
        st.sampled_from(["send", "publish", "broadcast"]),
        st.integers(0, 7),
        st.integers(0, 7),
        tenants,
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(agents, operations)
def test_no_message_ever_crosses_tenants(
    tmp_path: Path, agent_tenants: list[str], ops: list
) -> None:  # type: ignore[type-arg]
    bundle = write_bundle(tmp_path / "bundle")
    received: list[tuple[str, AgentMessage]] = []

    async def scenario() -> None:
        async with AgentBus(BusSettings(constitution_path=bundle)) as bus:
            tenant_of: dict[str, str] = {}
            for index, tenant in enumerate(agent_tenants):
                agent_id = f"agent-{index}"
                tenant_of[agent_id] = tenant

                async def handler(message: AgentMessage, context: AgentContext) -> None:
                    received.append((context.agent_id, message))

                await bus.register_agent(agent_id, handler, tenant_id=tenant)
                await bus.subscribe(agent_id, "news")
            n = len(agent_tenants)
            for kind, a, b, claimed_tenant in ops:
                sender, target = f"agent-{a % n}", f"agent-{b % n}"
                if kind == "send":
                    result = await bus.send_message(
                        bus.message(sender, target, tenant_id=claimed_tenant)
                    )
                    crossing = (
                        tenant_of[target] != tenant_of[sender]
                        or claimed_tenant != tenant_of[sender]
                    )
                    assert (result.status is DeliveryStatus.DENIED) == crossing
                elif kind == "publish":
                    message = bus.message(sender, None, message_type=MessageType.EVENT)
                    await bus.publish("news", message)
                else:
                    await bus.broadcast(bus.message(sender, None))
        for recipient, message in received:
            assert tenant_of[recipient] == tenant_of[message.from_agent] == message.tenant_id

    asyncio.run(scenario())


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.integers(1, 5),
    st.sampled_from(["reject", "drop_oldest"]),
    st.integers(1, 40),
    st.lists(st.booleans(), min_size=1, max_size=40),
)
def test_mailboxes_never_exceed_their_bound(
    tmp_path: Path, maxsize: int, policy: str, burst: int, events: list[bool]
) -> None:
    bundle = write_bundle(tmp_path / "bundle")

    async def scenario() -> None:
        mailbox = MailboxSettings(maxsize=maxsize, backpressure=policy)  # type: ignore[arg-type]
        async with AgentBus(BusSettings(constitution_path=bundle, mailbox=mailbox)) as bus:
            gate = asyncio.Event()

            async def slow(message: AgentMessage, context: AgentContext) -> None:
                await gate.wait()

            await bus.register_agent("s", slow, tenant_id="t")
            await bus.register_agent("r", slow, tenant_id="t")
            record = next(a for a in bus.agents() if a.agent_id == "r")
            accepted = 0
            for i in range(burst):
                kind = MessageType.EVENT if events[i % len(events)] else MessageType.COMMAND
                result = await bus.send_message(bus.message("s", "r", message_type=kind))
                accepted += result.status is DeliveryStatus.DELIVERED
                assert len(record.mailbox) <= maxsize
            dropped = bus.stats()["bus"]["backpressure_drops_total"]
            rejected = bus.stats()["bus"]["backpressure_rejections_total"]
            assert accepted + rejected == burst
            # Sends under reject/drop_oldest never suspend, so the worker has not run yet:
            # every accepted message is queued or was dropped (and dead-lettered) for room.
            assert len(record.mailbox) + dropped == accepted
            assert len([d for d in bus.dead_letters() if d.code == "dropped_oldest"]) == dropped
            gate.set()

    asyncio.run(scenario())
