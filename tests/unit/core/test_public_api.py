import enhanced_agent_bus

EXPECTED = [
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


def test_all_is_pinned_and_sorted() -> None:
    assert enhanced_agent_bus.__all__ == EXPECTED
    assert sorted(enhanced_agent_bus.__all__) == enhanced_agent_bus.__all__


def test_every_exported_name_exists() -> None:
    for name in enhanced_agent_bus.__all__:
        assert getattr(enhanced_agent_bus, name) is not None


def test_errors_share_one_root() -> None:
    from enhanced_agent_bus import errors

    for name in dir(errors):
        obj = getattr(errors, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, Exception)
            and obj.__module__ == errors.__name__
        ):
            assert issubclass(obj, enhanced_agent_bus.AgentBusError), name
