"""Settings of the batching worker, the audit log and metering.

The lead mounts them in ``BusSettings`` as ``audit: AuditSettings`` and
``metering: MeteringSettings``, so every field is reachable from the
environment, e.g. ``AGENTBUS_AUDIT__SINK=redis`` or
``AGENTBUS_METERING__BATCH_SIZE=500``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

DEFAULT_SQLITE_PATH: Final = Path("agentbus-audit.sqlite3")
DEFAULT_AUDIT_STREAM_KEY: Final = "agentbus:audit"
DEFAULT_METERING_KEY_PREFIX: Final = "agentbus:metering"
#: Metadata keys whose values never reach the audit log (searched, case-insensitive).
DEFAULT_REDACT_PATTERN: Final = r"token|secret|password|passwd|api[_-]?key|authorization|cookie"

SinkKind = Literal["sqlite", "redis"]
_REDIS_KEY = r"^[A-Za-z0-9][A-Za-z0-9_.:/{}-]{0,199}$"


class BatchingSettings(BaseModel):
    """How a :class:`BatchingWorker` queues, batches and retries.

    A flush starts when ``batch_size`` items are waiting or
    ``flush_interval_ms`` has passed; it writes everything waiting, in sink
    calls of at most ``max_batch_size`` items. A failed write is retried
    ``max_retries`` times with exponential backoff, each attempt bounded by
    ``sink_timeout_s``; a batch that still fails waits in the retry buffer
    (at most ``retry_buffer_size`` items, oldest discarded first) for the
    next flush.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Items waiting that trigger a flush without waiting for the interval.
    batch_size: int = Field(100, ge=1, le=100_000)
    #: Largest batch one sink call gets when a backlog is waiting (None: 10 x batch_size).
    #: Bigger batches amortise the per-call cost (a thread hop and a transaction).
    max_batch_size: int | None = Field(None, ge=1, le=1_000_000)
    flush_interval_ms: float = Field(250.0, gt=0, le=3_600_000)
    #: Items waiting to be written; when full, ``submit`` drops the new item and counts it.
    queue_size: int = Field(10_000, ge=1, le=10_000_000)
    #: Upper bound of one ``write_batch`` call; a hanging sink is abandoned after this.
    sink_timeout_s: float = Field(5.0, gt=0, le=600)
    max_retries: int = Field(3, ge=0, le=100)
    backoff_initial_s: float = Field(0.05, ge=0, le=60)
    backoff_max_s: float = Field(2.0, ge=0, le=600)
    backoff_multiplier: float = Field(2.0, ge=1, le=10)
    #: Items kept after their retries failed, written first at the next flush.
    retry_buffer_size: int = Field(10_000, ge=0, le=10_000_000)

    @model_validator(mode="after")
    def _consistent_backoff(self) -> Self:
        if self.backoff_initial_s > self.backoff_max_s:
            raise ValueError(
                f"backoff_initial_s={self.backoff_initial_s!r} is larger than "
                f"backoff_max_s={self.backoff_max_s!r}; raise backoff_max_s or lower "
                "backoff_initial_s"
            )
        return self

    @property
    def flush_interval_s(self) -> float:
        return self.flush_interval_ms / 1000.0

    @property
    def write_limit(self) -> int:
        """Items per sink call: ``max_batch_size``, never below ``batch_size``."""
        limit = self.max_batch_size if self.max_batch_size is not None else 10 * self.batch_size
        return max(self.batch_size, limit)

    def backoff_s(self, retry: int) -> float:
        """Delay before retry number ``retry`` (1-based)."""
        delay = self.backoff_initial_s * self.backoff_multiplier ** (retry - 1)
        return float(min(self.backoff_max_s, delay))


def _check_redis_key(value: str, field: str) -> str:
    if not re.match(_REDIS_KEY, value):
        raise ValueError(
            f"{field} {value!r} is not a valid key: use 1-200 characters from "
            "[A-Za-z0-9_.:/{}-], starting with a letter or digit"
        )
    return value


class AuditSettings(BatchingSettings):
    """Where and how the hash-chained audit log is written."""

    enabled: bool = True
    sink: SinkKind = "sqlite"
    sqlite_path: Path = DEFAULT_SQLITE_PATH
    #: Redis for ``sink="redis"``; None falls back to the bus's own ``redis_url``.
    redis_url: SecretStr | None = None
    stream_key: str = DEFAULT_AUDIT_STREAM_KEY
    #: Regex searched (case-insensitive) in metadata keys; matching values are redacted.
    redact_pattern: str = Field(DEFAULT_REDACT_PATTERN, min_length=1, max_length=1000)

    @field_validator("stream_key")
    @classmethod
    def _stream_key(cls, value: str) -> str:
        return _check_redis_key(value, "stream_key")

    @field_validator("redact_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(
                f"redact_pattern {value!r} is not a valid regular expression ({exc}); "
                "use e.g. 'token|secret|password'"
            ) from None
        return value


class MeteringSettings(BatchingSettings):
    """Where per-(tenant, agent, message type, outcome) usage totals are added up."""

    enabled: bool = True
    sink: SinkKind = "sqlite"
    sqlite_path: Path = DEFAULT_SQLITE_PATH
    redis_url: SecretStr | None = None
    key_prefix: str = DEFAULT_METERING_KEY_PREFIX
    #: Distinct usage keys kept in memory for ``snapshot()``; further keys are still persisted.
    max_snapshot_keys: int = Field(100_000, ge=1, le=10_000_000)

    @field_validator("key_prefix")
    @classmethod
    def _key_prefix(cls, value: str) -> str:
        return _check_redis_key(value, "key_prefix")
