# Roles: which message types each role may send to which role.
#
# data.roles.<role>.send.<recipient role> lists the types; the key "*" lists
# types the role may send to every role. A message to a topic (no single
# recipient) may carry any type its sender may send to at least one role.
package agentbus.authz

sender_sends := object.get(data.roles, [sender_role, "send"], {})

may_send_to_recipient if message_type in object.get(sender_sends, recipient_role, [])

may_send_to_recipient if message_type in object.get(sender_sends, "*", [])

may_publish if {
	some types in sender_sends
	message_type in types
}

deny contains msg if {
	not data.roles[sender_role]
	msg := sprintf("sender role %q is not defined by the constitution (data.roles)", [sender_role])
}

deny contains msg if {
	recipient != null
	not data.roles[recipient_role]
	msg := sprintf("recipient role %q is not defined by the constitution (data.roles)", [recipient_role])
}

deny contains msg if {
	recipient != null
	data.roles[sender_role]
	data.roles[recipient_role]
	not may_send_to_recipient
	msg := sprintf(
		"role %q may not send %q messages to role %q (data.roles.%s.send)",
		[sender_role, message_type, recipient_role, sender_role],
	)
}

deny contains msg if {
	recipient == null
	data.roles[sender_role]
	not may_publish
	msg := sprintf(
		"role %q may not publish %q messages: it may send them to no role (data.roles.%s.send)",
		[sender_role, message_type, sender_role],
	)
}
