"""The Redis client the background sinks share: pooled, with short, explicit timeouts."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from ._errors import SinkUnavailableError

_POOL_SIZE: Final = 4


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe for errors and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


async def connect(
    url: str, *, what: str, connect_timeout_s: float, socket_timeout_s: float
) -> Redis:
    """A client on a blocking pool (a plain pool raises past its size), checked with PING.

    Raises:
        SinkUnavailableError: the URL is malformed or Redis does not answer.
    """
    try:
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=_POOL_SIZE,
            timeout=socket_timeout_s,
            socket_connect_timeout=connect_timeout_s,
            socket_timeout=socket_timeout_s,
        )
    except ValueError as exc:
        raise SinkUnavailableError(
            what,
            redact_url(url),
            f"the URL is not valid ({exc})",
            "Use redis://[:password@]host:port/db or rediss://...",
        ) from exc
    client = Redis(connection_pool=pool)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose(close_connection_pool=True)
        raise unavailable(what, url, exc) from exc
    return client


def decode_text(value: Any) -> str:
    """A Redis reply value as text (replies are bytes unless ``decode_responses`` is set)."""
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisConnection:
    """The client one sink owns: connected by :meth:`open`, released by :meth:`aclose`.

    Args:
        url: ``redis://host:port/db`` (a password in it never appears in errors).
        what: names the store in errors (``"Redis audit stream"``).
        connect_timeout_s / socket_timeout_s: how long to wait for Redis.
    """

    def __init__(
        self, url: str, *, what: str, connect_timeout_s: float, socket_timeout_s: float
    ) -> None:
        self.url = url
        self.what = what
        self._connect_timeout_s = connect_timeout_s
        self._socket_timeout_s = socket_timeout_s
        self._client: Redis | None = None

    async def open(self) -> None:
        """Connect unless already connected.

        Raises:
            SinkUnavailableError: the URL is malformed or Redis does not answer.
        """
        if self._client is None:
            self._client = await connect(
                self.url,
                what=self.what,
                connect_timeout_s=self._connect_timeout_s,
                socket_timeout_s=self._socket_timeout_s,
            )

    def client(self, target: str) -> Redis:
        """The open client; ``target`` names the sink in the error when it is not open.

        Raises:
            SinkUnavailableError: :meth:`open` has not been called (or :meth:`aclose` has).
        """
        if self._client is None:
            raise SinkUnavailableError(
                self.what, target, "it is not open", "Call 'await sink.open()' first."
            )
        return self._client

    async def aclose(self) -> None:
        """Close the client and its pool. Safe to call more than once."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose(close_connection_pool=True)


def unavailable(what: str, url: str, exc: BaseException) -> SinkUnavailableError:
    return SinkUnavailableError(
        what,
        redact_url(url),
        f"{type(exc).__name__}: {exc}",
        "Start Redis or fix the URL (AGENTBUS_AUDIT__REDIS_URL / AGENTBUS_METERING__REDIS_URL), "
        "or use the SQLite sink.",
    )
