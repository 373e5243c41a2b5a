package agentbus.authz_test

import data.agentbus.authz
import data.agentbus.fixtures

test_governance_request_from_reviewer_to_governance if {
	authz.allow with input as fixtures.direct(fixtures.reviewer, fixtures.governance, fixtures.message("governance_request", {}))
}

test_governance_channel_between_governance_agents if {
	authz.allow with input as fixtures.direct(fixtures.governance, fixtures.governance_2, fixtures.message("governance_response", {}))
}

test_governance_type_from_non_governance_role_is_denied if {
	msg := fixtures.message("governance_request", {})
	d := authz.decision with input as fixtures.direct(fixtures.planner, fixtures.governance, msg)
		with data.roles.planner.send.governance as ["governance_request"]
	d.deny == {`"governance_request" messages are the governance channel: role "planner" is not a governance role (data.governance_roles)`}
}

test_governance_type_to_non_governance_role_is_denied if {
	msg := fixtures.message("governance_response", {})
	d := authz.decision with input as fixtures.direct(fixtures.governance, fixtures.worker, msg)
		with data.roles.governance.send.worker as ["governance_response"]
	d.deny == {`"governance_response" messages are the governance channel: recipient role "worker" is not a governance role (data.governance_roles)`}
}

test_governance_any_governance_prefixed_type_is_channel_only if {
	d := authz.decision with input as fixtures.published(fixtures.worker, fixtures.message("governance_vote", {}))
		with data.roles.worker.send["*"] as ["governance_vote"]
	`"governance_vote" messages are the governance channel: role "worker" is not a governance role (data.governance_roles)` in d.deny
}

test_critical_priority_from_governance if {
	msg := fixtures.message("notification", {"priority": "critical"})
	authz.allow with input as fixtures.direct(fixtures.governance, fixtures.worker, msg)
}

test_critical_priority_from_other_roles_is_denied if {
	every sender in [fixtures.planner, fixtures.worker, fixtures.reviewer, fixtures.auditor] {
		msg := fixtures.message("heartbeat", {"priority": "critical"})
		d := authz.decision with input as fixtures.direct(sender, fixtures.worker, msg)
		d.deny == {sprintf("role %q may not send CRITICAL priority messages (data.critical_priority_roles)", [sender.role])}
	}
}
