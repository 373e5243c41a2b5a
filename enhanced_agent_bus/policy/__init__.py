"""The constitution's Rego policy: engines, the policy input, decisions and their cache key.

The embedded engine (regorus) is the default; remote OPA is an option. See
``policies/README.md`` for the input contract and the default constitution.
The ``policy`` validation stage that uses all this lives in
``enhanced_agent_bus.pipeline``; the CLI sub-app is ``policy.cli.policy_app``.
"""

from ._data import (
    ConstitutionData,
    CrossTenantRule,
    CrossTenantSection,
    RoleSpec,
    parse_constitution_data,
    validate_data_document,
)
from ._decision import ALLOWED, PolicyDecision, PolicyDecisionCodec
from ._embedded import EmbeddedPolicy
from ._engine import DecisionCache, PolicyEngine
from ._errors import PolicyEngineUnavailableError, PolicyEvaluationError, PolicyLoadError
from ._executor import InlinePolicyEngine, ProcessPolicyEngine, ThreadPolicyEngine
from ._factory import create_policy_engine
from ._input import PolicyInputEncoder, PolicyInputSpec, build_policy_input, policy_input_document
from ._key import canonical_json, decision_key, decision_key_from_json
from ._opa import OpaPolicyEngine
from ._settings import PolicySettings
from ._testrunner import RegoTestReport, RegoTestResult, run_rego_tests

__all__ = [
    "ALLOWED",
    "ConstitutionData",
    "CrossTenantRule",
    "CrossTenantSection",
    "DecisionCache",
    "EmbeddedPolicy",
    "InlinePolicyEngine",
    "OpaPolicyEngine",
    "PolicyDecision",
    "PolicyDecisionCodec",
    "PolicyEngine",
    "PolicyEngineUnavailableError",
    "PolicyEvaluationError",
    "PolicyInputEncoder",
    "PolicyInputSpec",
    "PolicyLoadError",
    "PolicySettings",
    "ProcessPolicyEngine",
    "RegoTestReport",
    "RegoTestResult",
    "RoleSpec",
    "ThreadPolicyEngine",
    "build_policy_input",
    "canonical_json",
    "create_policy_engine",
    "decision_key",
    "decision_key_from_json",
    "parse_constitution_data",
    "policy_input_document",
    "run_rego_tests",
    "validate_data_document",
]
