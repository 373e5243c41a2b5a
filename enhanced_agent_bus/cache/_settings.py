"""Settings of the decision cache (mounted as ``BusSettings.cache``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from ..resilience import BreakerSettings
from ._integrity import hmac_key_problem
from ._redis_client import check_redis_url


class CacheSettings(BaseModel):
    """L1 (in-process) and optional L2 (Redis) decision cache settings.

    With ``redis_url`` unset (the default) the cache is in-process only and no
    server is needed. With it set, ``hmac_key`` is required: every process that
    shares the Redis must seal and verify values with the same secret.

    Example::

        CacheSettings(redis_url="redis://127.0.0.1:6379/0", hmac_key=secrets.token_hex(32))
        # AGENTBUS_CACHE__REDIS_URL=redis://... AGENTBUS_CACHE__HMAC_KEY=... agent-bus demo
    """

    # hide_input_in_errors: a validation error must not echo the Redis URL or the key.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    #: Entries kept in process (least recently used evicted first).
    l1_maxsize: int = Field(10_000, ge=1, le=10_000_000)
    #: Lifetime of an L1 entry; a memory bound only, keys change with the constitution.
    l1_ttl_s: float = Field(60.0, gt=0, le=86_400)
    #: Redis for the shared L2 tier; None keeps the cache in-process only.
    redis_url: SecretStr | None = None
    #: Connections in the L2 pool; also the cap on concurrent L2 operations.
    pool_size: int = Field(20, ge=1, le=1_000)
    #: Longest wait for a free pooled connection.
    pool_timeout_s: float = Field(0.05, gt=0, le=60)
    #: Longest wait for a Redis reply; a slower Redis counts as failing.
    socket_timeout_s: float = Field(0.1, gt=0, le=60)
    #: Longest wait to connect to Redis.
    connect_timeout_s: float = Field(0.25, gt=0, le=60)
    #: Lifetime of an L2 entry.
    l2_ttl_s: float = Field(600.0, ge=0.001, le=30 * 86_400)
    #: Namespace of the cache's Redis keys (printable ASCII, no spaces).
    key_prefix: str = Field("agentbus:decision:", min_length=1, max_length=128, pattern=r"^[!-~]+$")
    #: Secret for the HMAC-SHA256 on L2 values; required when ``redis_url`` is set.
    hmac_key: SecretStr = SecretStr("")
    #: On close, how long to wait for L2 writes still in flight.
    close_timeout_s: float = Field(1.0, ge=0, le=60)
    #: When Redis counts as down, and how it is probed back.
    breaker: BreakerSettings = BreakerSettings(failure_threshold=3, reset_timeout_s=5.0)

    @model_validator(mode="after")
    def _check_l2(self) -> CacheSettings:
        if self.redis_url is None:
            return self
        check_redis_url(self.redis_url.get_secret_value(), setting="AGENTBUS_CACHE__REDIS_URL")
        problem = hmac_key_problem(self.hmac_key.get_secret_value())
        if problem is not None:
            raise ValueError(f"AGENTBUS_CACHE__REDIS_URL is set, but {problem}")
        return self
