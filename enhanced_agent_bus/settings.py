"""The one settings object: constructor arguments, then ``AGENTBUS_*`` environment variables.

Built once at the edge (the CLI or the host application) and passed down.
Nothing else in the package reads ``os.environ``. Defaults run with no servers.

Example::

    settings = BusSettings(max_payload_bytes=128 * 1024, mailbox=MailboxSettings(maxsize=5000))
    # or: AGENTBUS_MAILBOX__MAXSIZE=5000 AGENTBUS_HANDLER_TIMEOUT_S=10 agent-bus demo
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .background._settings import AuditSettings, MeteringSettings
from .cache._settings import CacheSettings
from .constraints._settings import ConstraintSettings
from .observability._settings import ObservabilitySettings
from .policy._settings import PolicySettings

BackpressurePolicy = Literal["wait", "reject", "drop_oldest"]


class MailboxSettings(BaseModel):
    """Per-agent mailbox defaults (an agent may override them at registration)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    maxsize: int = Field(1_000, ge=1, le=10_000_000)
    backpressure: BackpressurePolicy = "wait"
    #: How long a sender waits for room under ``backpressure="wait"`` before the send is denied.
    put_timeout_s: float = Field(1.0, gt=0, le=3600)
    #: How long an idle worker waits for the next message before it exits (so idle agents
    #: own no task).
    idle_linger_s: float = Field(0.05, ge=0, le=60)


class RetrySettings(BaseModel):
    """Handler retries: attempt ``1 + max_retries`` times, backing off exponentially."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_retries: int = Field(2, ge=0, le=100)
    backoff_initial_s: float = Field(0.01, ge=0, le=60)
    backoff_max_s: float = Field(1.0, ge=0, le=600)
    backoff_multiplier: float = Field(2.0, ge=1, le=10)

    def delay_s(self, attempt: int) -> float:
        """Backoff before retry number ``attempt`` (1-based)."""
        return float(
            min(
                self.backoff_max_s,
                self.backoff_initial_s * self.backoff_multiplier ** (attempt - 1),
            )
        )


class BusSettings(BaseSettings):
    """Every setting of an :class:`~enhanced_agent_bus.AgentBus`."""

    model_config = SettingsConfigDict(
        env_prefix="AGENTBUS_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        validate_default=True,
        # Settings hold secrets (Redis URLs, HMAC keys): never echo inputs in errors.
        hide_input_in_errors=True,
    )

    #: Largest payload accepted, measured on its orjson encoding.
    max_payload_bytes: int = Field(64 * 1024, ge=64, le=64 * 1024 * 1024)
    mailbox: MailboxSettings = MailboxSettings()
    retry: RetrySettings = RetrySettings()
    #: A handler that runs longer is cancelled and retried (None: no limit).
    handler_timeout_s: float | None = Field(30.0, gt=0, le=86_400)
    #: Default timeout of ``request()``.
    request_timeout_s: float = Field(30.0, gt=0, le=86_400)
    #: ``stop()`` waits this long for mailboxes to drain, then dead-letters the rest.
    drain_timeout_s: float = Field(10.0, ge=0, le=3600)
    #: After ``load_constitution`` the previous hash stays accepted this long.
    rotation_grace_s: float = Field(300.0, ge=0, le=7 * 86_400)
    #: Constitution bundle directory; None uses the one shipped inside the package.
    constitution_path: Path | None = None
    #: Dead letters kept in memory (oldest evicted first, and counted).
    dead_letter_capacity: int = Field(10_000, ge=1, le=10_000_000)
    #: The Rego policy stage: engine, executor, remote OPA.
    policy: PolicySettings = PolicySettings()
    #: Formal constraints on message values: compiled evaluator or Z3.
    constraints: ConstraintSettings = ConstraintSettings()
    #: The decision cache: L1 in-process, optional L2 Redis.
    cache: CacheSettings = CacheSettings()
    #: The hash-chained audit log of every decision (SQLite file by default).
    audit: AuditSettings = AuditSettings()
    #: Per-tenant usage totals (messages, payload bytes).
    metering: MeteringSettings = MeteringSettings()
    #: Prometheus metrics, the /metrics endpoint, logging format.
    observability: ObservabilitySettings = ObservabilitySettings()
