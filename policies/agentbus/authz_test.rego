package agentbus.authz_test

import data.agentbus.authz
import data.agentbus.fixtures

test_allows_when_no_rule_denies if {
	d := authz.decision with input as fixtures.direct(fixtures.planner, fixtures.worker, fixtures.message("command", {}))
	d.allow == true
	count(d.deny) == 0
}

test_denies_when_any_rule_denies if {
	msg := fixtures.message("command", {"priority": "critical"})
	d := authz.decision with input as fixtures.direct(fixtures.planner, fixtures.worker, msg)
	d.allow == false
	count(d.deny) > 0
}

test_empty_input_is_denied if {
	d := authz.decision with input as {}
	d.allow == false
}
