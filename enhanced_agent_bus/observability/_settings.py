"""Observability settings (mounted as ``BusSettings.observability``).

Example::

    ObservabilitySettings(tenant_labels="allow_list", tenant_label_allow_list={"acme", "globex"})
    # or: AGENTBUS_OBSERVABILITY__TENANT_LABELS=all AGENTBUS_OBSERVABILITY__METRICS_PORT=9464
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: What the ``tenant`` label of the cost-attribution families holds: ``"off"`` folds every
#: tenant into ``_all``, ``"all"`` labels each tenant (up to ``max_tenant_label_values``, then
#: ``_other``), a frozenset labels only the tenants it names (the rest are ``_other``).
TenantLabelPolicy = Literal["off", "all"] | frozenset[str]


class ObservabilitySettings(BaseModel):
    """Metrics, endpoint and logging settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Attach the Prometheus metrics observer to the bus.
    metrics_enabled: bool = True
    #: Serve /metrics, /healthz and /readyz on this port when set (0 picks a free port).
    metrics_port: int | None = Field(None, ge=0, le=65_535)
    #: Interface for the metrics server. Keep the loopback default unless a scraper elsewhere
    #: needs it: /metrics reveals traffic volumes per tenant when tenant labels are on.
    metrics_host: str = Field("127.0.0.1", min_length=1, max_length=255)
    #: Register on prometheus_client's process-wide REGISTRY instead of a registry owned by the
    #: bus. Only one bus per process may do this (their families would collide).
    use_process_registry: bool = False
    #: ``off`` (default), ``all`` or ``allow_list`` (then ``tenant_label_allow_list`` is used).
    tenant_labels: Literal["off", "all", "allow_list"] = "off"
    tenant_label_allow_list: frozenset[str] = frozenset()
    #: Under ``tenant_labels="all"``, tenants beyond this many distinct values become ``_other``.
    max_tenant_label_values: int = Field(100, ge=1, le=10_000)
    #: Bound on distinct label combinations of one hot-path family (the excess is ``_other``).
    max_series_per_family: int = Field(2_000, ge=16, le=100_000)
    #: Time the pipeline stages of one message in this many (1 = every message). Stage
    #: timing costs two clock reads and an observation per stage, so it is sampled.
    stage_timing_sample_every: int = Field(16, ge=1, le=1_000_000)
    #: Log format the CLI configures (the library itself never configures logging).
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @model_validator(mode="after")
    def _allow_list_matches_mode(self) -> ObservabilitySettings:
        if self.tenant_labels == "allow_list" and not self.tenant_label_allow_list:
            raise ValueError(
                "tenant_labels='allow_list' needs tenant ids in tenant_label_allow_list "
                "(AGENTBUS_OBSERVABILITY__TENANT_LABEL_ALLOW_LIST='[\"acme\"]'), "
                "or use tenant_labels='off' / 'all'."
            )
        if self.tenant_labels != "allow_list" and self.tenant_label_allow_list:
            raise ValueError(
                f"tenant_label_allow_list is set but tenant_labels is {self.tenant_labels!r}; "
                "set tenant_labels='allow_list' to use the list, or remove the list."
            )
        return self

    def tenant_label_policy(self) -> TenantLabelPolicy:
        """The policy in the form :class:`BusMetrics` takes."""
        if self.tenant_labels == "allow_list":
            return self.tenant_label_allow_list
        return self.tenant_labels
