"""Structured logging: JSON lines, structured fields, and no payloads or secrets, ever."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from enhanced_agent_bus.models import AgentMessage
from enhanced_agent_bus.observability import (
    REDACTED,
    JsonFormatter,
    KeyValueFormatter,
    RedactionFilter,
    configure_logging,
    message_log_fields,
    redact,
)

SECRET_PAYLOAD = "TOP-SECRET-PAYLOAD-CONTENT"


@pytest.fixture
def message() -> AgentMessage:
    return AgentMessage(
        from_agent="planner",
        to_agent="coder",
        tenant_id="acme",
        payload={"prompt": SECRET_PAYLOAD, "api_key": "sk-123"},
        metadata={"trace": "t-1"},
    )


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("enhanced_agent_bus.test_logging")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)
    logger.propagate = True


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_object_per_line_with_structured_fields(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info(
        "denied %s at %s",
        "m-1",
        "policy",
        extra={"message_id": "m-1", "tenant_id": "acme", "stage": "policy", "code": "role"},
    )
    logger.warning("second line", extra={"agent_id": "coder"})
    first, second = _lines(stream)
    assert first["message"] == "denied m-1 at policy"
    assert first["level"] == "INFO"
    assert first["logger"] == "enhanced_agent_bus.test_logging"
    assert str(first["time"]).endswith("+00:00")
    assert {k: first[k] for k in ("message_id", "tenant_id", "stage", "code")} == {
        "message_id": "m-1",
        "tenant_id": "acme",
        "stage": "policy",
        "code": "role",
    }
    assert second["agent_id"] == "coder"


def test_payload_fields_are_never_emitted(
    captured: tuple[logging.Logger, io.StringIO], message: AgentMessage
) -> None:
    logger, stream = captured
    logger.info("sending", extra={"payload": message.payload, "message_id": message.message_id})
    logger.info("nested", extra={"details": {"payload": {"prompt": SECRET_PAYLOAD}, "size": 3}})
    logger.info("message object %s", message, extra={"msg_obj": message})
    logger.info(message)  # type: ignore[arg-type]
    text = stream.getvalue()
    assert SECRET_PAYLOAD not in text
    assert "sk-123" not in text
    first, nested, as_arg, as_msg = _lines(stream)
    assert "payload" not in first
    assert nested["details"] == {"size": 3}
    assert as_arg["message"] == f"message object {message.message_id}"
    assert as_arg["msg_obj"] == message_log_fields(message)
    assert as_msg["message"] == f"message {message.message_id}"


def test_secret_looking_keys_are_redacted(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info(
        "connecting",
        extra={
            "api_key": "sk-live-1",
            "headers": {"Authorization": "Bearer abc", "Accept": "json"},
            "auth_token": "t0k3n",
            "db_password": "hunter2",
        },
    )
    (line,) = _lines(stream)
    assert line["api_key"] == REDACTED
    assert line["auth_token"] == REDACTED
    assert line["db_password"] == REDACTED
    assert line["headers"] == {"Authorization": REDACTED, "Accept": "json"}
    for secret in ("sk-live-1", "Bearer abc", "t0k3n", "hunter2"):
        assert secret not in stream.getvalue()


def test_exceptions_and_unknown_objects(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured

    class Opaque:
        def __repr__(self) -> str:
            return "Opaque(password='hunter2')"

    try:
        raise ValueError("bad value")
    except ValueError:
        logger.exception("failed", extra={"thing": Opaque()})
    (line,) = _lines(stream)
    assert line["exc_type"] == "ValueError"
    assert "bad value" in str(line["exc"])
    assert line["thing"] == "<Opaque>"
    assert "hunter2" not in stream.getvalue()


def test_message_log_fields_name_the_message_without_its_payload(message: AgentMessage) -> None:
    fields = message_log_fields(message)
    assert fields["message_id"] == message.message_id
    assert fields["tenant_id"] == "acme"
    assert fields["to_agent"] == "coder"
    assert fields["message_type"] == "command"
    assert fields["payload_bytes"] == message.payload_size_bytes
    assert SECRET_PAYLOAD not in str(fields)


def test_redaction_filter_cleans_the_record_for_every_handler(message: AgentMessage) -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "got %s", (message,), None)
    record.payload = message.payload
    record.token = "abc"
    record.context = {"secret": "s", "ok": 1}
    assert RedactionFilter().filter(record)
    assert not hasattr(record, "payload")
    assert record.token == REDACTED
    assert record.context == {"secret": REDACTED, "ok": 1}
    assert record.getMessage() == f"got {message.message_id}"


def test_redact_is_bounded_on_deep_structures() -> None:
    deep: dict[str, object] = {"leaf": "v"}
    for _ in range(50):
        deep = {"next": deep}
    cleaned = redact(deep)
    assert isinstance(cleaned, dict)
    assert "[...]" in str(cleaned)


def test_key_value_formatter_appends_fields() -> None:
    record = logging.LogRecord(
        "bus", logging.WARNING, __file__, 1, "slow stage %s", ("policy",), None
    )
    record.stage = "policy"
    record.payload = {"prompt": SECRET_PAYLOAD}
    text = KeyValueFormatter().format(record)
    assert "WARNING bus slow stage policy" in text
    assert "stage=policy" in text
    assert SECRET_PAYLOAD not in text


def test_configure_logging_installs_one_redacting_handler() -> None:
    root = logging.getLogger()
    before_handlers, before_level = list(root.handlers), root.level
    stream = io.StringIO()
    try:
        configure_logging("DEBUG", json=True, stream=io.StringIO())
        handler = configure_logging("INFO", json=True, stream=stream)  # replaces, not adds
        ours = [h for h in root.handlers if h not in before_handlers]
        assert ours == [handler]
        logging.getLogger("enhanced_agent_bus.x").info(
            "hello", extra={"payload": SECRET_PAYLOAD, "stage": "policy"}
        )
        logging.getLogger("enhanced_agent_bus.x").debug("hidden at INFO")
        (line,) = _lines(stream)
        assert line["message"] == "hello"
        assert line["stage"] == "policy"
        assert SECRET_PAYLOAD not in stream.getvalue()
    finally:
        for handler in [h for h in root.handlers if h not in before_handlers]:
            root.removeHandler(handler)
        root.setLevel(before_level)


def test_configure_logging_rejects_unknown_levels() -> None:
    with pytest.raises(ValueError, match="unknown"):
        configure_logging("LOUD")
