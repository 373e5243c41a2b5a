"""Errors of the policy subsystem, each a subclass of the bus's own hierarchy.

::

    ConfigurationError (ValueError)
      └─ PolicyLoadError                 a Rego module or the data document does not load
    AgentBusError
      └─ PolicyEvaluationError           the engine failed on an input or broke the contract
    BackendUnavailableError
      └─ PolicyEngineUnavailableError    remote OPA or the executor pool cannot answer

The policy stage turns the last two into a ``policy_error`` denial (fail closed);
they never escape ``send_message``.
"""

from __future__ import annotations

import re
from typing import Final, TypeVar

from ..errors import AgentBusError, BackendUnavailableError, ConfigurationError

E = TypeVar("E", bound=BaseException)

# regorus reports "--> file:line:col", a source excerpt with a caret, then "error: ...".
_LOCATION: Final = re.compile(r"-->\s*(?P<file>[^\n]+?):(?P<line>\d+):(?P<column>\d+)")
_MESSAGE: Final = re.compile(r"^error:\s*(?P<message>.+)$", re.MULTILINE)
# The Rust backtrace regorus appends says nothing about the policy.
_BACKTRACE_MARKERS: Final = ("\nStack backtrace:", "\nCaused by:")


def clean_engine_message(raw: str) -> str:
    """The engine's message without the Rust backtrace and the redundant cause chain."""
    text = raw
    for marker in _BACKTRACE_MARKERS:
        cut = text.find(marker)
        if cut >= 0:
            text = text[:cut]
    return text.strip("\n").rstrip()


def detached(exc: E) -> E:
    """``exc`` without its traceback and context.

    regorus objects may only be dropped on the thread that made them. A
    traceback keeps the frames - and so the engines in their locals - alive for
    as long as the exception lives, possibly until another thread frees it.
    Errors that leave the code holding engines are detached first.
    """
    exc.__traceback__ = None
    exc.__context__ = None
    exc.__cause__ = None
    return exc


class PolicyLoadError(ConfigurationError):
    """A Rego module, the data document or the decision rule of a bundle does not load.

    ``file``, ``line`` and ``column`` locate the problem when the engine gave a
    location; ``engine_message`` is the engine's one-line diagnosis.
    """

    def __init__(
        self,
        summary: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        engine_message: str = "",
        excerpt: str = "",
        hint: str = "",
    ) -> None:
        where = file or "<bundle>"
        if line is not None:
            where = f"{where}:{line}" + (f":{column}" if column is not None else "")
        text = f"{where}: {summary}"
        if engine_message and engine_message not in summary:
            text = f"{text}: {engine_message}"
        if excerpt:
            text = f"{text}\n{excerpt}"
        if hint:
            text = f"{text}\n{hint}"
        super().__init__(text)
        self.file = file
        self.line = line
        self.column = column
        self.engine_message = engine_message

    @classmethod
    def from_engine(
        cls, raw: str, *, origin: str, summary: str, default_file: str | None = None, hint: str = ""
    ) -> PolicyLoadError:
        """Build the error from a regorus message, locating it inside the bundle at ``origin``."""
        text = clean_engine_message(raw)
        location = _LOCATION.search(text)
        message = _MESSAGE.search(text)
        engine_message = message.group("message").strip() if message else text.splitlines()[-1]
        rel = location.group("file") if location else default_file
        file = f"{origin.rstrip('/')}/{rel}" if rel else None
        excerpt = ""
        if location:
            excerpt_lines = text[location.end() :].splitlines()
            excerpt = "\n".join(
                line for line in excerpt_lines if line.strip() and not line.startswith("error:")
            )
        return cls(
            summary,
            file=file,
            line=int(location.group("line")) if location else None,
            column=int(location.group("column")) if location else None,
            engine_message=engine_message,
            excerpt=excerpt,
            hint=hint,
        )


class PolicyEvaluationError(AgentBusError):
    """The policy engine failed on one input, or its answer broke the decision contract."""


class PolicyEngineUnavailableError(BackendUnavailableError):
    """The policy backend (remote OPA, the executor pool) could not answer."""
