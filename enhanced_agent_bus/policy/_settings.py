"""Settings of the policy subsystem (mounted as ``BusSettings.policy``).

Environment variables use the bus prefix and ``__`` nesting, e.g.
``AGENTBUS_POLICY__BACKEND=opa AGENTBUS_POLICY__OPA_URL=http://127.0.0.1:8181``.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, model_validator

RULE_PATTERN: Final = r"^data(\.[A-Za-z_][A-Za-z0-9_]*)+$"
RulePath = Annotated[str, StringConstraints(pattern=RULE_PATTERN, max_length=512)]


class PolicySettings(BaseModel):
    """How the bus evaluates the constitution's Rego policy.

    Which executor (measured on this 2-core machine, see ``benchmarks/bench_policy.py``):

    * ``inline`` (default): the embedded engine runs on the event loop. A decision
      costs tens of µs and the Rego engine holds the GIL, so a thread hop (50-130
      µs) would cost more than it saves; cache hits never reach the engine anyway.
    * ``thread``: for completeness, and for engines that release the GIL. It
      keeps the loop responsive only in the sense that other tasks interleave
      between decisions; the decisions themselves still serialize on the GIL.
    * ``process``: a pool of engine replicas loaded from the same bundle, inputs
      and decisions passed as JSON. Worth it only when policies are expensive
      (hundreds of µs and up) and the host has spare cores.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: "embedded": regorus in this process; "opa": a remote OPA server over its REST Data API.
    backend: Literal["embedded", "opa"] = "embedded"
    #: The rule whose value is {"allow": bool, "deny": set of strings}.
    decision_rule: RulePath = "data.agentbus.authz.decision"
    #: A set rule listing problems of the constitution itself (checked once at load;
    #: a non-empty set refuses the bundle). None, or a rule the bundle lacks, skips it.
    constitution_errors_rule: RulePath | None = "data.agentbus.authz.constitution_errors"

    #: Embedded engine: "compiled" runs regorus's compiled program (RVM, ~5x faster than
    #: the interpreter on the default constitution); "interpreted" runs its tree-walking
    #: interpreter, for policies the compiler does not support yet.
    rego_mode: Literal["compiled", "interpreted"] = "compiled"
    executor: Literal["inline", "thread", "process"] = "inline"
    #: Threads or processes for executor="thread" / "process".
    executor_workers: int = Field(2, ge=1, le=256)
    #: Evaluations waiting for a thread/process worker; more wait (bounded by eval_timeout_s).
    executor_max_pending: int = Field(1_024, ge=1, le=1_000_000)
    #: How executor="process" starts workers; "spawn" is safe with threads and a running loop.
    process_start_method: Literal["spawn", "forkserver", "fork"] = "spawn"
    #: Deadline of one decision that leaves the event loop (executor hop or OPA, retries included).
    #: An inline evaluation cannot be interrupted; it is bounded by the policy itself.
    eval_timeout_s: float = Field(1.0, gt=0, le=60)

    #: Base URL of the OPA server, e.g. "http://127.0.0.1:8181" (required for backend="opa").
    opa_url: str | None = None
    #: Deadline of one HTTP attempt.
    opa_timeout_s: float = Field(0.25, gt=0, le=60)
    #: Further attempts after a connection error, timeout, HTTP 429 or 5xx.
    opa_retries: int = Field(2, ge=0, le=10)
    #: First backoff between attempts (doubles each time, capped at 1 s, with jitter).
    opa_retry_backoff_s: float = Field(0.01, ge=0, le=5)
    #: Pooled keep-alive connections to OPA.
    opa_pool_size: int = Field(32, ge=1, le=1_024)
    #: Bearer token OPA expects (OPA's --authentication=token).
    opa_token: SecretStr | None = None
    #: Largest OPA response accepted.
    opa_max_response_bytes: int = Field(1_048_576, ge=1_024, le=64 * 1_048_576)

    #: Upper bound on decisions ``PolicyStage.warm`` pre-loads at bus start.
    warm_max_decisions: int = Field(4_096, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _opa_needs_url(self) -> PolicySettings:
        if self.backend == "opa" and not self.opa_url:
            raise ValueError(
                "backend='opa' needs opa_url (AGENTBUS_POLICY__OPA_URL), e.g. "
                "'http://127.0.0.1:8181'"
            )
        if self.opa_url is not None:
            url = urlsplit(self.opa_url)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise ValueError(
                    f"opa_url {self.opa_url!r} is not an http(s) URL with a host; "
                    "use e.g. 'http://127.0.0.1:8181'"
                )
            if url.query or url.fragment:
                raise ValueError(
                    f"opa_url {self.opa_url!r} has a query or fragment; give the server's base URL"
                )
        return self

    @property
    def opa_data_path(self) -> str:
        """The Data API path of the decision rule, e.g. ``agentbus/authz/decision``."""
        return self.decision_rule.removeprefix("data.").replace(".", "/")
