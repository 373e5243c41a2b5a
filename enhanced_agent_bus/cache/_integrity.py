"""HMAC-SHA256 sealing of L2 values, so a value changed in Redis is never trusted.

Wire format of a sealed value::

    version (1 byte) | HMAC-SHA256 (32 bytes) | payload

The MAC covers the version, the Redis key the value is stored under
(length-prefixed) and the payload. Binding the key matters: without it, an
attacker with write access to Redis could copy a genuine "allow" decision onto
the key of a question whose answer is "deny". Anything that does not verify
(a changed byte, a truncated value, a foreign format, a value moved to another
key) unseals to ``None`` and the cache evaluates again.
"""

from __future__ import annotations

import hmac
from typing import Final

from ..errors import ConfigurationError

_VERSION: Final = b"\x01"
_MAC_BYTES: Final = 32
_HEADER_BYTES: Final = 1 + _MAC_BYTES
#: The shortest secret accepted: 32 characters (128 bits of hex, or more).
MIN_HMAC_KEY_CHARS: Final = 32
HMAC_KEY_ENV: Final = "AGENTBUS_CACHE__HMAC_KEY"


def hmac_key_problem(secret: str) -> str | None:
    """Why ``secret`` is not acceptable as the L2 HMAC key, or ``None`` if it is."""
    if not secret:
        return (
            f"the shared L2 cache needs an HMAC key: set {HMAC_KEY_ENV} (the same value in "
            "every process that shares this Redis), e.g. to the output of "
            "\"python -c 'import secrets; print(secrets.token_hex(32))'\". A per-process "
            "random key would make every process reject the others' entries."
        )
    if len(secret) < MIN_HMAC_KEY_CHARS:
        return (
            f"{HMAC_KEY_ENV} is {len(secret)} characters; use at least {MIN_HMAC_KEY_CHARS} "
            "(e.g. \"python -c 'import secrets; print(secrets.token_hex(32))'\")."
        )
    return None


class ValueSealer:
    """Seals and verifies L2 values with HMAC-SHA256.

    Raises:
        ConfigurationError: the secret is empty or shorter than 32 characters.
    """

    __slots__ = ("_secret",)

    def __init__(self, secret: str) -> None:
        problem = hmac_key_problem(secret)
        if problem is not None:
            raise ConfigurationError(f"Invalid cache HMAC key: {problem}")
        self._secret = secret.encode()

    def seal(self, context: bytes, payload: bytes) -> bytes:
        """``payload`` with a version byte and a MAC bound to ``context`` (the Redis key)."""
        return _VERSION + self._mac(context, payload) + payload

    def unseal(self, context: bytes, sealed: bytes) -> bytes | None:
        """The payload if ``sealed`` verifies under ``context``, else ``None``."""
        if len(sealed) < _HEADER_BYTES or sealed[:1] != _VERSION:
            return None
        payload = sealed[_HEADER_BYTES:]
        if not hmac.compare_digest(sealed[1:_HEADER_BYTES], self._mac(context, payload)):
            return None
        return payload

    def _mac(self, context: bytes, payload: bytes) -> bytes:
        message = _VERSION + len(context).to_bytes(2, "big") + context + payload
        return hmac.digest(self._secret, message, "sha256")
