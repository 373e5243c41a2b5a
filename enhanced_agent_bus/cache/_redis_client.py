"""The pooled ``redis.asyncio`` client the L2 cache (and other Redis users) share.

A :class:`~redis.asyncio.BlockingConnectionPool` waits up to ``pool_timeout_s``
for a free connection instead of raising at once when all are busy (a plain
pool raises past ``max_connections``). redis-py's own retries are turned off:
a cache must give up quickly and let the circuit breaker decide when to try
again, rather than retry with backoff while a message waits.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import SecretStr
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ..errors import ConfigurationError

REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})


def check_redis_url(url: str, *, setting: str) -> None:
    """Raise unless ``url`` has a Redis scheme; never echoes the URL (it may hold a password).

    Raises:
        ConfigurationError: the scheme is not redis://, rediss:// or unix://.
    """
    scheme = urlsplit(url).scheme
    if scheme not in REDIS_SCHEMES:
        raise ConfigurationError(
            f"{setting} has scheme {scheme!r}; expected one of redis://, rediss:// or unix:// "
            "(e.g. redis://127.0.0.1:6379/0)."
        )


def create_redis_client(
    url: SecretStr | str,
    *,
    pool_size: int = 20,
    pool_timeout_s: float = 0.05,
    socket_timeout_s: float = 0.1,
    connect_timeout_s: float = 0.25,
    client_name: str | None = None,
) -> Redis:
    """A ``redis.asyncio.Redis`` on its own bounded, blocking connection pool.

    Nothing connects until the first command. Close it with ``await client.aclose()``
    (it owns its pool).

    Raises:
        ConfigurationError: the URL has no Redis scheme.
    """
    raw_url = url.get_secret_value() if isinstance(url, SecretStr) else url
    check_redis_url(raw_url, setting="Redis URL")
    pool = BlockingConnectionPool.from_url(
        raw_url,
        max_connections=pool_size,
        timeout=pool_timeout_s,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=connect_timeout_s,
        retry=Retry(NoBackoff(), 0),
        client_name=client_name,
    )
    client: Redis = Redis.from_pool(pool)
    return client
