"""Structured logging: a JSON formatter, a redaction filter, and the CLI's setup function.

The library only *emits* records (``logging.getLogger(__name__)``, lazy ``%s``
arguments, structured fields in ``extra=``); it never configures handlers. The
``agent-bus`` CLI calls :func:`configure_logging` once.

Redaction happens twice, because a record can reach a handler that lacks the
filter: :class:`RedactionFilter` cleans the record itself, and both formatters
here clean what they render. Cleaning means:

* an extra field named ``payload`` (or any name in ``DROPPED_FIELDS``) is dropped;
* an extra field, or a key of a dict inside one, whose name looks secret
  (token, secret, password, api key, authorization, cookie, credential, private key)
  is replaced by ``"[REDACTED]"``;
* an :class:`~enhanced_agent_bus.AgentMessage` passed as a log argument or
  field is rendered as its ids and sizes (:func:`message_log_fields`), never
  with its payload.

Example::

    logger.debug("rejected %s at %s", message.message_id, stage,
                 extra={**message_log_fields(message), "stage": stage, "code": code})
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum
from pathlib import PurePath
from typing import IO, Any, Final
from uuid import UUID

import orjson

from ..models import AgentMessage

DEFAULT_SECRET_PATTERN: Final = re.compile(
    r"token|secret|passw(or)?d|api[_-]?key|authorization|cookie|credential|private[_-]?key",
    re.IGNORECASE,
)
DROPPED_FIELDS: Final = frozenset({"payload"})
REDACTED: Final = "[REDACTED]"
_MAX_DEPTH: Final = 6

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS: Final = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}
_HANDLER_MARK: Final = "_agentbus_configured"


def message_log_fields(message: AgentMessage) -> dict[str, str | int]:
    """The fields that identify a message in a log line (ids, type, size; never the payload)."""
    fields: dict[str, str | int] = {
        "message_id": message.message_id,
        "tenant_id": message.tenant_id,
        "from_agent": message.from_agent,
        "message_type": message.message_type.value,
        "payload_bytes": message.payload_size_bytes,
    }
    if message.to_agent is not None:
        fields["to_agent"] = message.to_agent
    if message.topic is not None:
        fields["topic"] = message.topic
    if message.correlation_id is not None:
        fields["correlation_id"] = message.correlation_id
    return fields


def redact(value: object, pattern: re.Pattern[str] = DEFAULT_SECRET_PATTERN) -> object:
    """A copy of ``value`` with payloads dropped and secret-looking keys redacted."""
    return _redact(value, pattern, 0)


def _redact(value: object, pattern: re.Pattern[str], depth: int) -> object:
    if isinstance(value, AgentMessage):
        return message_log_fields(value)
    if depth >= _MAX_DEPTH:
        return value if isinstance(value, str | int | float | bool | None) else "[...]"
    if isinstance(value, Mapping):
        out: dict[str, object] = {}
        for key, item in value.items():
            name = str(key)
            if name in DROPPED_FIELDS:
                continue
            out[name] = REDACTED if pattern.search(name) else _redact(item, pattern, depth + 1)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(item, pattern, depth + 1) for item in value]
    return value


def _safe_args(args: object, pattern: re.Pattern[str]) -> Any:
    if isinstance(args, Mapping):
        return redact(args, pattern)
    if isinstance(args, tuple):
        return tuple(
            arg.message_id
            if isinstance(arg, AgentMessage)
            else (redact(arg, pattern) if isinstance(arg, Mapping) else arg)
            for arg in args
        )
    return args


def _safe_message(record: logging.LogRecord, pattern: re.Pattern[str]) -> str:
    msg = record.msg
    if isinstance(msg, AgentMessage):
        msg = f"message {msg.message_id}"
    text = str(msg)
    if record.args:
        try:
            text = text % _safe_args(record.args, pattern)
        except (TypeError, ValueError, KeyError):
            text = f"{text} (unformattable arguments)"
    return text


def _extra_fields(record: logging.LogRecord, pattern: re.Pattern[str]) -> dict[str, object]:
    fields: dict[str, object] = {}
    for key, value in record.__dict__.items():
        if key in _RECORD_ATTRS or key.startswith("_") or key in DROPPED_FIELDS:
            continue
        fields[key] = REDACTED if pattern.search(key) else _redact(value, pattern, 0)
    return fields


def _json_default(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID | PurePath):
        return str(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    # Unknown objects are named, not rendered: their repr could hold secrets or payloads.
    return f"<{type(value).__name__}>"


class RedactionFilter(logging.Filter):
    """Drops payload fields and redacts secret-looking fields on every record it sees.

    Attach it to handlers (``configure_logging`` does). It mutates the record,
    so every later handler sees the cleaned version too.
    """

    def __init__(self, pattern: re.Pattern[str] = DEFAULT_SECRET_PATTERN) -> None:
        super().__init__()
        self._pattern = pattern

    def filter(self, record: logging.LogRecord) -> bool:
        for key in [k for k in record.__dict__ if k not in _RECORD_ATTRS]:
            if key in DROPPED_FIELDS:
                delattr(record, key)
            elif self._pattern.search(key):
                setattr(record, key, REDACTED)
            else:
                setattr(record, key, redact(getattr(record, key), self._pattern))
        if isinstance(record.msg, AgentMessage):
            record.msg = f"message {record.msg.message_id}"
        if record.args:
            record.args = _safe_args(record.args, self._pattern)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, then extras.

    Extras are the structured fields passed with ``extra=`` (``message_id``,
    ``tenant_id``, ``stage``, ``code``, ``agent_id``, ...), cleaned as the module
    docstring describes. Exceptions add ``exc_type`` and ``exc`` (the traceback).
    """

    def __init__(self, pattern: re.Pattern[str] = DEFAULT_SECRET_PATTERN) -> None:
        super().__init__()
        self._pattern = pattern

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": _safe_message(record, self._pattern),
        }
        for key, value in _extra_fields(record, self._pattern).items():
            entry[key if key not in entry else f"extra_{key}"] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(
            entry, default=_json_default, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
        ).decode()


class KeyValueFormatter(logging.Formatter):
    """Human-readable lines with the structured fields appended as ``key=value``."""

    def __init__(self, pattern: re.Pattern[str] = DEFAULT_SECRET_PATTERN) -> None:
        super().__init__()
        self._pattern = pattern

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        parts = [when, record.levelname, record.name, _safe_message(record, self._pattern)]
        for key, value in _extra_fields(record, self._pattern).items():
            text = value if isinstance(value, str) else orjson.dumps(value, default=_json_default)
            parts.append(f"{key}={text.decode() if isinstance(text, bytes) else text}")
        line = " ".join(parts)
        if record.exc_info and record.exc_info[0] is not None:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def configure_logging(
    level: int | str = "INFO",
    *,
    json: bool = False,
    stream: IO[str] | None = None,
    pattern: re.Pattern[str] = DEFAULT_SECRET_PATTERN,
) -> logging.Handler:
    """Install one redacting handler on the root logger (for the CLI; libraries must not).

    Calling it again replaces the handler it installed before, so it is safe to
    call per command.

    Args:
        level: root level (``"DEBUG"``, ``logging.INFO``, ...).
        json: one JSON object per line (:class:`JsonFormatter`) instead of key=value text.
        stream: where to write; defaults to stderr.

    Raises:
        ValueError: for an unknown level name.
    """
    if isinstance(level, str):
        numeric = logging.getLevelName(level.upper())
        if not isinstance(numeric, int):
            raise ValueError(
                f"log level {level!r} is unknown; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
            )
        level = numeric
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
            handler.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(pattern) if json else KeyValueFormatter(pattern))
    handler.addFilter(RedactionFilter(pattern))
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
