from __future__ import annotations

import copy
from typing import Any

import pytest

from enhanced_agent_bus.policy import canonical_json, decision_key, decision_key_from_json

HASH_A = "a" * 64
HASH_B = "b" * 64


def _input() -> dict[str, Any]:
    return {
        "sender": {"id": "p1", "tenant_id": "acme", "role": "planner", "capabilities": []},
        "recipient": {"id": "w1", "tenant_id": "acme", "role": "worker", "capabilities": []},
        "message": {
            "type": "command",
            "priority": "normal",
            "tenant_id": "acme",
            "size_bytes": 12,
            "topic": None,
            "metadata": {"action": "propose"},
        },
        "payload": {},
    }


def test_key_is_16_bytes_and_deterministic() -> None:
    key = decision_key(HASH_A, _input())
    assert len(key) == 16
    assert decision_key(HASH_A, _input()) == key


def test_key_ignores_the_order_keys_were_inserted_in() -> None:
    original = _input()
    reordered = {k: original[k] for k in reversed(list(original))}
    reordered["message"] = {k: original["message"][k] for k in reversed(list(original["message"]))}
    assert canonical_json(reordered) == canonical_json(original)
    assert decision_key(HASH_A, reordered) == decision_key(HASH_A, original)


def test_key_changes_with_the_constitutional_hash() -> None:
    assert decision_key(HASH_A, _input()) != decision_key(HASH_B, _input())


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("sender", "id"), "p2"),
        (("sender", "role"), "worker"),
        (("recipient", "tenant_id"), "globex"),
        (("message", "type"), "query"),
        (("message", "priority"), "critical"),
        (("message", "size_bytes"), 13),
        (("message", "topic"), "news"),
        (("message", "metadata"), {"action": "validate"}),
        (("payload",), {"amount": 1}),
    ],
)
def test_key_changes_with_every_input_field(path: tuple[str, ...], value: object) -> None:
    changed = copy.deepcopy(_input())
    target: dict[str, Any] = changed
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    assert decision_key(HASH_A, changed) != decision_key(HASH_A, _input())


def test_key_from_json_matches_key_from_document() -> None:
    doc = _input()
    assert decision_key_from_json(HASH_A, canonical_json(doc)) == decision_key(HASH_A, doc)


def test_key_layout_matches_the_cache_packages_scoped_key() -> None:
    from enhanced_agent_bus.cache import scoped_key

    body = canonical_json(_input())
    assert decision_key_from_json(HASH_A, body) == scoped_key(HASH_A, body)
