# The policy input contract (see policies/README.md) and the values other modules share.
#
# A malformed input is denied with a reason naming the missing field rather than
# slipping past rules that would silently be undefined.
package agentbus.authz

sender_role := object.get(input, ["sender", "role"], "")

sender_id := object.get(input, ["sender", "id"], "")

sender_tenant := object.get(input, ["sender", "tenant_id"], "")

# null when the message goes to a topic rather than one agent.
recipient := object.get(input, "recipient", null)

recipient_role := object.get(input, ["recipient", "role"], "")

recipient_tenant := object.get(input, ["recipient", "tenant_id"], "")

message_type := object.get(input, ["message", "type"], "")

priority := object.get(input, ["message", "priority"], "")

# metadata as an object even when the input is malformed (the contract rule below reports it).
metadata := m if {
	m := object.get(input, ["message", "metadata"], {})
	is_object(m)
} else := {}

required_strings := [
	["sender", "id"],
	["sender", "role"],
	["sender", "tenant_id"],
	["message", "type"],
	["message", "priority"],
	["message", "tenant_id"],
]

deny contains msg if {
	some path in required_strings
	not is_string(object.get(input, path, null))
	msg := sprintf("policy input field %s must be a string", [concat(".", path)])
}

deny contains "policy input field message.size_bytes must be a number" if {
	not is_number(object.get(input, ["message", "size_bytes"], null))
}

deny contains "policy input field message.metadata must be an object" if {
	not is_object(object.get(input, ["message", "metadata"], {}))
}

deny contains msg if {
	recipient != null
	some field in ["id", "role", "tenant_id"]
	not is_string(object.get(recipient, field, null))
	msg := sprintf("policy input field recipient.%s must be a string", [field])
}
