"""Building sinks from settings, and the observer contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from enhanced_agent_bus.background import (
    AuditLog,
    AuditSettings,
    AuditSink,
    Metering,
    MeteringSettings,
    RedisHashMeteringSink,
    RedisStreamAuditSink,
    SQLiteAuditSink,
    SQLiteMeteringSink,
    create_audit_sink,
    create_metering_sink,
)
from enhanced_agent_bus.errors import ConfigurationError
from enhanced_agent_bus.observers import BusObserver
from enhanced_agent_bus.testing._audit import InMemoryAuditSink


def test_default_sinks_are_sqlite_files_in_the_working_directory() -> None:
    audit_sink = create_audit_sink(AuditSettings())
    metering_sink = create_metering_sink(MeteringSettings())
    assert isinstance(audit_sink, SQLiteAuditSink)
    assert isinstance(metering_sink, SQLiteMeteringSink)
    assert audit_sink.path == Path("agentbus-audit.sqlite3")
    assert metering_sink.path == Path("agentbus-audit.sqlite3")


def test_redis_sinks_use_their_own_url_before_the_fallback() -> None:
    settings = AuditSettings(sink="redis", redis_url=SecretStr("redis://own:6379/1"))
    sink = create_audit_sink(settings, redis_url="redis://fallback:6379/2")
    assert isinstance(sink, RedisStreamAuditSink)
    assert (sink.url, sink.stream_key) == ("redis://own:6379/1", "agentbus:audit")
    metering = create_metering_sink(
        MeteringSettings(sink="redis", key_prefix="usage"), redis_url="redis://fallback:6379/2"
    )
    assert isinstance(metering, RedisHashMeteringSink)
    assert (metering.url, metering.key_prefix) == ("redis://fallback:6379/2", "usage")


def test_redis_sink_without_any_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="AGENTBUS_AUDIT__REDIS_URL"):
        AuditLog.from_settings(AuditSettings(sink="redis"))
    with pytest.raises(ConfigurationError, match="AGENTBUS_METERING__REDIS_URL"):
        Metering.from_settings(MeteringSettings(sink="redis"))


def test_secrets_in_the_redis_url_are_hidden_in_settings_reprs() -> None:
    settings = AuditSettings(sink="redis", redis_url=SecretStr("redis://:hunter2@h:6379/0"))
    assert "hunter2" not in repr(settings)


def test_audit_log_and_metering_are_bus_observers() -> None:
    assert isinstance(AuditLog(InMemoryAuditSink()), BusObserver)
    assert isinstance(Metering(SQLiteMeteringSink("unused.sqlite3")), BusObserver)
    assert isinstance(InMemoryAuditSink(), AuditSink)
    assert isinstance(SQLiteAuditSink("unused.sqlite3"), AuditSink)
    assert isinstance(RedisStreamAuditSink("redis://127.0.0.1:6379/15"), AuditSink)


def test_settings_come_from_nested_environment_style_values() -> None:
    settings = AuditSettings.model_validate(
        {"sink": "redis", "batch_size": "500", "flush_interval_ms": "50", "stream_key": "a:b"}
    )
    assert (settings.batch_size, settings.flush_interval_s, settings.stream_key) == (
        500,
        0.05,
        "a:b",
    )
    with pytest.raises(ValueError, match="sink"):
        AuditSettings.model_validate({"sink": "kafka"})
