import hashlib
from pathlib import Path

import pytest

from enhanced_agent_bus import ConfigurationError, load_bundle
from enhanced_agent_bus.constitution import HashRotation, HashStatus, default_bundle_path
from enhanced_agent_bus.testing import FakeClock
from tests.conftest import write_bundle


def test_hash_is_sha256_of_canonical_content(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", {"a": 1}, **{"policy.rego": "package x\n"})
    constitution = load_bundle(root)
    digest = hashlib.sha256()
    for rel in sorted(["data.json", "policy.rego"]):
        content = (root / rel).read_bytes()
        digest.update(rel.encode() + b"\0" + str(len(content)).encode() + b"\0" + content)
    assert constitution.hash == digest.hexdigest()
    assert len(constitution.hash) == 64


def test_hash_changes_when_one_byte_changes(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", **{"p.rego": "package x\n"})
    before = load_bundle(root).hash
    (root / "p.rego").write_text("package y\n")
    assert load_bundle(root).hash != before


def test_hash_changes_when_a_file_is_renamed(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", **{"p.rego": "package x\n"})
    before = load_bundle(root).hash
    (root / "p.rego").rename(root / "q.rego")
    assert load_bundle(root).hash != before


def test_line_endings_bom_and_hidden_files_do_not_change_the_hash(tmp_path: Path) -> None:
    unix = write_bundle(tmp_path / "unix", **{"p.rego": "package x\nallow := true\n"})
    windows = write_bundle(tmp_path / "win")
    (windows / "p.rego").write_bytes(b"\xef\xbb\xbfpackage x\r\nallow := true\r\n")
    (windows / ".swp").write_text("editor junk")
    (windows / "__pycache__").mkdir()
    (windows / "__pycache__" / "x.pyc").write_bytes(b"junk")
    assert load_bundle(unix).hash == load_bundle(windows).hash


def test_default_bundle_ships_in_the_package() -> None:
    constitution = load_bundle()
    assert constitution.path == default_bundle_path().resolve()
    assert constitution.has_file("data.json")
    repo_policies = Path(__file__).resolve().parents[3] / "policies"
    assert load_bundle(repo_policies).hash == constitution.hash


@pytest.mark.parametrize("kind", ["missing", "file", "empty"])
def test_bad_bundle_paths_name_the_path(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "bundle"
    if kind == "file":
        target.write_text("x")
    elif kind == "empty":
        target.mkdir()
    with pytest.raises(ConfigurationError, match="bundle"):
        load_bundle(target)


def test_data_document_errors(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b")
    (root / "data.json").write_text("[1, 2]")
    with pytest.raises(ConfigurationError, match="JSON object"):
        load_bundle(root).data_document()
    (root / "data.json").write_text("{nope")
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        load_bundle(root).data_document()


def test_rotation_accepts_previous_hash_only_inside_grace() -> None:
    clock = FakeClock()
    rotation = HashRotation("a" * 64, grace_s=300, clock=clock)
    assert rotation.status("a" * 64) is HashStatus.ACTIVE
    rotation.rotate("b" * 64)
    assert rotation.status("b" * 64) is HashStatus.ACTIVE
    assert rotation.status("a" * 64) is HashStatus.PREVIOUS
    clock.advance(299.9)
    assert rotation.status("a" * 64) is HashStatus.PREVIOUS
    clock.advance(0.2)
    assert rotation.status("a" * 64) is HashStatus.STALE
    assert rotation.status("c" * 64) is HashStatus.UNKNOWN
    assert rotation.status("") is HashStatus.MISSING
    assert rotation.status("ä") is HashStatus.UNKNOWN
    rotation.rotate("c" * 64)
    assert rotation.status("b" * 64) is HashStatus.PREVIOUS
    assert rotation.status("a" * 64) is HashStatus.STALE
