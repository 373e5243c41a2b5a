package agentbus.authz_test

import data.agentbus.authz

test_constitution_default_data_has_every_section if {
	count(authz.constitution_errors) == 0
}

test_constitution_missing_limits_is_an_error if {
	errors := authz.constitution_errors with data.limits as {}
	errors == {"data.limits is missing: the policy needs the payload ceilings per message type (limits.max_payload_bytes)"}
}

test_constitution_missing_roles_is_an_error if {
	errors := authz.constitution_errors with data.roles as {}
	"data.roles is missing: the policy needs the roles table (at least one role)" in errors
}

test_constitution_empty_allow_list_is_fine if {
	count(authz.constitution_errors) == 0 with data.cross_tenant.allow as []
}
