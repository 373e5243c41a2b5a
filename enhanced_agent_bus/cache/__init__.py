"""The decision cache: L1 in-process LRU+TTL, L2 Redis with HMAC, tiered, single flight.

Keys are :func:`scoped_key` digests of the constitutional hash plus the
canonical policy input, so a cached decision answers exactly the question it
was computed for and a constitution reload never serves an old decision.

Example::

    from enhanced_agent_bus.cache import CacheSettings, TieredCache, scoped_key

    cache = TieredCache.from_settings(CacheSettings(), codec, supervisor=tasks)
    key = scoped_key(constitution.hash, canonical_input)
    decision = cache.get_local(key) or await cache.get_or_load(key, evaluate)
"""

from ._codec import BytesCodec, Codec
from ._integrity import MIN_HMAC_KEY_CHARS, ValueSealer
from ._key import KEY_BYTES, KeyScope, scoped_key
from ._lru import LRUCache
from ._protocol import DecisionCache
from ._redis import RedisDecisionStore
from ._redis_client import create_redis_client
from ._settings import CacheSettings
from ._single_flight import SingleFlight
from ._tiered import TieredCache

__all__ = [
    "KEY_BYTES",
    "MIN_HMAC_KEY_CHARS",
    "BytesCodec",
    "CacheSettings",
    "Codec",
    "DecisionCache",
    "KeyScope",
    "LRUCache",
    "RedisDecisionStore",
    "SingleFlight",
    "TieredCache",
    "ValueSealer",
    "create_redis_client",
    "scoped_key",
]
