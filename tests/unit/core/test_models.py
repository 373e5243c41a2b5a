import os
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from pydantic import ValidationError

from enhanced_agent_bus import AgentMessage, DeliveryResult, DeliveryStatus, MessageType, Priority
from enhanced_agent_bus.models import new_message_id


def make(**fields: object) -> AgentMessage:
    base: dict[str, object] = {"from_agent": "planner", "to_agent": "coder", "tenant_id": "acme"}
    base.update(fields)
    return AgentMessage(**base)  # type: ignore[arg-type]


def test_defaults() -> None:
    message = make()
    assert len(message.message_id) == 32
    int(message.message_id, 16)
    assert message.message_id[12] == "4"  # uuid4 version nibble
    assert message.message_type is MessageType.COMMAND
    assert message.priority is Priority.NORMAL
    assert message.payload == {}
    assert message.created_at.tzinfo is not None
    assert message.constitutional_hash == ""


def test_message_ids_are_unique() -> None:
    assert len({make().message_id for _ in range(1000)}) == 1000


def test_message_ids_are_rfc4122_uuid4_across_many_batches() -> None:
    # Ids come 256 to a batch: cover several refills, and every position in a batch.
    ids = [new_message_id() for _ in range(3000)]
    assert len(set(ids)) == len(ids)
    for value in ids:
        parsed = uuid.UUID(value)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert parsed.hex == value


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_never_repeats_the_parents_next_ids() -> None:
    new_message_id()  # the pool now holds ids the child would inherit
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave at once
        os.close(read_end)
        os.write(write_end, "".join(new_message_id() for _ in range(8)).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        child = reader.read().decode()
    os.waitpid(pid, 0)
    child_ids = {child[i : i + 32] for i in range(0, len(child), 32)}
    parent_ids = {new_message_id() for _ in range(8)}
    assert len(child_ids) == 8
    assert not child_ids & parent_ids


def test_round_trips_through_json_losslessly() -> None:
    message = make(
        payload={
            "task": "write tests",
            "n": 3,
            "ratio": 0.25,
            "tags": ["a", None, True],
            "nested": {"x": []},
        },
        metadata={"trace": "abc"},
        correlation_id="c-1",
        topic="progress",
        priority=Priority.HIGH,
        message_type=MessageType.QUERY,
        constitutional_hash="f" * 64,
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
    )
    again = AgentMessage.model_validate_json(message.model_dump_json())
    assert again == message
    assert again.payload_size_bytes == message.payload_size_bytes


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError, match="recipient"):
        make(recipient="coder")


@pytest.mark.parametrize("agent_id", ["", "-lead", "has space", "a" * 129, "ünï", "x/y"])
def test_bad_agent_ids_are_rejected(agent_id: str) -> None:
    with pytest.raises(ValidationError, match="from_agent"):
        make(from_agent=agent_id)


@pytest.mark.parametrize("agent_id", ["a", "A1", "agent.with:colon_and-dash", "a" * 128])
def test_good_agent_ids(agent_id: str) -> None:
    assert make(to_agent=agent_id).to_agent == agent_id


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"x": float("nan")}, "finite"),
        ({"x": float("inf")}, "finite"),
        ({"x": (1, 2)}, "JSON"),
        ({"x": 2**70}, "64 bits"),
        ({"x": "\ud800"}, "unicode"),
        ({1: "x"}, "string"),
        ({"x": datetime.now(UTC)}, "JSON"),
        ([1, 2], "JSON object"),
        ("text", "JSON object"),
    ],
)
def test_payload_must_be_a_lossless_json_object(payload: object, needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        make(payload=payload)
    assert needle in str(info.value)


def test_payload_size_is_its_orjson_encoding() -> None:
    payload = {"blob": "x" * 1000, "n": 1}
    assert make(payload=payload).payload_size_bytes == len(orjson.dumps(payload))


def test_naive_datetimes_are_rejected_and_aware_ones_normalized_to_utc() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        make(created_at=datetime(2026, 1, 1))
    plus_two = datetime(2026, 1, 1, 12, tzinfo=UTC).astimezone(
        __import__("datetime").timezone(timedelta(hours=2))
    )
    assert make(created_at=plus_two).created_at.utcoffset() == timedelta(0)


def test_metadata_is_bounded_and_string_only() -> None:
    with pytest.raises(ValidationError, match="at most 64"):
        make(metadata={f"k{i}": "v" for i in range(65)})
    with pytest.raises(ValidationError):
        make(metadata={"k": 1})


def test_messages_are_frozen() -> None:
    message = make()
    with pytest.raises(ValidationError):
        message.to_agent = "other"  # type: ignore[misc]


def test_expiry() -> None:
    assert make(expires_at=datetime.now(UTC) - timedelta(seconds=1)).is_expired()
    assert not make(expires_at=datetime.now(UTC) + timedelta(seconds=60)).is_expired()
    assert not make().is_expired()


def test_malformed_json_raises_validation_error() -> None:
    with pytest.raises(ValidationError):
        AgentMessage.model_validate_json(b"{not json")
    with pytest.raises(ValidationError):
        AgentMessage.model_validate_json(b'{"from_agent": 3, "tenant_id": "t"}')


def test_delivery_result_validity() -> None:
    assert DeliveryResult("m", DeliveryStatus.DELIVERED).is_valid
    assert DeliveryResult("m", DeliveryStatus.DEAD_LETTERED).is_valid
    assert not DeliveryResult("m", DeliveryStatus.DENIED).is_valid


def test_trusted_construction_matches_validated_construction() -> None:
    trusted = AgentMessage.from_trusted_fields(
        "coder", "planner", "acme", {"ok": True}, 11, "h" * 64, MessageType.RESPONSE, "c-1"
    )
    validated = AgentMessage.model_validate_json(trusted.model_dump_json())
    assert validated == trusted
    assert trusted.payload_size_bytes == validated.payload_size_bytes == 11
    copy = trusted.model_copy(update={"topic": "t"})
    assert copy.topic == "t"
    assert trusted.topic is None
    assert trusted.model_fields_set == validated.model_fields_set | trusted.model_fields_set
