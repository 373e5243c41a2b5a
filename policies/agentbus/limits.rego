# Payload size ceilings per message type (data.limits.max_payload_bytes.<type>).
#
# A type without a ceiling is denied: the constitution must state every limit.
package agentbus.authz

deny contains msg if {
	ceiling := data.limits.max_payload_bytes[message_type]
	is_number(ceiling)
	size := input.message.size_bytes
	is_number(size)
	size > ceiling
	msg := sprintf(
		"payload of %d bytes exceeds the %d-byte ceiling for %q messages (data.limits.max_payload_bytes.%s)",
		[size, ceiling, message_type, message_type],
	)
}

deny contains msg if {
	not is_number(object.get(data.limits, ["max_payload_bytes", message_type], null))
	msg := sprintf(
		"the constitution states no payload ceiling for %q messages (data.limits.max_payload_bytes.%s)",
		[message_type, message_type],
	)
}
