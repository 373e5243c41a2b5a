"""How cached values become bytes for L2 (L1 keeps the objects themselves)."""

from __future__ import annotations

from typing import Protocol, TypeVar

V = TypeVar("V")


class Codec(Protocol[V]):
    """Turns a cached value into bytes and back.

    ``decode`` receives only bytes whose HMAC verified, so a failure means a
    different codec version wrote them; it should raise ``ValueError``. The
    cache treats any decoding failure as a miss and evaluates again.
    """

    def encode(self, value: V, /) -> bytes: ...

    def decode(self, data: bytes, /) -> V: ...


class BytesCodec:
    """The identity codec, for caches whose values already are ``bytes``."""

    def encode(self, value: bytes, /) -> bytes:
        return value

    def decode(self, data: bytes, /) -> bytes:
        return data
