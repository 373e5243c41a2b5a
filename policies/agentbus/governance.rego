# The governance channel and the CRITICAL priority belong to governance roles.
#
# Any message type named governance_* travels only between the roles listed in
# data.governance_roles, whatever data.roles allows; CRITICAL priority is only
# for data.critical_priority_roles.
package agentbus.authz

is_governance_type if startswith(message_type, "governance_")

deny contains msg if {
	is_governance_type
	not sender_role in data.governance_roles
	msg := sprintf(
		"%q messages are the governance channel: role %q is not a governance role (data.governance_roles)",
		[message_type, sender_role],
	)
}

deny contains msg if {
	is_governance_type
	recipient != null
	not recipient_role in data.governance_roles
	msg := sprintf(
		"%q messages are the governance channel: recipient role %q is not a governance role (data.governance_roles)",
		[message_type, recipient_role],
	)
}

deny contains msg if {
	priority == "critical"
	not sender_role in data.critical_priority_roles
	msg := sprintf(
		"role %q may not send CRITICAL priority messages (data.critical_priority_roles)",
		[sender_role],
	)
}
