package agentbus.authz_test

import data.agentbus.authz
import data.agentbus.fixtures

test_separation_role_performs_its_listed_action if {
	msg := fixtures.message("command", {"metadata": {"action": "propose"}})
	authz.allow with input as fixtures.direct(fixtures.planner, fixtures.reviewer, msg)
}

test_separation_role_may_not_perform_unlisted_action if {
	msg := fixtures.message("command", {"metadata": {"action": "approve", "proposed_by": "someone-else"}})
	d := authz.decision with input as fixtures.direct(fixtures.planner, fixtures.worker, msg)
	d.deny == {`role "planner" may not perform action "approve"; its actions are ["propose", "delegate"] (data.roles.planner.actions)`}
}

test_separation_validation_must_name_the_proposer if {
	msg := fixtures.message("governance_request", {"metadata": {"action": "validate"}})
	d := authz.decision with input as fixtures.direct(fixtures.reviewer, fixtures.governance, msg)
	d.deny == {`action "validate" must name the proposing agent in metadata.proposed_by`}
}

test_separation_validating_anothers_proposal_is_allowed if {
	msg := fixtures.message("governance_request", {"metadata": {"action": "validate", "proposed_by": "planner-1"}})
	authz.allow with input as fixtures.direct(fixtures.reviewer, fixtures.governance, msg)
}

test_separation_no_agent_validates_its_own_proposal if {
	msg := fixtures.message("governance_request", {"metadata": {"action": "validate", "proposed_by": "reviewer-1"}})
	d := authz.decision with input as fixtures.direct(fixtures.reviewer, fixtures.governance, msg)
	d.deny == {`agent "reviewer-1" may not validate a message it proposed (separation of powers)`}
}

test_separation_no_agent_approves_its_own_proposal if {
	msg := fixtures.message("governance_response", {"metadata": {"action": "approve", "proposed_by": "governance-1"}})
	d := authz.decision with input as fixtures.direct(fixtures.governance, fixtures.reviewer, msg)
	d.deny == {`agent "governance-1" may not approve a message it proposed (separation of powers)`}
}

test_separation_approving_anothers_proposal_is_allowed if {
	msg := fixtures.message("governance_response", {"metadata": {"action": "approve", "proposed_by": "planner-1"}})
	authz.allow with input as fixtures.direct(fixtures.governance, fixtures.reviewer, msg)
}

test_separation_default_constitution_keeps_branches_apart if {
	count(authz.constitution_errors) == 0
}

test_separation_role_spanning_two_branches_is_a_constitution_error if {
	errors := authz.constitution_errors with data.roles.planner.actions as ["propose", "validate"]
	errors == {`role "planner" holds the powers of several branches ["judicial", "legislative"]; proposing, executing, judging and auditing must be distinct roles (data.separation_of_powers.branches)`}
}
