"""The embedded Rego engine: the bundle's policy evaluated in-process by regorus.

Loading takes every ``*.rego`` file of the bundle except ``*_test.rego`` (the
unit tests, run by ``agent-bus policy test``) and the root ``data.json``, then
proves the bundle usable before the bus ever routes a message through it:

1. each module parses (syntax errors, unknown imports: file, line, column);
2. the data document has the shape the constitution needs (``_data.py``);
3. the constitution-errors rule, if the bundle defines one, is empty;
4. the decision rule exists and answers a probe input with a well-formed
   decision (unknown functions and non-boolean ``allow`` show up here);
5. in ``compiled`` mode, the regorus compiler accepts the modules and the
   compiled program agrees with the interpreter on the probe.

Any failure raises :class:`PolicyLoadError` (a ``ConfigurationError``), so the
bus refuses the bundle and keeps the constitution it has.

regorus holds the GIL while it evaluates, keeps the input as engine state, and
its Python objects are thread-confined (using one from another thread panics).
So a loaded policy keeps only text and the serialized compiled program, and
every thread that evaluates builds its own replica from them.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Final, Literal, Protocol

import orjson
import regorus

from ..constitution import Constitution
from ..errors import AgentBusError, ConfigurationError
from ._data import DATA_DOCUMENT, validate_data_document
from ._decision import PolicyDecision
from ._errors import PolicyEvaluationError, PolicyLoadError, clean_engine_message, detached
from ._key import canonical_json
from ._settings import PolicySettings

#: A well-formed input of the documented shape; loading evaluates the policy on it.
PROBE_INPUT: Final[Mapping[str, Any]] = {
    "sender": {"id": "probe-sender", "tenant_id": "probe", "role": "probe", "capabilities": []},
    "recipient": {
        "id": "probe-recipient",
        "tenant_id": "probe",
        "role": "probe",
        "capabilities": [],
    },
    "message": {
        "type": "heartbeat",
        "priority": "low",
        "tenant_id": "probe",
        "size_bytes": 2,
        "topic": None,
        "metadata": {},
    },
    "payload": {},
}

# The compiled VM reports an undefined entry point as this JSON string.
_RVM_UNDEFINED: Final = "<undefined>"
_INTERPRETED_HINT: Final = (
    "If the policy is valid Rego that the regorus compiler does not support yet, set "
    "rego_mode='interpreted' (AGENTBUS_POLICY__REGO_MODE=interpreted)."
)

RegoMode = Literal["compiled", "interpreted"]


def is_policy_module(rel_path: str) -> bool:
    """True for the bundle's production Rego modules (tests are left out)."""
    return rel_path.endswith(".rego") and not rel_path.endswith("_test.rego")


class PolicyReplica(Protocol):
    """One thread's copy of the engine (regorus objects must stay on their thread)."""

    def decide(self, input_json: str) -> object:
        """The decision rule's raw value for one input (None when undefined).

        Raises:
            RuntimeError: the engine failed.
        """
        ...


class _CompiledReplica:
    __slots__ = ("_rule", "_vm")

    def __init__(self, program: Any, data_json: str, rule: str) -> None:
        self._vm = regorus.Rvm()
        self._vm.load_program(program)
        self._vm.set_data_json(data_json)
        self._rule = rule

    def decide(self, input_json: str) -> object:
        self._vm.set_input_json(input_json)
        value = orjson.loads(self._vm.execute_entry_point(self._rule))
        return None if value == _RVM_UNDEFINED else value


class _InterpretedReplica:
    __slots__ = ("_engine", "_rule")

    def __init__(self, engine: Any, rule: str) -> None:
        self._engine = engine
        self._rule = rule

    def decide(self, input_json: str) -> object:
        self._engine.set_input_json(input_json)
        return self._engine.eval_rule(self._rule)


class EmbeddedPolicy:
    """A loaded bundle's Rego policy, evaluated in-process.

    The object itself holds only text and bytes (the modules, the data document
    and, in compiled mode, the serialized program), so it may be shared between
    threads and pickled to worker processes. regorus engines, however, may only
    be used on the thread that created them: :meth:`new_replica` builds one for
    the calling thread. :meth:`evaluate_json` keeps a replica for the first
    thread that calls it (the event loop, for the inline executor) and builds a
    throw-away one for calls from any other thread; release the policy on that
    first thread too (the bus does: the loop that used a stage drops it).

    Example::

        policy = EmbeddedPolicy.from_constitution(load_bundle())
        decision = policy.evaluate(policy_input)   # PolicyDecision(allow=..., reasons=...)
    """

    def __init__(
        self,
        *,
        origin: str,
        files: Mapping[str, bytes],
        modules: Mapping[str, str],
        data_json: str,
        decision_rule: str,
        mode: RegoMode,
        program_blob: bytes | None,
    ) -> None:
        self.origin = origin
        #: The bundle files the policy was loaded from (process workers reload from these).
        self.files: Mapping[str, bytes] = files
        self.decision_rule = decision_rule
        self.mode: RegoMode = mode
        self._modules = modules
        self._data_json = data_json
        self._program_blob = program_blob
        self._owner_thread: int | None = None
        self._owner_replica: PolicyReplica | None = None

    @classmethod
    def from_constitution(
        cls, constitution: Constitution, settings: PolicySettings | None = None
    ) -> EmbeddedPolicy:
        """Load and check the policy of a loaded constitution bundle.

        Raises:
            PolicyLoadError: a module, the data document or the decision rule is unusable.
            ConfigurationError: the data document has the wrong shape.
        """
        return cls.from_files(
            constitution.files, origin=str(constitution.path), settings=settings or PolicySettings()
        )

    @classmethod
    def from_files(
        cls, files: Mapping[str, bytes], *, origin: str, settings: PolicySettings
    ) -> EmbeddedPolicy:
        """Load and check a policy from bundle files (relative path -> normalized bytes).

        Raises:
            PolicyLoadError: a module, the data document or the decision rule is unusable.
            ConfigurationError: the data document has the wrong shape.
        """
        modules = {
            rel: _decode(content, origin, rel)
            for rel, content in sorted(files.items())
            if is_policy_module(rel)
        }
        if not modules:
            raise PolicyLoadError(
                "the bundle has no Rego modules (*.rego other than *_test.rego)",
                file=origin,
                hint="Add the policy modules, or point at the bundle directory.",
            )
        data_json = (
            _decode(files[DATA_DOCUMENT], origin, DATA_DOCUMENT) if DATA_DOCUMENT in files else "{}"
        )
        try:
            blob = _check_and_compile(modules, data_json, settings, origin=origin)
        except AgentBusError as exc:
            # The frames that raised hold regorus engines; let them die here, on this thread.
            raise detached(exc) from None
        return cls(
            origin=origin,
            files=dict(files),
            modules=modules,
            data_json=data_json,
            decision_rule=settings.decision_rule,
            mode=settings.rego_mode,
            program_blob=blob,
        )

    def new_replica(self) -> PolicyReplica:
        """A fresh engine for the calling thread; never hand it to another thread."""
        if self._program_blob is not None:
            program, _ = regorus.Program.deserialize_binary(self._program_blob)
            return _CompiledReplica(program, self._data_json, self.decision_rule)
        engine = load_interpreter(self._modules, self._data_json, origin=self.origin)
        return _InterpretedReplica(engine, self.decision_rule)

    def evaluate_json(self, input_json: bytes | str) -> PolicyDecision:
        """Decide one input given as JSON.

        Raises:
            PolicyEvaluationError: the engine failed, or its answer broke the contract.
        """
        thread = threading.get_ident()
        if self._owner_thread is None:
            self._owner_thread = thread
        if thread == self._owner_thread:
            if self._owner_replica is None:
                self._owner_replica = self.new_replica()
            return decide(self._owner_replica, input_json, self.decision_rule)
        return decide(self.new_replica(), input_json, self.decision_rule)

    def release(self) -> None:
        """Drop the owner thread's engine, on that thread.

        regorus engines must be freed on the thread that made them; left to the
        cyclic garbage collector they may be freed on whichever thread it runs on.
        Call this from the owner thread when the policy is retired.
        """
        if self._owner_thread == threading.get_ident():
            self._owner_replica = None
            self._owner_thread = None

    def evaluate(self, policy_input: Mapping[str, Any]) -> PolicyDecision:
        """Decide one input document (see ``_input.py`` for its shape)."""
        return self.evaluate_json(canonical_json(policy_input))


def decide(replica: PolicyReplica, input_json: bytes | str, rule: str) -> PolicyDecision:
    """Evaluate ``rule`` on one replica and check the answer against the decision contract.

    Raises:
        PolicyEvaluationError: the engine failed, or its answer broke the contract.
    """
    text = input_json.decode() if isinstance(input_json, bytes) else input_json
    try:
        result = replica.decide(text)
    except RuntimeError as exc:
        raise PolicyEvaluationError(f"{rule} failed: {clean_engine_message(str(exc))}") from None
    return PolicyDecision.from_result(result, source=rule)


def _check_and_compile(
    modules: Mapping[str, str], data_json: str, settings: PolicySettings, *, origin: str
) -> bytes | None:
    """Prove the bundle usable; return the serialized compiled program (compiled mode)."""
    rule = settings.decision_rule
    engine = load_interpreter(modules, data_json, origin=origin)
    check_constitution_errors(engine, settings.constitution_errors_rule, origin=origin)
    probe = canonical_json(PROBE_INPUT).decode()
    reference = _probe(_InterpretedReplica(engine, rule), probe, origin, rule)
    if settings.rego_mode != "compiled":
        return None
    program = _compile(modules, data_json, rule, origin=origin)
    compiled = _probe(_CompiledReplica(program, data_json, rule), probe, origin, rule)
    if compiled != reference:
        raise PolicyLoadError(
            f"the compiled policy decided the probe input as {compiled}, the "
            f"interpreter as {reference}",
            file=origin,
            hint=_INTERPRETED_HINT,
        )
    return bytes(program.serialize_binary())


def load_interpreter(modules: Mapping[str, str], data_json: str, *, origin: str) -> Any:
    """A regorus interpreter holding ``modules`` and the validated data document.

    Raises:
        PolicyLoadError: a module does not parse.
        ConfigurationError: the data document is not a JSON object of the right shape.
    """
    engine = regorus.Engine()
    for rel, text in modules.items():
        try:
            engine.add_policy(rel, text)
        except RuntimeError as exc:
            raise PolicyLoadError.from_engine(
                str(exc), origin=origin, summary="Rego module does not load", default_file=rel
            ) from None
    try:
        document = orjson.loads(data_json)
    except orjson.JSONDecodeError as exc:
        raise ConfigurationError(
            f"{origin}/{DATA_DOCUMENT} is not valid JSON: {exc}. Fix the data document."
        ) from None
    if not isinstance(document, dict):
        raise ConfigurationError(
            f"{origin}/{DATA_DOCUMENT} must hold a JSON object, not {type(document).__name__}."
        )
    validate_data_document(document, origin=f"{origin}/{DATA_DOCUMENT}")
    engine.add_data_json(data_json)
    return engine


def check_constitution_errors(engine: Any, rule: str | None, *, origin: str) -> None:
    """Refuse a bundle whose constitution-errors rule lists problems.

    Raises:
        PolicyLoadError: the rule is not a set of strings, or is not empty.
    """
    if rule is None:
        return
    engine.set_input_json("{}")
    try:
        errors = engine.eval_rule(rule)
    except RuntimeError as exc:
        text = clean_engine_message(str(exc))
        if "not a valid rule path" in text:
            return  # the bundle does not define the rule: nothing to check
        raise PolicyLoadError.from_engine(
            str(exc), origin=origin, summary=f"{rule} failed to evaluate"
        ) from None
    if errors is None:
        return
    if not isinstance(errors, set | list | tuple) or not all(isinstance(e, str) for e in errors):
        raise PolicyLoadError(f"{rule} must be a set of strings, not {errors!r}", file=origin)
    if errors:
        listed = "\n".join(f"  - {error}" for error in sorted(errors))
        raise PolicyLoadError(
            f"the constitution contradicts itself ({rule}):\n{listed}",
            file=f"{origin}/{DATA_DOCUMENT}",
            hint="Fix the data document or the policy.",
        )


def _probe(replica: PolicyReplica, probe: str, origin: str, rule: str) -> PolicyDecision:
    try:
        result = replica.decide(probe)
    except RuntimeError as exc:
        text = clean_engine_message(str(exc))
        if "not a valid rule path" in text or ("Entry point" in text and "not found" in text):
            raise PolicyLoadError(
                f"the bundle defines no decision rule {rule}",
                file=origin,
                hint="Define it, or set decision_rule (AGENTBUS_POLICY__DECISION_RULE).",
            ) from None
        raise PolicyLoadError.from_engine(
            str(exc), origin=origin, summary=f"{rule} fails on a well-formed input"
        ) from None
    try:
        return PolicyDecision.from_result(result, source=rule)
    except PolicyEvaluationError as exc:
        raise PolicyLoadError(
            f"the decision breaks the contract on a well-formed input: {exc}", file=origin
        ) from None


def _compile(modules: Mapping[str, str], data_json: str, rule: str, *, origin: str) -> Any:
    try:
        return regorus.Program.compile_from_modules(data_json, list(modules.items()), [rule])
    except RuntimeError as exc:
        raise PolicyLoadError.from_engine(
            str(exc),
            origin=origin,
            summary="the Rego compiler rejects the policy",
            hint=_INTERPRETED_HINT,
        ) from None


def _decode(content: bytes, origin: str, rel: str) -> str:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyLoadError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=f"{origin}/{rel}"
        ) from None
