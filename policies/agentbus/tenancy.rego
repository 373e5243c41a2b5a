# Tenant isolation: a message stays in its sender's tenant unless
# data.cross_tenant.allow names the (from_tenant, to_tenant) pair and the type.
# An entry without "message_types" opens the pair (that direction) to every type.
#
# The bus's tenant stage reads the same allow-list to let named pairs reach this
# policy; this module checks it again so the policy alone is a complete answer.
package agentbus.authz

deny contains msg if {
	message_tenant := object.get(input, ["message", "tenant_id"], "")
	message_tenant != sender_tenant
	msg := sprintf(
		"message claims tenant %q but its sender %q belongs to tenant %q",
		[message_tenant, sender_id, sender_tenant],
	)
}

deny contains msg if {
	recipient != null
	recipient_tenant != sender_tenant
	not cross_tenant_allowed
	msg := sprintf(
		"tenant %q may not send %q messages to tenant %q: no data.cross_tenant.allow entry names this pair and type",
		[sender_tenant, message_type, recipient_tenant],
	)
}

cross_tenant_allowed if {
	some rule in data.cross_tenant.allow
	rule.from_tenant == sender_tenant
	rule.to_tenant == recipient_tenant
	covers_message_type(rule)
}

covers_message_type(rule) if not rule.message_types

covers_message_type(rule) if message_type in rule.message_types
