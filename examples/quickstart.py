"""The README's quick start, runnable: python examples/quickstart.py"""

import asyncio

from enhanced_agent_bus import AgentBus, MessageType


async def planner(message, ctx):  # type: ignore[no-untyped-def]
    return None


async def coder(message, ctx):  # type: ignore[no-untyped-def]
    if message.message_type is MessageType.QUERY:
        return {"status": "green"}  # becomes the RESPONSE payload
    await ctx.publish("builds", {"ok": True})  # send as this agent
    return None


async def main() -> None:
    async with AgentBus() as bus:  # embedded defaults, no servers
        await bus.register_agent("planner", planner, tenant_id="acme", role="planner")
        await bus.register_agent("coder", coder, tenant_id="acme", role="worker")
        result = await bus.send_message(bus.message("planner", "coder", {"task": "write tests"}))
        print(result.status, result.reasons)
        reply = await bus.request(
            bus.message("planner", "coder", {"q": "status?"}, message_type=MessageType.QUERY),
            timeout=5,
        )
        print(reply.payload)


if __name__ == "__main__":
    asyncio.run(main())
