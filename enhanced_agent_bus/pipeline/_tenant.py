"""Stage 2: tenant isolation, with the constitution's named cross-tenant exceptions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ConfigurationError
from ..models import AgentMessage, MessageType
from ._stage import ALLOW, StageContext, Verdict

CrossTenantRule = tuple[str, str, frozenset[MessageType] | None]


def cross_tenant_rules(data: Mapping[str, Any]) -> list[CrossTenantRule]:
    """Read ``cross_tenant.allow`` from a constitution data document.

    Each entry is ``{"from_tenant": ..., "to_tenant": ..., "message_types": [...]}``;
    without ``message_types`` the pair is open for every type. The policy stage
    checks the same list, so an exception must be named in the constitution.

    Raises:
        ConfigurationError: the entry does not have that shape.
    """
    section = data.get("cross_tenant", {})
    entries = section.get("allow", []) if isinstance(section, dict) else None
    if not isinstance(entries, list):
        raise ConfigurationError(
            f"data document key 'cross_tenant.allow' must be a list, not {type(entries).__name__}"
        )
    rules: list[CrossTenantRule] = []
    for index, entry in enumerate(entries):
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("from_tenant"), str)
            and isinstance(entry.get("to_tenant"), str)
        ):
            raise ConfigurationError(
                f"cross_tenant.allow[{index}] = {entry!r} needs string 'from_tenant' and "
                "'to_tenant' keys"
            )
        types = entry.get("message_types")
        if types is None:
            rules.append((entry["from_tenant"], entry["to_tenant"], None))
            continue
        try:
            parsed = frozenset(MessageType(t) for t in types)
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"cross_tenant.allow[{index}].message_types = {types!r} must list message types "
                f"from {[t.value for t in MessageType]}"
            ) from None
        rules.append((entry["from_tenant"], entry["to_tenant"], parsed))
    return rules


class TenantIsolationStage:
    """The message's tenant is the sender's, and the recipient's unless the constitution says so."""

    name = "tenant"

    def __init__(self, rules: Iterable[CrossTenantRule] = ()) -> None:
        self._allowed: dict[tuple[str, str], frozenset[MessageType] | None] = {}
        for from_tenant, to_tenant, types in rules:
            self._allowed[(from_tenant, to_tenant)] = types

    def check(self, message: AgentMessage, ctx: StageContext) -> Verdict:
        sender_tenant = ctx.sender.tenant_id
        if message.tenant_id != sender_tenant:
            return Verdict.deny(
                self.name,
                "tenant_mismatch",
                f"message tenant_id {message.tenant_id!r} is not the tenant of sender "
                f"{ctx.sender.agent_id!r} ({sender_tenant!r}); agents send only as their own "
                "tenant",
            )
        recipient = ctx.recipient
        if recipient is None or recipient.tenant_id == sender_tenant:
            return ALLOW
        key = (sender_tenant, recipient.tenant_id)
        if key in self._allowed:
            types = self._allowed[key]
            if types is None or message.message_type in types:
                return ALLOW
        return Verdict.deny(
            self.name,
            "cross_tenant",
            f"sender tenant {sender_tenant!r} may not reach recipient {recipient.agent_id!r} in "
            f"tenant {recipient.tenant_id!r} with a {message.message_type.value} message; name "
            "the pair under cross_tenant.allow in the constitution to permit it",
        )
