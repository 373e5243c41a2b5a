from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from enhanced_agent_bus.cache import KEY_BYTES, KeyScope, scoped_key

HASH_A = "a" * 64
HASH_B = "b" * 64


def test_key_is_16_bytes_and_deterministic() -> None:
    body = orjson.dumps({"sender": {"role": "planner"}}, option=orjson.OPT_SORT_KEYS)
    key = scoped_key(HASH_A, body)
    assert len(key) == KEY_BYTES == 16
    assert key == scoped_key(HASH_A, body)
    assert key == scoped_key(HASH_A.encode(), body)


def test_a_new_constitution_changes_every_key() -> None:
    body = b'{"message":{"type":"command"}}'
    assert scoped_key(HASH_A, body) != scoped_key(HASH_B, body)


def test_any_change_in_the_input_changes_the_key() -> None:
    assert scoped_key(HASH_A, b'{"size_bytes":10}') != scoped_key(HASH_A, b'{"size_bytes":11}')


@given(st.binary(max_size=8), st.binary(max_size=8), st.binary(max_size=8))
def test_scope_and_body_cannot_be_confused_by_concatenation(
    scope: bytes, moved: bytes, body: bytes
) -> None:
    if moved:
        assert scoped_key(scope + moved, body) != scoped_key(scope, moved + body)


@given(st.text(max_size=70), st.binary(max_size=200))
def test_a_prepared_scope_gives_the_same_keys(scope: str, body: bytes) -> None:
    assert KeyScope(scope).key(body) == scoped_key(scope, body)
    assert KeyScope(scope.encode()).key(body) == scoped_key(scope, body)
