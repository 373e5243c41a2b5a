"""The decision cache key: exactly the policy input plus the constitutional hash.

``key = xxh3_128(len(hash) as 4 bytes + constitutional_hash + canonical_json(policy_input))``

(the same layout as ``cache.scoped_key``, so both produce the same key; the
length prefix means no (hash, input) pair can collide with another by
concatenation).

A Rego decision is a pure function of (bundle, input): the engine has no other
state, no clock, no I/O. The key covers both halves:

* the **input** as canonical JSON (orjson with sorted keys, so equal documents
  give equal bytes whatever order they were built in), so two messages share a
  decision only when the policy would see the very same document;
* the **constitutional hash**, the SHA-256 of the whole bundle's canonical
  content. Loading a different bundle changes the hash, so every key changes
  with it: a reload can never serve a decision made under the old
  constitution, even from a Redis L2 shared with processes that still run the
  old one. Old entries are never looked up again and age out by TTL/LRU. No
  invalidation step is needed, so there is none to forget or to race.

xxh3_128 costs ~0.05 µs; with 128 bits, accidental collisions are negligible
(~2^-64 at 2^32 entries). Keys are not a security boundary: L2 values carry an
HMAC, and an attacker who can write Redis could not choose a key's decision
without the HMAC key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson
import xxhash

#: orjson options of the canonical encoding (sorted keys, UTC as ``Z``).
CANONICAL_JSON_OPTIONS: Final = orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z


def canonical_json(policy_input: Mapping[str, Any]) -> bytes:
    """The canonical encoding of a policy input (sorted keys, compact, UTF-8)."""
    return orjson.dumps(policy_input, option=CANONICAL_JSON_OPTIONS)


def decision_key_from_json(constitutional_hash: str, input_json: bytes) -> bytes:
    """The 16-byte key for an input already encoded by :func:`canonical_json`."""
    scope = constitutional_hash.encode()
    digest: bytes = xxhash.xxh3_128_digest(len(scope).to_bytes(4, "big") + scope + input_json)
    return digest


def decision_key(constitutional_hash: str, policy_input: Mapping[str, Any]) -> bytes:
    """The 16-byte decision cache key for ``policy_input`` under ``constitutional_hash``.

    Example::

        key = decision_key(constitution.hash, build_policy_input(message, ctx, spec))
        assert len(key) == 16
    """
    return decision_key_from_json(constitutional_hash, canonical_json(policy_input))
