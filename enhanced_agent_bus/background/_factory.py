"""Build the sink a settings object names."""

from __future__ import annotations

from pydantic import SecretStr

from ..errors import ConfigurationError
from ._audit_sink import AuditSink
from ._metering import MeteringSink
from ._redis_audit import RedisStreamAuditSink
from ._redis_metering import RedisHashMeteringSink
from ._settings import AuditSettings, MeteringSettings
from ._sqlite_audit import SQLiteAuditSink
from ._sqlite_metering import SQLiteMeteringSink


def _redis_url(own: SecretStr | None, fallback: str | None, section: str) -> str:
    url = (own.get_secret_value() if own else None) or fallback
    if not url:
        raise ConfigurationError(
            f"{section}.sink is 'redis' but no Redis URL is set. Set "
            f"AGENTBUS_{section.upper()}__REDIS_URL (or the bus's redis_url), or use "
            f"{section}.sink='sqlite'."
        )
    return url


def create_audit_sink(settings: AuditSettings, *, redis_url: str | None = None) -> AuditSink:
    """The audit sink ``settings.sink`` names; ``redis_url`` is used when settings have none.

    Raises:
        ConfigurationError: ``sink="redis"`` and no URL at all.
    """
    if settings.sink == "redis":
        return RedisStreamAuditSink(
            _redis_url(settings.redis_url, redis_url, "audit"),
            stream_key=settings.stream_key,
            socket_timeout_s=settings.sink_timeout_s,
        )
    return SQLiteAuditSink(settings.sqlite_path)


def create_metering_sink(
    settings: MeteringSettings, *, redis_url: str | None = None
) -> MeteringSink:
    """The metering sink ``settings.sink`` names; ``redis_url`` is used when settings have none.

    Raises:
        ConfigurationError: ``sink="redis"`` and no URL at all.
    """
    if settings.sink == "redis":
        return RedisHashMeteringSink(
            _redis_url(settings.redis_url, redis_url, "metering"),
            key_prefix=settings.key_prefix,
            socket_timeout_s=settings.sink_timeout_s,
        )
    return SQLiteMeteringSink(settings.sqlite_path)
