# Shared fixtures for the constitution's unit tests (not loaded by the bus:
# every *_test.rego file is left out of the production policy).
package agentbus.fixtures

agent(id, role, tenant) := {"id": id, "role": role, "tenant_id": tenant, "capabilities": []}

planner := agent("planner-1", "planner", "acme")

worker := agent("worker-1", "worker", "acme")

reviewer := agent("reviewer-1", "reviewer", "acme")

governance := agent("governance-1", "governance", "acme")

governance_2 := agent("governance-2", "governance", "acme")

auditor := agent("auditor-1", "auditor", "acme")

# A message of `type` from tenant acme, normal priority, 64 bytes, no metadata,
# with `overrides` merged over those defaults.
message(type, overrides) := object.union(
	{"type": type, "priority": "normal", "tenant_id": "acme", "size_bytes": 64, "topic": null, "metadata": {}},
	overrides,
)

# The policy input for a direct message from `sender` to `recipient`.
direct(sender, recipient, msg) := {"sender": sender, "recipient": recipient, "message": msg, "payload": {}}

# The policy input for a message to a topic (no single recipient).
published(sender, msg) := {"sender": sender, "recipient": null, "message": msg, "payload": {}}
