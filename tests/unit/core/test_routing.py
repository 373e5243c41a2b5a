import pytest

from enhanced_agent_bus import (
    AgentBus,
    AgentContext,
    AgentMessage,
    AgentNotRegisteredError,
    DeliveryStatus,
    MessageType,
    MessageValidationError,
)
from tests.conftest import Recorder


async def drain(bus: AgentBus) -> None:
    """Wait until every mailbox is empty and every handler has returned."""
    import asyncio

    for _ in range(1000):
        stats = bus.stats()["bus"]
        busy = [a for a in bus.agents() if a.mailbox.worker is not None and len(a.mailbox)]
        if stats["mailbox_depth"] == 0 and not busy:
            await asyncio.sleep(0.001)
            return
        await asyncio.sleep(0.001)
    raise AssertionError("mailboxes did not drain")


async def test_direct_send_delivers_to_the_handler(bus: AgentBus, recorder: Recorder) -> None:
    await bus.register_agent("planner", recorder, tenant_id="acme", role="planner")
    coder = Recorder()
    await bus.register_agent("coder", coder, tenant_id="acme")
    message = bus.message("planner", "coder", {"task": "write tests"})
    assert message.tenant_id == "acme"
    assert message.constitutional_hash == bus.constitutional_hash
    result = await bus.send_message(message)
    assert result.status is DeliveryStatus.DELIVERED
    assert result.is_valid
    assert result.reasons == ()
    assert result.latency_us > 0
    assert result.recipient == "coder"
    await drain(bus)
    assert [m.payload for m in coder.messages] == [{"task": "write tests"}]
    assert recorder.messages == []


async def test_request_returns_the_handler_reply_correlated(bus: AgentBus) -> None:
    async def coder(message: AgentMessage, context: AgentContext) -> dict[str, object]:
        return {"status": "green", "asked": message.payload["q"]}

    await bus.register_agent("planner", Recorder(), tenant_id="acme")
    await bus.register_agent("coder", coder, tenant_id="acme")
    query = bus.message("planner", "coder", {"q": "status?"}, message_type=MessageType.QUERY)
    reply = await bus.request(query, timeout=5)
    assert reply.message_type is MessageType.RESPONSE
    assert reply.correlation_id == query.message_id
    assert (reply.from_agent, reply.to_agent, reply.tenant_id) == ("coder", "planner", "acme")
    assert reply.payload == {"status": "green", "asked": "status?"}
    assert reply.constitutional_hash == bus.constitutional_hash
    assert AgentMessage.model_validate_json(reply.model_dump_json()) == reply


async def test_handler_returning_none_replies_with_empty_object(bus: AgentBus) -> None:
    async def quiet(message: AgentMessage, context: AgentContext) -> None:
        return None

    await bus.register_agent("a", quiet, tenant_id="t")
    await bus.register_agent("b", quiet, tenant_id="t")
    assert (await bus.request(bus.message("a", "b"))).payload == {}


async def test_explicit_correlation_id_is_kept(bus: AgentBus, recorder: Recorder) -> None:
    await bus.register_agent("a", recorder, tenant_id="t")
    await bus.register_agent("b", recorder, tenant_id="t")
    reply = await bus.request(bus.message("a", "b", correlation_id="conversation-7"))
    assert reply.correlation_id == "conversation-7"


async def test_context_helpers_send_as_the_agent(bus: AgentBus) -> None:
    seen: list[AgentMessage] = []

    async def relay(message: AgentMessage, context: AgentContext) -> dict[str, object]:
        if message.message_type is MessageType.COMMAND:
            await context.reply({"ack": True})
            downstream = await context.request("sink", {"n": 1})
            await context.publish("progress", {"step": 1})
            await context.broadcast({"hello": "all"})
            return {"downstream": downstream.payload}
        return {}

    async def sink(message: AgentMessage, context: AgentContext) -> dict[str, object]:
        seen.append(message)
        return {"sink": context.agent_id}

    await bus.register_agent("origin", sink, tenant_id="t")
    await bus.register_agent("relay", relay, tenant_id="t")
    await bus.register_agent("sink", sink, tenant_id="t")
    await bus.subscribe("sink", "progress")
    reply = await bus.request(bus.message("origin", "relay", {"go": 1}))
    assert reply.payload == {"downstream": {"sink": "sink"}}
    await drain(bus)
    kinds = [(m.from_agent, m.to_agent, m.message_type.value) for m in seen]
    assert ("relay", "origin", "response") in kinds  # context.reply
    assert ("relay", "sink", "query") in kinds  # context.request
    assert ("relay", None, "event") in kinds  # context.publish
    assert kinds.count(("relay", None, "notification")) == 2  # broadcast: origin and sink
    assert all(m.from_agent == "relay" and m.tenant_id == "t" for m in seen)


async def test_topics_reach_only_subscribers_of_the_same_tenant(bus: AgentBus) -> None:
    acme_sub, acme_other, globex_sub, publisher = Recorder(), Recorder(), Recorder(), Recorder()
    await bus.register_agent("pub", publisher, tenant_id="acme")
    await bus.register_agent("acme-sub", acme_sub, tenant_id="acme")
    await bus.register_agent("acme-other", acme_other, tenant_id="acme")
    await bus.register_agent("globex-sub", globex_sub, tenant_id="globex")
    await bus.subscribe("acme-sub", "builds")
    await bus.subscribe("globex-sub", "builds")
    await bus.subscribe("pub", "builds")
    event = bus.message("pub", None, {"build": 42}, message_type=MessageType.EVENT)
    results = await bus.publish("builds", event)
    assert [(r.recipient, r.status) for r in results] == [("acme-sub", DeliveryStatus.DELIVERED)]
    await drain(bus)
    assert [m.topic for m in acme_sub.messages] == ["builds"]
    assert globex_sub.messages == []
    assert acme_other.messages == []
    assert publisher.messages == []
    await bus.unsubscribe("acme-sub", "builds")
    results = await bus.publish("builds", bus.message("pub", None, {"build": 43}))
    assert results[0].status is DeliveryStatus.DEAD_LETTERED
    assert results[0].codes == ("no_subscribers",)
    assert bus.dead_letters()[-1].code == "no_subscribers"


async def test_broadcast_stays_inside_the_sender_tenant(bus: AgentBus) -> None:
    records = {name: Recorder() for name in ["a1", "a2", "a3", "g1"]}
    for name, handler in records.items():
        await bus.register_agent(name, handler, tenant_id="acme" if name[0] == "a" else "globex")
    results = await bus.broadcast(bus.message("a1", None, {"note": "hi"}))
    assert sorted(r.recipient or "" for r in results) == ["a2", "a3"]
    assert all(r.status is DeliveryStatus.DELIVERED for r in results)
    await drain(bus)
    assert len(records["a2"].messages) == len(records["a3"].messages) == 1
    assert records["g1"].messages == []
    assert records["a1"].messages == []


async def test_unknown_agents(bus: AgentBus, recorder: Recorder) -> None:
    await bus.register_agent("a", recorder, tenant_id="t")
    with pytest.raises(AgentNotRegisteredError, match="'ghost'"):
        bus.message("ghost", "a")
    result = await bus.send_message(bus.message("a", "nobody"))
    assert result.status is DeliveryStatus.DENIED
    assert (result.reasons[0].stage, result.codes) == ("admission", ("unknown_recipient",))
    assert "nobody" in result.reasons[0].message
    forged = AgentMessage(
        from_agent="ghost", to_agent="a", tenant_id="t", constitutional_hash=bus.constitutional_hash
    )
    assert (await bus.send_message(forged)).codes == ("unknown_sender",)
    with pytest.raises(AgentNotRegisteredError, match="'nobody'") as info:
        await bus.request(bus.message("a", "nobody"))
    assert info.value.result is not None
    assert (await bus.publish("x", forged.model_copy(update={"to_agent": None})))[0].codes == (
        "unknown_sender",
    )


async def test_misaddressed_messages_raise_validation_errors(
    bus: AgentBus, recorder: Recorder
) -> None:
    await bus.register_agent("a", recorder, tenant_id="t")
    with pytest.raises(MessageValidationError, match="to_agent"):
        await bus.send_message(bus.message("a", None))
    with pytest.raises(MessageValidationError, match="to_agent"):
        await bus.request(bus.message("a", None))
    with pytest.raises(MessageValidationError, match="direct recipient"):
        await bus.publish("topic", bus.message("a", "a"))
    with pytest.raises(MessageValidationError, match="does not match"):
        await bus.publish("one", bus.message("a", None, topic="two"))
    with pytest.raises(MessageValidationError, match="topic"):
        await bus.publish("bad topic!", bus.message("a", None))
    with pytest.raises(MessageValidationError, match="to_agent"):
        await bus.broadcast(bus.message("a", "a"))
    with pytest.raises(MessageValidationError, match="priority"):
        bus.message("a", "a", priority="urgent")
    with pytest.raises(MessageValidationError, match="payload"):
        bus.message("a", "a", {"x": float("nan")})
    with pytest.raises(MessageValidationError, match="to_agent"):
        bus.message("a", "no spaces allowed")


async def test_unregister_dead_letters_queued_messages(bus: AgentBus) -> None:
    import asyncio

    gate = asyncio.Event()

    async def slow(message: AgentMessage, context: AgentContext) -> None:
        await gate.wait()

    await bus.register_agent("a", Recorder(), tenant_id="t")
    await bus.register_agent("slow", slow, tenant_id="t")
    for i in range(3):
        await bus.send_message(bus.message("a", "slow", {"i": i}))
    await asyncio.sleep(0)
    await bus.unregister_agent("slow")
    gate.set()
    letters = [d for d in bus.dead_letters() if d.code == "unregistered"]
    assert [d.message.payload["i"] for d in letters] == [1, 2]
    result = await bus.send_message(bus.message("a", "slow"))
    assert result.codes == ("unknown_recipient",)
    with pytest.raises(AgentNotRegisteredError):
        await bus.unregister_agent("slow")
