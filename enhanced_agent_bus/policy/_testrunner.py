"""Run a bundle's Rego unit tests with the embedded engine (``agent-bus policy test``).

Every rule whose name starts with ``test_`` in a ``*_test.rego`` file is a
test. The runner loads every ``*.rego`` file of the bundle (tests included)
and the data document into one regorus interpreter, then evaluates each test
rule on its own: ``true`` passes; false, undefined or an engine error fails,
and the failure says which.

Tests are found in the engine's parsed AST, not by pattern-matching the
source, so a ``test_`` name inside a comment or a rule body is never mistaken
for a test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..constitution import Constitution, load_bundle
from ._embedded import load_interpreter
from ._errors import PolicyLoadError, clean_engine_message


@dataclass(frozen=True, slots=True)
class RegoTestResult:
    """The outcome of one ``test_*`` rule."""

    package: str
    name: str
    file: str
    line: int
    passed: bool
    #: Why it failed: "false", "undefined", or the engine's error.
    failure: str | None = None

    @property
    def rule(self) -> str:
        return f"data.{self.package}.{self.name}"


@dataclass(frozen=True, slots=True)
class RegoTestReport:
    bundle: str
    results: tuple[RegoTestResult, ...]

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.passed)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed

    @property
    def ok(self) -> bool:
        """True when there are tests and every one passed (no tests is not a pass)."""
        return bool(self.results) and self.failed == 0


def run_rego_tests(bundle: Constitution | str | Path | None = None) -> RegoTestReport:
    """Run every ``test_*`` rule of the bundle's ``*_test.rego`` files.

    Args:
        bundle: a loaded constitution, a bundle directory, or None for the default one.

    Raises:
        ConfigurationError: the bundle, a module or the data document does not load.
    """
    constitution = bundle if isinstance(bundle, Constitution) else load_bundle(bundle)
    origin = str(constitution.path)
    modules = {
        rel: constitution.read_text(rel)
        for rel in sorted(constitution.files)
        if rel.endswith(".rego")
    }
    if not modules:
        raise PolicyLoadError("the bundle has no Rego modules", file=origin)
    data_json = constitution.read_text("data.json") if constitution.has_file("data.json") else "{}"
    engine = load_interpreter(modules, data_json, origin=origin)
    results: list[RegoTestResult] = []
    for module in orjson.loads(engine.get_ast_as_json()):
        file = module["source"]["file"]
        if not file.endswith("_test.rego"):
            continue
        package = _ref_path(module["ast"]["package"]["refr"])
        seen: set[str] = set()
        for name, line in _test_rules(module["ast"].get("rules", [])):
            if name in seen:  # a test split over several bodies is one rule
                continue
            seen.add(name)
            results.append(_run_one(engine, package, name, file, line))
    return RegoTestReport(bundle=origin, results=tuple(results))


def _run_one(engine: Any, package: str, name: str, file: str, line: int) -> RegoTestResult:
    rule = f"data.{package}.{name}"
    try:
        value = engine.eval_rule(rule)
    except RuntimeError as exc:
        return RegoTestResult(
            package, name, file, line, passed=False, failure=clean_engine_message(str(exc))
        )
    if value is True:
        return RegoTestResult(package, name, file, line, passed=True)
    failure = "undefined" if value is None else f"returned {value!r}"
    return RegoTestResult(package, name, file, line, passed=False, failure=failure)


def _test_rules(rules: list[dict[str, Any]]) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for rule in rules:
        spec = rule.get("Spec")
        if spec is None:  # default rules are not tests
            continue
        ((kind, head),) = spec["head"].items()
        if kind == "Func":  # a function is a helper, never a test
            continue
        name = _ref_path(head["refr"]).split(".")[0]
        if name.startswith("test_"):
            found.append((name, int(spec["span"]["line"])))
    return found


def _ref_path(ref: dict[str, Any]) -> str:
    """``a.b.c`` from regorus's nested RefDot/Var AST nodes."""
    parts: list[str] = []
    node = ref
    while True:
        ((kind, value),) = node.items()
        if kind == "Var":
            parts.append(value["value"])
            break
        if kind == "RefDot":
            parts.append(value["field"][1])
            node = value["refr"]
            continue
        if kind == "RefBrack":
            node = value["refr"]
            continue
        raise PolicyLoadError(f"unexpected Rego AST node {kind!r} while reading rule names")
    return ".".join(reversed(parts))
