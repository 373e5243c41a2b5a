package agentbus.authz_test

import data.agentbus.authz
import data.agentbus.fixtures

test_tenancy_message_tenant_must_be_the_senders if {
	msg := fixtures.message("command", {"tenant_id": "globex"})
	d := authz.decision with input as fixtures.direct(fixtures.planner, fixtures.worker, msg)
	d.deny == {`message claims tenant "globex" but its sender "planner-1" belongs to tenant "acme"`}
}

test_tenancy_cross_tenant_without_allow_entry_is_denied if {
	other := fixtures.agent("worker-9", "worker", "globex")
	d := authz.decision with input as fixtures.direct(fixtures.planner, other, fixtures.message("command", {}))
	d.deny == {`tenant "acme" may not send "command" messages to tenant "globex": no data.cross_tenant.allow entry names this pair and type`}
}

test_tenancy_cross_tenant_allow_entry_lets_the_named_type_through if {
	audit := fixtures.agent("auditor-9", "auditor", "acme-audit")
	authz.allow with input as fixtures.direct(fixtures.planner, audit, fixtures.message("event", {}))
}

test_tenancy_cross_tenant_allow_entry_is_per_type if {
	audit := fixtures.agent("auditor-9", "auditor", "acme-audit")
	d := authz.decision with input as fixtures.direct(fixtures.planner, audit, fixtures.message("notification", {}))
	d.deny == {`tenant "acme" may not send "notification" messages to tenant "acme-audit": no data.cross_tenant.allow entry names this pair and type`}
}

test_tenancy_cross_tenant_allow_entry_is_one_way if {
	audit := fixtures.agent("auditor-9", "auditor", "acme-audit")
	d := authz.decision with input as fixtures.direct(audit, fixtures.planner, fixtures.message("query", {"tenant_id": "acme-audit"}))
	d.allow == true
	d2 := authz.decision with input as fixtures.direct(fixtures.auditor, fixtures.agent("auditor-9", "auditor", "acme-audit"), fixtures.message("query", {}))
	d2.allow == false
}

test_tenancy_cross_tenant_entry_without_types_opens_every_type if {
	other := fixtures.agent("worker-9", "worker", "globex")
	entry := {"from_tenant": "acme", "to_tenant": "globex"}
	every type in ["command", "query", "event"] {
		authz.allow with input as fixtures.direct(fixtures.planner, other, fixtures.message(type, {}))
			with data.cross_tenant.allow as [entry]
	}
}
