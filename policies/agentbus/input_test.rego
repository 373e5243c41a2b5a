package agentbus.authz_test

import data.agentbus.authz
import data.agentbus.fixtures

test_input_missing_sender_fields_are_named if {
	inp := json.remove(fixtures.direct(fixtures.planner, fixtures.worker, fixtures.message("command", {})), ["sender/role", "sender/id"])
	d := authz.decision with input as inp
	"policy input field sender.role must be a string" in d.deny
	"policy input field sender.id must be a string" in d.deny
}

test_input_non_number_size_is_denied if {
	inp := fixtures.direct(fixtures.planner, fixtures.worker, fixtures.message("command", {"size_bytes": "64"}))
	d := authz.decision with input as inp
	"policy input field message.size_bytes must be a number" in d.deny
}

test_input_non_object_metadata_is_denied if {
	inp := fixtures.direct(fixtures.planner, fixtures.worker, fixtures.message("command", {"metadata": "action=propose"}))
	d := authz.decision with input as inp
	"policy input field message.metadata must be an object" in d.deny
}

test_input_recipient_without_tenant_is_denied if {
	recipient := json.remove(fixtures.worker, ["tenant_id"])
	d := authz.decision with input as fixtures.direct(fixtures.planner, recipient, fixtures.message("command", {}))
	"policy input field recipient.tenant_id must be a string" in d.deny
}
