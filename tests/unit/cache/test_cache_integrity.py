from __future__ import annotations

import pytest

from enhanced_agent_bus.cache import ValueSealer
from enhanced_agent_bus.errors import ConfigurationError

SECRET = "k" * 32
KEY = b"agentbus:decision:00112233445566778899aabbccddeeff"


def test_sealed_value_round_trips() -> None:
    sealer = ValueSealer(SECRET)
    sealed = sealer.seal(KEY, b'{"allow":true}')
    assert sealed != b'{"allow":true}'
    assert sealer.unseal(KEY, sealed) == b'{"allow":true}'
    assert sealer.unseal(KEY, sealer.seal(KEY, b"")) == b""


def test_every_single_byte_change_is_rejected() -> None:
    sealer = ValueSealer(SECRET)
    sealed = sealer.seal(KEY, b'{"allow":false,"deny":["too big"]}')
    for index in range(len(sealed)):
        tampered = bytearray(sealed)
        tampered[index] ^= 0x01
        assert sealer.unseal(KEY, bytes(tampered)) is None, index


@pytest.mark.parametrize("cut", [0, 1, 32, 33, 40])
def test_truncated_values_are_rejected(cut: int) -> None:
    sealer = ValueSealer(SECRET)
    sealed = sealer.seal(KEY, b'{"allow":true,"deny":[]}')
    assert sealer.unseal(KEY, sealed[:cut]) is None


def test_garbage_and_unsealed_payloads_are_rejected() -> None:
    sealer = ValueSealer(SECRET)
    assert sealer.unseal(KEY, b'{"allow":true}') is None
    assert sealer.unseal(KEY, bytes(range(256))) is None
    assert sealer.unseal(KEY, b"\x01" + b"\x00" * 32 + b'{"allow":true}') is None


def test_a_value_moved_to_another_key_is_rejected() -> None:
    sealer = ValueSealer(SECRET)
    allow = sealer.seal(KEY, b'{"allow":true}')
    assert sealer.unseal(KEY[:-1] + b"0", allow) is None


def test_a_value_sealed_with_another_secret_is_rejected() -> None:
    sealed = ValueSealer("a" * 32).seal(KEY, b"x")
    assert ValueSealer("b" * 32).unseal(KEY, sealed) is None


@pytest.mark.parametrize(
    ("secret", "fragment"), [("", "needs an HMAC key"), ("short", "is 5 characters")]
)
def test_missing_or_short_secret_is_a_configuration_error(secret: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment) as info:
        ValueSealer(secret)
    assert "AGENTBUS_CACHE__HMAC_KEY" in str(info.value)
