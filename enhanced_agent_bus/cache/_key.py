"""Cache keys: a 128-bit xxh3 digest of a scope plus a canonical body.

A decision cache key must identify *exactly* the question that was answered.
The policy stage builds it as ``scoped_key(constitutional_hash, canonical_input)``:

* the **body** is the canonical JSON of the whole policy input (sorted keys, one
  encoder), so two inputs share a key only if every field the policy can see is
  equal, and a decision is never reused for a different question;
* the **scope** is the constitutional hash (the SHA-256 of the bundle), so a
  reloaded constitution, even one that differs by a single byte of data,
  produces different keys. Old decisions are never looked up again: they age
  out of L1 (LRU and TTL) and L2 (TTL). The TTLs only bound memory; they are
  not what keeps decisions fresh.

The scope is length-prefixed, so ``("ab", "c")`` and ``("a", "bc")`` cannot
collide by concatenation. xxh3_128 is not a MAC: it is fast (~0.05 µs) and
collision-resistant for non-adversarial inputs; tampering with stored values is
caught by the HMAC on L2 values, not by the key.
"""

from __future__ import annotations

from typing import Final

import xxhash

#: Length in bytes of a key from :func:`scoped_key`.
KEY_BYTES: Final = 16

_xxh3_128_digest = xxhash.xxh3_128_digest


class KeyScope:
    """A scope prepared once (per constitution load), for the per-message key.

    ``KeyScope(h).key(body) == scoped_key(h, body)``, without re-encoding the
    scope on every message.

    Example::

        scope = KeyScope(constitution.hash)      # at load time
        key = scope.key(canonical_input)         # per message
    """

    __slots__ = ("_prefix", "scope")

    def __init__(self, scope: str | bytes) -> None:
        scope_bytes = scope.encode() if isinstance(scope, str) else scope
        self.scope = scope_bytes
        self._prefix = len(scope_bytes).to_bytes(4, "big") + scope_bytes

    def key(self, body: bytes) -> bytes:
        """The 16-byte key of ``body`` in this scope."""
        digest: bytes = _xxh3_128_digest(self._prefix + body)
        return digest


def scoped_key(scope: str | bytes, body: bytes) -> bytes:
    """The 16-byte cache key of ``body`` under ``scope``.

    Args:
        scope: what invalidates the key when it changes (the constitutional hash).
        body: the canonical encoding of the question (sorted-key JSON).

    Example::

        key = scoped_key(constitution.hash, orjson.dumps(policy_input, option=orjson.OPT_SORT_KEYS))
    """
    scope_bytes = scope.encode() if isinstance(scope, str) else scope
    digest: bytes = _xxh3_128_digest(len(scope_bytes).to_bytes(4, "big") + scope_bytes + body)
    return digest
