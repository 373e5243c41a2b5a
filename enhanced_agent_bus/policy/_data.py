"""The shape of the constitution's data document (``data.json``).

The Rego policy reads these sections; the bus reads two of them too (the
tenant stage reads ``cross_tenant.allow``, the policy stage reads
``policy_input``). Validating them here means a malformed document is refused
when the constitution loads, naming the field, instead of silently turning
into "undefined" inside Rego and denying everything.

Every section is optional, so a custom constitution with its own policy and
data may leave them out; extra top-level keys are kept for its policy. Inside a
known section, unknown keys are errors: a misspelt key in a constitution must
fail loudly.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)

from ..constitution import Constitution
from ..errors import ConfigurationError
from ..models import AGENT_ID_PATTERN, MessageType

DATA_DOCUMENT: Final = "data.json"

#: Metadata keys the policy sees when the constitution does not say otherwise.
DEFAULT_METADATA_KEYS: Final = ("action", "proposed_by")

_NAME_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
_FIELD_PATH_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}(\.[A-Za-z_][A-Za-z0-9_-]{0,63}){0,7}$"

Name = Annotated[str, StringConstraints(pattern=_NAME_PATTERN)]
TenantName = Annotated[str, StringConstraints(pattern=AGENT_ID_PATTERN)]
FieldPath = Annotated[str, StringConstraints(pattern=_FIELD_PATH_PATTERN)]
MetadataKeyName = Annotated[str, StringConstraints(min_length=1, max_length=128)]

_SECTION = ConfigDict(extra="forbid", frozen=True)


class RoleSpec(BaseModel):
    """What one role may do: its actions and the message types it may send per recipient role."""

    model_config = _SECTION

    actions: tuple[Name, ...] = ()
    #: recipient role (or "*" for every role) -> message types
    send: dict[str, tuple[MessageType, ...]] = Field(default_factory=dict)


class CrossTenantRule(BaseModel):
    """One explicit exception to tenant isolation: this pair, these types, one direction.

    Without ``message_types`` the pair is open to every type (in that direction).
    """

    model_config = _SECTION

    from_tenant: TenantName
    to_tenant: TenantName
    message_types: tuple[MessageType, ...] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _distinct_tenants(self) -> CrossTenantRule:
        if self.from_tenant == self.to_tenant:
            raise ValueError(
                f"from_tenant and to_tenant are both {self.from_tenant!r}; an entry is only "
                "needed between two different tenants"
            )
        return self


class CrossTenantSection(BaseModel):
    model_config = _SECTION

    allow: tuple[CrossTenantRule, ...] = ()
    _pairs: frozenset[tuple[str, str, MessageType | None]] = PrivateAttr(default=frozenset())

    @model_validator(mode="after")
    def _index(self) -> CrossTenantSection:
        pairs: set[tuple[str, str, MessageType | None]] = set()
        for rule in self.allow:
            for message_type in rule.message_types or (None,):
                pairs.add((rule.from_tenant, rule.to_tenant, message_type))
        self._pairs = frozenset(pairs)
        return self

    def allows(self, from_tenant: str, to_tenant: str, message_type: MessageType) -> bool:
        """True when an entry names this (from, to) pair and this type (or every type)."""
        return (from_tenant, to_tenant, message_type) in self._pairs or (
            from_tenant,
            to_tenant,
            None,
        ) in self._pairs


class LimitsSection(BaseModel):
    model_config = _SECTION

    max_payload_bytes: dict[MessageType, Annotated[StrictInt, Field(ge=0)]] = Field(
        default_factory=dict
    )


class SeparationOfPowers(BaseModel):
    model_config = _SECTION

    #: branch name -> the actions (powers) that belong to it
    branches: dict[Name, tuple[Name, ...]] = Field(default_factory=dict)
    #: actions an agent may never perform on a message it proposed itself
    requires_distinct_proposer: tuple[Name, ...] = ()

    @model_validator(mode="after")
    def _one_branch_per_action(self) -> SeparationOfPowers:
        owner: dict[str, str] = {}
        for branch, actions in self.branches.items():
            for action in actions:
                if action in owner and owner[action] != branch:
                    raise ValueError(
                        f"action {action!r} belongs to two branches ({owner[action]!r} and "
                        f"{branch!r}); each power belongs to exactly one branch"
                    )
                owner[action] = branch
        return self


class PolicyInputSection(BaseModel):
    """Which parts of a message beyond the envelope the policy sees (see ``_input.py``)."""

    model_config = _SECTION

    metadata_keys: tuple[MetadataKeyName, ...] = Field(DEFAULT_METADATA_KEYS, max_length=64)
    payload_fields: tuple[FieldPath, ...] = Field((), max_length=64)


class ConstitutionData(BaseModel):
    """The validated data document of a constitution bundle.

    Example::

        data = parse_constitution_data(load_bundle())
        data.cross_tenant.allows("acme", "acme-audit", MessageType.EVENT)  # True
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    roles: dict[Name, RoleSpec] = Field(default_factory=dict)
    governance_roles: tuple[Name, ...] = ()
    critical_priority_roles: tuple[Name, ...] = ()
    separation_of_powers: SeparationOfPowers = Field(default_factory=SeparationOfPowers)
    limits: LimitsSection = Field(default_factory=LimitsSection)
    cross_tenant: CrossTenantSection = Field(default_factory=CrossTenantSection)
    policy_input: PolicyInputSection = Field(default_factory=PolicyInputSection)

    @model_validator(mode="after")
    def _roles_are_defined(self) -> ConstitutionData:
        if not self.roles:
            return self
        known = set(self.roles)
        for role, spec in self.roles.items():
            for target in spec.send:
                if target != "*" and target not in known:
                    raise ValueError(
                        f"roles.{role}.send names role {target!r}, which data.roles does not "
                        f"define (defined: {sorted(known)}; use '*' for every role)"
                    )
        for section in ("governance_roles", "critical_priority_roles"):
            for role in getattr(self, section):
                if role not in known:
                    raise ValueError(
                        f"{section} names role {role!r}, which data.roles does not define "
                        f"(defined: {sorted(known)})"
                    )
        return self


def parse_constitution_data(constitution: Constitution) -> ConstitutionData:
    """Validate the bundle's ``data.json`` (an empty document when the bundle has none).

    Raises:
        ConfigurationError: the document is not JSON, not an object, or a known
            section has the wrong shape; the message names the field.
    """
    return validate_data_document(
        constitution.data_document(DATA_DOCUMENT), origin=str(constitution.path / DATA_DOCUMENT)
    )


def validate_data_document(document: dict[str, Any], *, origin: str) -> ConstitutionData:
    """Validate an already-decoded data document; ``origin`` names it in errors.

    Raises:
        ConfigurationError: a known section has the wrong shape.
    """
    try:
        return ConstitutionData.model_validate(document)
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:5]:
            text = error["msg"].removeprefix("Value error, ")
            for python_word, json_word in _JSON_WORDS:
                text = text.replace(python_word, json_word)
            if error["type"] == "value_error":
                problems.append(text)
                continue
            location = ".".join(str(part) for part in error["loc"]) or "<document>"
            problems.append(f"at {location}: {text} (got {_preview(error.get('input'))})")
        more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
        raise ConfigurationError(
            f"{origin!r} does not have the shape the constitution needs: "
            + "; ".join(problems)
            + f"{more}. Fix the data document (see policies/README.md)."
        ) from None


# pydantic speaks Python; the data document is JSON.
_JSON_WORDS: Final = (
    ("a valid tuple", "a JSON array"),
    ("a valid dictionary", "a JSON object"),
    ("a valid integer", "a JSON integer"),
    ("a valid string", "a JSON string"),
)


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."
