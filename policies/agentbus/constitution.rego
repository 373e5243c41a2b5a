# What this policy needs from the data document.
#
# Without these sections every rule would quietly see "undefined" and deny
# everything; instead `constitution_errors` names what is missing and the bus
# refuses to load the bundle (the check runs once, at load).
package agentbus.authz

required_data := {
	"roles": "the roles table (at least one role)",
	"governance_roles": "the roles that may use the governance channel",
	"critical_priority_roles": "the roles that may send CRITICAL priority",
	"separation_of_powers": "the branches of power and the actions that need a distinct proposer",
	"limits": "the payload ceilings per message type (limits.max_payload_bytes)",
	"cross_tenant": "the cross-tenant allow-list (cross_tenant.allow, may be empty)",
}

constitution_errors contains msg if {
	some section, meaning in required_data
	not has_data_section(section)
	msg := sprintf("data.%s is missing: the policy needs %s", [section, meaning])
}

has_data_section("roles") if count(data.roles) > 0

has_data_section("governance_roles") if data.governance_roles

has_data_section("critical_priority_roles") if data.critical_priority_roles

has_data_section("separation_of_powers") if data.separation_of_powers.branches

has_data_section("limits") if data.limits.max_payload_bytes

has_data_section("cross_tenant") if data.cross_tenant.allow
