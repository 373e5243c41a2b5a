"""enhanced-agent-bus: an in-process message bus for AI agents with constitutional validation."""

from .bus import AgentBus, BusState
from .constitution import Constitution, load_bundle
from .context import AgentContext
from .errors import (
    AgentBusError,
    AgentNotRegisteredError,
    BackendUnavailableError,
    BackpressureError,
    BusNotStartedError,
    BusStateError,
    ConfigurationError,
    ConstitutionalHashMismatchError,
    DeliveryFailedError,
    DuplicateAgentError,
    MessageDeniedError,
    MessageTimeoutError,
    MessageValidationError,
    TenantIsolationError,
)
from .models import (
    AgentMessage,
    DeadLetter,
    DeliveryResult,
    DeliveryStatus,
    MessageType,
    Priority,
    Reason,
)
from .observers import BusObserver
from .settings import BusSettings, MailboxSettings, RetrySettings

__version__ = "0.1.0"

__all__ = [
    "AgentBus",
    "AgentBusError",
    "AgentContext",
    "AgentMessage",
    "AgentNotRegisteredError",
    "BackendUnavailableError",
    "BackpressureError",
    "BusNotStartedError",
    "BusObserver",
    "BusSettings",
    "BusState",
    "BusStateError",
    "ConfigurationError",
    "Constitution",
    "ConstitutionalHashMismatchError",
    "DeadLetter",
    "DeliveryFailedError",
    "DeliveryResult",
    "DeliveryStatus",
    "DuplicateAgentError",
    "MailboxSettings",
    "MessageDeniedError",
    "MessageTimeoutError",
    "MessageType",
    "MessageValidationError",
    "Priority",
    "Reason",
    "RetrySettings",
    "TenantIsolationError",
    "__version__",
    "load_bundle",
]
