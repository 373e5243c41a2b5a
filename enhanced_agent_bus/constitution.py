"""The constitution: a bundle directory, its canonical hash, and hash rotation.

The constitutional hash is the SHA-256 of the bundle's canonical content:
for every regular file (hidden files and ``__pycache__`` excluded), sorted by
relative POSIX path, the path, its length and its normalized bytes (UTF-8 BOM
removed, CRLF/CR turned into LF). It is never a constant: edit one byte of
one policy and the hash changes; check the bundle out on Windows and it does
not.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import orjson

from .clock import Clock, SystemClock
from .errors import ConfigurationError

_MAX_BUNDLE_FILES: Final = 10_000
_MAX_BUNDLE_BYTES: Final = 64 * 1024 * 1024
_SKIPPED_DIRS: Final = frozenset({"__pycache__"})


def default_bundle_path() -> Path:
    """The constitution shipped inside the package (a copy of the repository's ``policies/``)."""
    return Path(str(resources.files("enhanced_agent_bus") / "policies"))


def normalize_bundle_bytes(content: bytes) -> bytes:
    """Line endings and BOMs are editor noise, not constitution content."""
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    return content.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def canonical_hash(files: Mapping[str, bytes]) -> str:
    """SHA-256 hex over sorted ``(path, length, normalized bytes)`` records."""
    digest = hashlib.sha256()
    for rel_path in sorted(files):
        content = files[rel_path]
        digest.update(rel_path.encode("utf-8"))
        digest.update(b"\0")
        digest.update(str(len(content)).encode("ascii"))
        digest.update(b"\0")
        digest.update(content)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Constitution:
    """A loaded, immutable constitution bundle."""

    path: Path
    hash: str
    files: Mapping[str, bytes] = field(repr=False)

    def read_text(self, rel_path: str) -> str:
        """The normalized text of one bundle file.

        Raises:
            ConfigurationError: the bundle has no such file.
        """
        try:
            return self.files[rel_path].decode("utf-8")
        except KeyError:
            raise ConfigurationError(
                f"Constitution bundle {str(self.path)!r} has no file {rel_path!r}; "
                f"it has {sorted(self.files)!r}."
            ) from None

    def has_file(self, rel_path: str) -> bool:
        return rel_path in self.files

    def files_with_suffix(self, suffix: str) -> dict[str, str]:
        """Relative path -> text for every bundle file whose name ends with ``suffix``."""
        return {p: c.decode("utf-8") for p, c in sorted(self.files.items()) if p.endswith(suffix)}

    def data_document(self, rel_path: str = "data.json") -> dict[str, Any]:
        """The bundle's JSON data document ({} when the bundle has none).

        Raises:
            ConfigurationError: the file is not a JSON object.
        """
        if rel_path not in self.files:
            return {}
        try:
            data = orjson.loads(self.files[rel_path])
        except orjson.JSONDecodeError as exc:
            raise ConfigurationError(
                f"{str(self.path / rel_path)!r} is not valid JSON: {exc}. Fix the data document."
            ) from exc
        if not isinstance(data, dict):
            raise ConfigurationError(
                f"{str(self.path / rel_path)!r} must hold a JSON object, not {type(data).__name__}."
            )
        return data


def load_bundle(path: str | Path | None = None) -> Constitution:
    """Read a bundle directory and compute its constitutional hash.

    Args:
        path: the bundle directory; None loads the default bundle shipped in the package.

    Raises:
        ConfigurationError: the path is missing, not a directory, empty, too big,
            or holds a file that cannot be read.
    """
    root = Path(path) if path is not None else default_bundle_path()
    if not root.exists():
        raise ConfigurationError(
            f"Constitution bundle {str(root)!r} does not exist. Pass a directory of Rego "
            "modules and data, or omit the path to use the default constitution."
        )
    if not root.is_dir():
        raise ConfigurationError(
            f"Constitution bundle {str(root)!r} is not a directory. Pass the directory that "
            "holds the Rego modules, not a single file."
        )
    files: dict[str, bytes] = {}
    total = 0
    for file_path in sorted(root.rglob("*")):
        rel = file_path.relative_to(root)
        if any(part.startswith(".") or part in _SKIPPED_DIRS for part in rel.parts):
            continue
        if not file_path.is_file():
            continue
        try:
            content = normalize_bundle_bytes(file_path.read_bytes())
        except OSError as exc:
            raise ConfigurationError(
                f"Cannot read constitution file {str(file_path)!r}: {exc}. Check permissions."
            ) from exc
        total += len(content)
        files[rel.as_posix()] = content
        if len(files) > _MAX_BUNDLE_FILES or total > _MAX_BUNDLE_BYTES:
            raise ConfigurationError(
                f"Constitution bundle {str(root)!r} exceeds {_MAX_BUNDLE_FILES} files or "
                f"{_MAX_BUNDLE_BYTES} bytes; point at the bundle directory, not a parent."
            )
    if not files:
        raise ConfigurationError(
            f"Constitution bundle {str(root)!r} holds no files. A constitution needs at least "
            "its data document and policies."
        )
    return Constitution(
        path=root.resolve(), hash=canonical_hash(files), files=MappingProxyType(files)
    )


class HashStatus(StrEnum):
    ACTIVE = "active"
    PREVIOUS = "previous"  # the rotated-out hash, still inside its grace window
    STALE = "stale"  # the rotated-out hash after its grace window
    UNKNOWN = "unknown"
    MISSING = "missing"


class HashRotation:
    """Which constitutional hashes the bus accepts, with a grace window after a swap.

    Comparisons are constant-time (``hmac.compare_digest``) so the accepted hash
    cannot be recovered byte by byte from response timing.
    """

    def __init__(self, active_hash: str, *, grace_s: float, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._grace_s = grace_s
        #: The hash of the active constitution (read-only outside :meth:`rotate`).
        self.active_hash = _ascii(active_hash)
        self._previous: str | None = None
        self._previous_until = 0.0
        self._retired: list[str] = []

    def rotate(self, new_hash: str) -> None:
        """Make ``new_hash`` active; the old one stays accepted for the grace window."""
        if self._previous is not None:
            self._retired.append(self._previous)
            del self._retired[:-8]  # remembered only to say "stale" rather than "unknown"
        self._previous = self.active_hash
        self._previous_until = self._clock.monotonic() + self._grace_s
        self.active_hash = _ascii(new_hash)

    def status(self, candidate: str) -> HashStatus:
        if not candidate:
            return HashStatus.MISSING
        if not candidate.isascii():
            return HashStatus.UNKNOWN
        # compare_digest takes ASCII str directly: no per-message encode.
        if hmac.compare_digest(candidate, self.active_hash):
            return HashStatus.ACTIVE
        if self._previous is not None and hmac.compare_digest(candidate, self._previous):
            if self._clock.monotonic() < self._previous_until:
                return HashStatus.PREVIOUS
            return HashStatus.STALE
        if any(hmac.compare_digest(candidate, old) for old in self._retired):
            return HashStatus.STALE
        return HashStatus.UNKNOWN


def _ascii(value: str) -> str:
    if not value.isascii():
        raise ConfigurationError(f"constitutional hash {value!r} must be ASCII hex")
    return value
