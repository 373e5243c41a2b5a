package agentbus.authz_test

import data.agentbus.authz
import data.agentbus.fixtures

test_limits_payload_at_the_ceiling_is_allowed if {
	msg := fixtures.message("command", {"size_bytes": data.limits.max_payload_bytes.command})
	authz.allow with input as fixtures.direct(fixtures.planner, fixtures.worker, msg)
}

test_limits_payload_over_the_ceiling_is_denied if {
	msg := fixtures.message("notification", {"size_bytes": 4097})
	d := authz.decision with input as fixtures.direct(fixtures.planner, fixtures.worker, msg)
	d.deny == {`payload of 4097 bytes exceeds the 4096-byte ceiling for "notification" messages (data.limits.max_payload_bytes.notification)`}
}

test_limits_every_message_type_has_a_ceiling if {
	every type in ["command", "query", "response", "event", "notification", "governance_request", "governance_response", "heartbeat"] {
		is_number(data.limits.max_payload_bytes[type])
	}
}

test_limits_type_without_ceiling_is_denied if {
	msg := fixtures.message("heartbeat", {"size_bytes": 2})
	d := authz.decision with input as fixtures.direct(fixtures.planner, fixtures.worker, msg)
		with data.limits.max_payload_bytes as {"command": 10}
	d.deny == {`the constitution states no payload ceiling for "heartbeat" messages (data.limits.max_payload_bytes.heartbeat)`}
}
