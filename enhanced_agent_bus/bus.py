"""AgentBus: lifecycle, registration, and send / request / publish / broadcast."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
import warnings
from collections.abc import Iterable, Sequence
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pydantic import ValidationError

from .background import AuditLog, AuditSink, Metering
from .clock import Clock, SystemClock
from .components import BusComponents
from .constitution import Constitution, HashRotation, load_bundle
from .delivery import Dispatcher
from .errors import (
    BusNotStartedError,
    BusStateError,
    ConfigurationError,
    MessageTimeoutError,
    MessageValidationError,
)
from .mailbox import Mailbox
from .models import (
    AGENT_ID_PATTERN,
    AgentMessage,
    DeadLetter,
    DeliveryResult,
    DeliveryStatus,
    describe_validation_error,
    validate_json_object,
)
from .observability import BusMetrics, MetricsServer
from .observers import BusObserver
from .pipeline import Pipeline
from .registry import AgentRecord, AgentRegistry, Handler, check_identifier, check_topic
from .routing import Router, denial_error
from .settings import BackpressurePolicy, BusSettings
from .tasks import TaskSupervisor
from .timers import TimerWheel

logger = logging.getLogger(__name__)

_AGENT_ID = re.compile(AGENT_ID_PATTERN)


class BusState(StrEnum):
    NEW = "new"
    RUNNING = "running"
    DRAINING = "draining"  # stop() called: in-flight conversations may finish
    STOPPED = "stopped"


def _expire_reply(
    reply: asyncio.Future[AgentMessage], message: AgentMessage, timeout_s: float
) -> None:
    if not reply.done():
        reply.set_exception(
            MessageTimeoutError(message.message_id, message.to_agent or "", timeout_s)
        )


class AgentBus:
    """An in-process message bus whose every message passes the constitution's pipeline.

    Example::

        async with AgentBus() as bus:
            await bus.register_agent("planner", planner, tenant_id="acme", role="planner")
            await bus.register_agent("coder", coder, tenant_id="acme", role="worker")
            message = bus.message("planner", "coder", {"task": "write tests"})
            result = await bus.send_message(message)

    Args:
        settings: a :class:`BusSettings`; None builds one from ``AGENTBUS_*`` variables.
        observers: extra :class:`BusObserver` s that see every decision and dead letter.
        clock: the monotonic clock for hash rotation (tests pass a ``FakeClock``).
        audit_sink: where audit records go, overriding ``settings.audit`` (e.g.
            ``enhanced_agent_bus.testing.InMemoryAuditSink``).
    """

    def __init__(
        self,
        settings: BusSettings | None = None,
        *,
        observers: Sequence[BusObserver] = (),
        clock: Clock | None = None,
        audit_sink: AuditSink | None = None,
    ) -> None:
        self._settings = settings if settings is not None else BusSettings()
        self._clock = clock or SystemClock()
        self._state = BusState.NEW
        self._registry = AgentRegistry()
        self._supervisor = TaskSupervisor()
        self._timers = TimerWheel()
        self._components = BusComponents(
            self._settings, self._supervisor, self._clock, audit_sink=audit_sink
        )
        self._constitution: Constitution = load_bundle(self._settings.constitution_path)
        self._rotation = HashRotation(
            self._constitution.hash, grace_s=self._settings.rotation_grace_s, clock=self._clock
        )
        self._pipeline: Pipeline = self._components.build_pipeline(
            self._constitution, self._rotation
        )
        self._router = Router(
            self._registry,
            self._pipeline,
            (*self._components.observers, *observers),
            self._settings.dead_letter_capacity,
        )
        self._metrics_server: MetricsServer | None = None
        #: The loop the bus runs on, bound by start(): the request path reads it per call.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._components.attach_stats(self.stats)

    # ── lifecycle ────────────────────────────────────────────────────────────

    @property
    def state(self) -> BusState:
        return self._state

    @property
    def settings(self) -> BusSettings:
        return self._settings

    async def start(self) -> None:
        """Start background work; returns once the bus accepts messages.

        Raises:
            BusStateError: the bus was already started (create a new bus instead).
        """
        if self._state is not BusState.NEW:
            raise BusStateError(
                f"AgentBus is {self._state.value}; start() runs once. Create a new AgentBus."
            )
        await self._components.start(self._registry, self._pipeline)
        self._loop = asyncio.get_running_loop()
        self._state = BusState.RUNNING
        if self._settings.observability.metrics_port is not None:
            await self.serve_metrics()
        logger.info(
            "agent bus started (constitution %s)",
            self._constitution.hash[:12],
            extra={"constitutional_hash": self._constitution.hash},
        )

    async def stop(self) -> None:
        """Drain mailboxes, flush background queues, and stop. Idempotent.

        Mailboxes get ``drain_timeout_s`` to empty (handlers may still send while
        draining); whatever is left is dead-lettered, never silently dropped.

        Raises:
            BusStateError: a background task failed while the bus ran (from the cause).
        """
        if self._state is BusState.NEW:
            self._state = BusState.STOPPED
            return
        if self._state is not BusState.RUNNING:
            return
        self._state = BusState.DRAINING
        drained = await self._drain(self._settings.drain_timeout_s)
        self._state = BusState.STOPPED
        workers = []
        for record in self._registry:
            dispatcher = self._dispatcher(record)
            for envelope in record.mailbox.close():
                dispatcher.fail(envelope, "bus stopped before delivery", "drain_timeout", 0)
            if record.mailbox.worker is not None:
                workers.append(record.mailbox.worker)
                record.mailbox.worker.cancel()
        if workers:
            await asyncio.gather(*workers, return_exceptions=True)
        if not drained:
            logger.warning(
                "drain timed out after %ss; undelivered messages dead-lettered",
                self._settings.drain_timeout_s,
            )
        if self._metrics_server is not None:
            await self._metrics_server.aclose()
        await self._components.aclose(self._pipeline)
        await self._supervisor.aclose()
        self._timers.close()
        failure = self._supervisor.failure
        if failure is not None:
            raise BusStateError("a background task of the bus failed; see the cause") from failure

    aclose = stop

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __del__(self) -> None:
        if getattr(self, "_state", None) in (BusState.RUNNING, BusState.DRAINING):
            warnings.warn(
                "AgentBus was started but never stopped; use 'async with AgentBus()' or "
                "'await bus.stop()' so mailboxes drain and audit records flush",
                ResourceWarning,
                stacklevel=2,
            )

    async def _drain(self, timeout_s: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            workers = []
            for record in self._registry:
                record.mailbox.stop_lingering()
                if record.mailbox.worker is not None:
                    workers.append(record.mailbox.worker)
            if not workers:
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.wait(workers, timeout=remaining)

    def _ensure_running(self) -> None:
        if self._state is not BusState.RUNNING and self._state is not BusState.DRAINING:
            raise BusNotStartedError(self._state.value)
        failure = self._supervisor.failure
        if failure is not None:
            raise BusStateError(
                "a background task of the bus failed; stop this bus and start a new one"
            ) from failure

    # ── constitution ─────────────────────────────────────────────────────────

    @property
    def constitutional_hash(self) -> str:
        """SHA-256 of the active constitution bundle's canonical content."""
        return self._constitution.hash

    @property
    def constitution(self) -> Constitution:
        return self._constitution

    @property
    def pipeline_stages(self) -> tuple[str, ...]:
        """Names of the validation stages, in the order they run."""
        return self._pipeline.names

    async def load_constitution(self, path: str | Path) -> str:
        """Load a bundle and swap it in atomically; returns the new constitutional hash.

        The previous hash stays accepted for ``rotation_grace_s``. If the bundle
        fails to load or compile, the bus keeps its current constitution.

        Raises:
            ConfigurationError: the bundle is missing, unreadable or invalid.
        """
        constitution = await asyncio.to_thread(load_bundle, path)
        pipeline = await asyncio.to_thread(
            self._components.build_pipeline, constitution, self._rotation
        )
        running = self._state is BusState.RUNNING
        if running:
            await self._components.activate(pipeline, self._registry)
        previous, retired = self._constitution, self._pipeline
        # One synchronous step: no message ever sees the new pipeline with the old hash.
        self._constitution, self._pipeline = constitution, pipeline
        self._router.pipeline = pipeline
        if constitution.hash != previous.hash:
            self._rotation.rotate(constitution.hash)
        if running:
            await self._components.retire(retired)
        logger.info(
            "constitution %s loaded from %s (previous %s accepted for %ss)",
            constitution.hash[:12],
            constitution.path,
            previous.hash[:12],
            self._settings.rotation_grace_s,
        )
        return constitution.hash

    # ── observability ────────────────────────────────────────────────────────

    async def serve_metrics(
        self, port: int | None = None, host: str | None = None
    ) -> MetricsServer:
        """Serve ``/metrics``, ``/healthz`` and ``/readyz`` until the bus stops.

        ``port`` and ``host`` default to ``observability.metrics_port`` (else 0, a free
        port: read it from the returned server's ``.port``) and ``.metrics_host``.
        With ``observability.metrics_port`` set, ``start()`` calls this itself.

        Raises:
            ConfigurationError: metrics are disabled, or the port is taken.
            BusStateError: a server is already running for this bus.
        """
        metrics = self._components.metrics
        if metrics is None:
            raise ConfigurationError(
                "metrics are disabled (observability.metrics_enabled=False); enable them "
                "to serve /metrics"
            )
        if self._metrics_server is not None:
            raise BusStateError(
                f"this bus already serves metrics on port {self._metrics_server.port}"
            )
        observability = self._settings.observability
        server = MetricsServer(
            metrics,
            self._components.health,
            host=host if host is not None else observability.metrics_host,
            port=port if port is not None else (observability.metrics_port or 0),
        )
        await server.start()
        self._metrics_server = server
        return server

    @property
    def audit(self) -> AuditLog | None:
        """The audit log (None when disabled)."""
        return self._components.audit

    @property
    def metering(self) -> Metering | None:
        """Per-tenant usage totals: ``bus.metering.snapshot()`` (None when disabled)."""
        return self._components.metering

    @property
    def metrics_server(self) -> MetricsServer | None:
        """The running ``/metrics`` server, if any."""
        return self._metrics_server

    @property
    def metrics(self) -> BusMetrics | None:
        """The bus's Prometheus metrics (None when disabled)."""
        return self._components.metrics

    # ── registry ─────────────────────────────────────────────────────────────

    async def register_agent(
        self,
        agent_id: str,
        handler: Handler,
        *,
        tenant_id: str,
        role: str = "worker",
        capabilities: Iterable[str] = (),
        mailbox_size: int | None = None,
        backpressure: BackpressurePolicy | None = None,
    ) -> None:
        """Register an agent: ``async def handler(message, context) -> dict | None``.

        Raises:
            DuplicateAgentError: ``agent_id`` is taken.
            MessageValidationError: an id is malformed.
            ConfigurationError: ``handler`` is not an async function, or a bad mailbox option.
        """
        check_identifier(agent_id, "agent_id")
        check_identifier(tenant_id, "tenant_id")
        check_identifier(role, "role")
        if not (
            inspect.iscoroutinefunction(handler)
            or inspect.iscoroutinefunction(getattr(handler, "__call__", None))  # noqa: B004
        ):
            raise ConfigurationError(
                f"handler for agent {agent_id!r} must be an async function "
                f"'async def handler(message, context)', not {handler!r}"
            )
        defaults = self._settings.mailbox
        if mailbox_size is not None and mailbox_size < 1:
            raise ConfigurationError(f"mailbox_size={mailbox_size!r} must be at least 1")
        if backpressure is not None and backpressure not in ("wait", "reject", "drop_oldest"):
            raise ConfigurationError(
                f"backpressure={backpressure!r} must be 'wait', 'reject' or 'drop_oldest'"
            )
        record = AgentRecord(
            agent_id=agent_id,
            tenant_id=tenant_id,
            role=role,
            capabilities=frozenset(capabilities),
            handler=handler,
            mailbox=None,  # type: ignore[arg-type]  # set below: the mailbox needs the record
        )
        dispatcher = self._dispatcher(record)
        record.mailbox = Mailbox(
            agent_id,
            maxsize=mailbox_size or defaults.maxsize,
            backpressure=backpressure or defaults.backpressure,
            put_timeout_s=defaults.put_timeout_s,
            idle_linger_s=defaults.idle_linger_s,
            deliver=dispatcher.deliver,
            spawn=self._spawn,
            on_drop=lambda envelope: dispatcher.fail(
                envelope, "dropped to make room for a newer event", "dropped_oldest", 0
            ),
            timers=self._timers,
        )
        self._registry.add(record)

    async def unregister_agent(self, agent_id: str) -> None:
        """Remove an agent; messages still queued for it are dead-lettered.

        Raises:
            AgentNotRegisteredError: no such agent.
        """
        record = self._registry.remove(agent_id)
        dispatcher = self._dispatcher(record)
        for envelope in record.mailbox.close():
            dispatcher.fail(envelope, f"agent {agent_id!r} was unregistered", "unregistered", 0)

    async def subscribe(self, agent_id: str, topic: str) -> None:
        """Subscribe a registered agent to ``topic`` (it gets its own tenant's messages only)."""
        self._registry.subscribe(agent_id, topic)

    async def unsubscribe(self, agent_id: str, topic: str) -> None:
        self._registry.unsubscribe(agent_id, topic)

    def agents(self) -> list[AgentRecord]:
        """Every registered agent."""
        return list(self._registry)

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[None]:
        return self._supervisor.spawn(coro, name=name)

    def _dispatcher(self, record: AgentRecord) -> Dispatcher:
        return Dispatcher(
            self,
            record,
            self._settings,
            self._router.dead_letters.add,
            self._rotation,
            self._timers,
        )

    # ── building messages ────────────────────────────────────────────────────

    def message(
        self,
        from_agent: str,
        to_agent: str | None = None,
        payload: dict[str, Any] | None = None,
        **fields: Any,
    ) -> AgentMessage:
        """Build a message from a registered agent, filling its tenant and the active hash.

        Raises:
            AgentNotRegisteredError: ``from_agent`` is not registered.
            MessageValidationError: a field or the payload is invalid.
        """
        sender = self._registry.get(from_agent)
        if not fields and (to_agent is None or _AGENT_ID.match(to_agent)):
            try:
                checked, size = validate_json_object(payload)
            except ValueError as exc:
                raise MessageValidationError(str(exc)) from None
            return AgentMessage.from_trusted_fields(
                from_agent, to_agent, sender.tenant_id, checked, size, self._constitution.hash
            )
        fields.setdefault("tenant_id", sender.tenant_id)
        fields.setdefault("constitutional_hash", self._constitution.hash)
        try:
            return AgentMessage(
                from_agent=from_agent, to_agent=to_agent, payload=payload or {}, **fields
            )
        except ValidationError as exc:
            raise MessageValidationError(describe_validation_error(exc)) from None

    # ── sending ──────────────────────────────────────────────────────────────

    async def send_message(self, message: AgentMessage) -> DeliveryResult:
        """Validate ``message`` and queue it for ``message.to_agent``.

        A denial is a normal result (``status == DENIED`` with reasons), not an exception.

        Raises:
            BusNotStartedError: the bus is not running.
            MessageValidationError: the message has no ``to_agent`` (use publish/broadcast).
        """
        self._ensure_running()
        started = time.perf_counter_ns()
        if message.to_agent is None:
            raise MessageValidationError(
                f"message {message.message_id!r} has no to_agent; set it, or use "
                "bus.publish(topic, message) / bus.broadcast(message)"
            )
        result = self._router.send_to(message, message.to_agent, None, started)
        if isinstance(result, DeliveryResult):
            return result
        return await result

    async def request(self, message: AgentMessage, timeout: float | None = None) -> AgentMessage:
        """Send ``message`` and wait for the handler's reply (a RESPONSE message).

        Raises:
            MessageDeniedError: the pipeline denied the message (or a subclass:
                ConstitutionalHashMismatchError, TenantIsolationError, BackpressureError).
            AgentNotRegisteredError: the sender or recipient is unknown.
            MessageTimeoutError: no reply within ``timeout`` (default ``request_timeout_s``).
            DeliveryFailedError: the handler failed on every attempt.
            MessageValidationError: no ``to_agent``, or the handler's reply is not a JSON object.
        """
        loop = self._loop
        if (
            loop is None
            or self._state is not BusState.RUNNING
            or self._supervisor.failure is not None
        ):
            self._ensure_running()  # raises unless draining
            loop = asyncio.get_running_loop()
        started = time.perf_counter_ns()
        to_agent = message.to_agent
        if to_agent is None:
            raise MessageValidationError(
                f"request() needs a recipient: message {message.message_id!r} has no to_agent"
            )
        reply: asyncio.Future[AgentMessage] = loop.create_future()
        result = self._router.send_to(message, to_agent, reply, started)
        if not isinstance(result, DeliveryResult):
            result = await result
        if result.status is not DeliveryStatus.DELIVERED:
            raise denial_error(result, message)
        timeout_s = timeout if timeout is not None else self._settings.request_timeout_s
        expiry = self._timers.schedule(timeout_s, _expire_reply, reply, message, timeout_s)
        try:
            return await reply
        finally:
            self._timers.cancel(expiry)

    async def publish(self, topic: str, message: AgentMessage) -> list[DeliveryResult]:
        """Deliver ``message`` to every subscriber of ``topic`` in the sender's tenant.

        Returns one result per subscriber (the publisher itself is skipped); with no
        subscriber, a single DEAD_LETTERED result (code ``no_subscribers``).
        """
        self._ensure_running()
        started = time.perf_counter_ns()
        check_topic(topic)
        if message.to_agent is not None:
            raise MessageValidationError(
                f"message {message.message_id!r} for topic {topic!r} has to_agent="
                f"{message.to_agent!r}; topic messages have no direct recipient"
            )
        if message.topic is None:
            message = message.model_copy(update={"topic": topic})
        elif message.topic != topic:
            raise MessageValidationError(
                f"message topic {message.topic!r} does not match publish topic {topic!r}"
            )
        sender = self._registry.find(message.from_agent)
        if sender is None:
            return [
                self._router.unknown_agent(message, message.from_agent, "unknown_sender", started)
            ]
        recipients = [
            r
            for r in self._registry.subscribers(topic)
            if r.tenant_id == sender.tenant_id and r is not sender
        ]
        return await self._router.fan_out(message, sender, recipients, "no_subscribers", started)

    async def broadcast(self, message: AgentMessage) -> list[DeliveryResult]:
        """Deliver ``message`` to every other agent of the sender's tenant (never beyond it)."""
        self._ensure_running()
        started = time.perf_counter_ns()
        if message.to_agent is not None:
            raise MessageValidationError(
                f"broadcast message {message.message_id!r} has to_agent={message.to_agent!r}; "
                "use send_message for one recipient"
            )
        sender = self._registry.find(message.from_agent)
        if sender is None:
            return [
                self._router.unknown_agent(message, message.from_agent, "unknown_sender", started)
            ]
        recipients = [r for r in self._registry.tenant_members(sender.tenant_id) if r is not sender]
        return await self._router.fan_out(message, sender, recipients, "no_recipients", started)

    # ── introspection ────────────────────────────────────────────────────────

    def dead_letters(self) -> list[DeadLetter]:
        """Messages accepted but not delivered, oldest first, with their causes."""
        return self._router.dead_letters.snapshot()

    def stats(self) -> dict[str, dict[str, float | int | str]]:
        """Counters per component, cheap to read (the metrics exporter scrapes this)."""
        mailboxes = [r.mailbox for r in self._registry]
        dead_letters = self._router.dead_letters
        bus: dict[str, float | int | str] = {
            "state": self._state.value,
            "constitutional_hash": self._constitution.hash,
            "agents": len(mailboxes),
            **self._router.counts(),
            "dead_lettered_total": dead_letters.total,
            "dead_letters_stored": len(dead_letters),
            "dead_letters_evicted_total": dead_letters.evicted_total,
            "backpressure_rejections_total": sum(m.rejected_total for m in mailboxes),
            "backpressure_drops_total": sum(m.dropped_total for m in mailboxes),
            "mailbox_depth": sum(len(m) for m in mailboxes),
            "active_workers": sum(1 for m in mailboxes if m.worker is not None),
            "observer_errors_total": self._router.observer_errors_total,
            "task_failures_total": self._supervisor.failures_total,
        }
        out: dict[str, dict[str, float | int | str]] = {
            "bus": bus,
            "denied_by_code": dict(self._router.denied_by_code),
            "dead_letters_by_code": dict(dead_letters.by_code),
        }
        out.update(self._components.stats())
        return out
