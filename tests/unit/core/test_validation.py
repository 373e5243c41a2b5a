from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from enhanced_agent_bus import (
    AgentBus,
    AgentMessage,
    BusSettings,
    ConfigurationError,
    ConstitutionalHashMismatchError,
    DeliveryStatus,
    MessageType,
    TenantIsolationError,
)
from enhanced_agent_bus.testing import FakeClock
from tests.conftest import Recorder, write_bundle


async def test_wrong_missing_and_stale_hashes_are_denied(bus: AgentBus, recorder: Recorder) -> None:
    await bus.register_agent("a", recorder, tenant_id="t")
    await bus.register_agent("b", recorder, tenant_id="t")
    for forged, code in [("", "hash_missing"), ("0" * 64, "hash_mismatch")]:
        result = await bus.send_message(bus.message("a", "b", constitutional_hash=forged))
        assert result.status is DeliveryStatus.DENIED
        assert result.reasons[0].stage == "constitution"
        assert result.codes == (code,)
        with pytest.raises(ConstitutionalHashMismatchError) as info:
            await bus.request(bus.message("a", "b", constitutional_hash=forged))
        assert info.value.result.codes == (code,)


async def test_rotation_grace_window(tmp_path: Path, recorder: Recorder) -> None:
    clock = FakeClock()
    first = write_bundle(tmp_path / "v1", {"version": 1})
    second = write_bundle(tmp_path / "v2", {"version": 2})
    async with AgentBus(
        BusSettings(constitution_path=first, rotation_grace_s=300), clock=clock
    ) as bus:
        await bus.register_agent("a", recorder, tenant_id="t")
        await bus.register_agent("b", recorder, tenant_id="t")
        old = bus.message("a", "b", {"n": 1})
        old_hash = bus.constitutional_hash
        new_hash = await bus.load_constitution(second)
        assert new_hash == bus.constitutional_hash != old_hash
        assert bus.message("a", "b").constitutional_hash == new_hash
        assert (await bus.send_message(old)).status is DeliveryStatus.DELIVERED
        clock.advance(299)
        assert (await bus.send_message(old)).status is DeliveryStatus.DELIVERED
        clock.advance(2)
        stale = await bus.send_message(old)
        assert stale.status is DeliveryStatus.DENIED
        assert stale.codes == ("hash_stale",)
        assert (await bus.send_message(bus.message("a", "b"))).is_valid


async def test_a_bad_bundle_keeps_the_previous_constitution(bus: AgentBus, tmp_path: Path) -> None:
    before = bus.constitutional_hash
    with pytest.raises(ConfigurationError):
        await bus.load_constitution(tmp_path / "missing")
    broken = write_bundle(tmp_path / "broken", {"cross_tenant": {"allow": "everyone"}})
    with pytest.raises(ConfigurationError, match="cross_tenant"):
        await bus.load_constitution(broken)
    assert bus.constitutional_hash == before


async def test_cross_tenant_and_foreign_tenant_messages_are_denied(
    bus: AgentBus, recorder: Recorder
) -> None:
    await bus.register_agent("acme-1", recorder, tenant_id="acme")
    await bus.register_agent("globex-1", recorder, tenant_id="globex")
    result = await bus.send_message(bus.message("acme-1", "globex-1", {"x": 1}))
    assert result.status is DeliveryStatus.DENIED
    assert (result.reasons[0].stage, result.codes) == ("tenant", ("cross_tenant",))
    assert "globex" in result.reasons[0].message
    spoofed = bus.message("acme-1", "globex-1", tenant_id="globex")
    assert (await bus.send_message(spoofed)).codes == ("tenant_mismatch",)
    with pytest.raises(TenantIsolationError):
        await bus.request(bus.message("acme-1", "globex-1"))
    assert recorder.messages == []


async def test_constitution_can_name_a_cross_tenant_exception(tmp_path: Path) -> None:
    data = {
        "cross_tenant": {
            "allow": [
                {"from_tenant": "acme", "to_tenant": "globex", "message_types": ["query"]},
            ]
        }
    }
    settings = BusSettings(constitution_path=write_bundle(tmp_path / "b", data))
    async with AgentBus(settings) as bus:
        partner = Recorder()
        await bus.register_agent("acme-1", Recorder(), tenant_id="acme")
        await bus.register_agent("globex-1", partner, tenant_id="globex")
        reply = await bus.request(
            bus.message("acme-1", "globex-1", {"q": 1}, message_type=MessageType.QUERY)
        )
        assert reply.tenant_id == "globex"
        command = await bus.send_message(bus.message("acme-1", "globex-1"))
        assert command.codes == ("cross_tenant",)
        back = await bus.send_message(
            bus.message("globex-1", "acme-1", message_type=MessageType.QUERY)
        )
        assert back.codes == ("cross_tenant",)  # the exception is one-way


async def test_oversize_payload_is_denied(tmp_path: Path, bundle: Path) -> None:
    async with AgentBus(BusSettings(constitution_path=bundle, max_payload_bytes=1024)) as bus:
        await bus.register_agent("a", Recorder(), tenant_id="t")
        await bus.register_agent("b", Recorder(), tenant_id="t")
        ok = await bus.send_message(bus.message("a", "b", {"blob": "x" * 1000}))
        assert ok.is_valid
        big = await bus.send_message(bus.message("a", "b", {"blob": "x" * 1020}))
        assert big.status is DeliveryStatus.DENIED
        assert (big.reasons[0].stage, big.codes) == ("admission", ("payload_too_large",))
        assert "1031 bytes" in big.reasons[0].message


async def test_default_payload_limit_is_64_kib(bus: AgentBus, recorder: Recorder) -> None:
    await bus.register_agent("a", recorder, tenant_id="t")
    blob = "x" * (64 * 1024)
    assert (await bus.send_message(bus.message("a", "a", {"b": blob}))).codes == (
        "payload_too_large",
    )


async def test_expired_messages_are_denied(bus: AgentBus, recorder: Recorder) -> None:
    await bus.register_agent("a", recorder, tenant_id="t")
    past = datetime.now(UTC) - timedelta(seconds=1)
    assert (await bus.send_message(bus.message("a", "a", expires_at=past))).codes == ("expired",)


async def test_forged_direct_construction_is_checked_too(bus: AgentBus, recorder: Recorder) -> None:
    await bus.register_agent("a", recorder, tenant_id="acme")
    await bus.register_agent("b", recorder, tenant_id="acme")
    message = AgentMessage(
        from_agent="a", to_agent="b", tenant_id="acme", constitutional_hash=bus.constitutional_hash
    )
    assert (await bus.send_message(message)).status is DeliveryStatus.DELIVERED
