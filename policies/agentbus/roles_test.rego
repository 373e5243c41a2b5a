package agentbus.authz_test

import data.agentbus.authz
import data.agentbus.fixtures

test_roles_planner_commands_worker if {
	authz.allow with input as fixtures.direct(fixtures.planner, fixtures.worker, fixtures.message("command", {}))
}

test_roles_worker_may_not_command_planner if {
	d := authz.decision with input as fixtures.direct(fixtures.worker, fixtures.planner, fixtures.message("command", {}))
	d.deny == {`role "worker" may not send "command" messages to role "planner" (data.roles.worker.send)`}
}

test_roles_auditor_may_not_command_anyone if {
	some target in [fixtures.planner, fixtures.worker, fixtures.reviewer, fixtures.governance]
	d := authz.decision with input as fixtures.direct(fixtures.auditor, target, fixtures.message("command", {}))
	d.allow == false
}

test_roles_wildcard_types_go_to_every_role if {
	every target in [fixtures.planner, fixtures.worker, fixtures.reviewer, fixtures.governance, fixtures.auditor] {
		authz.allow with input as fixtures.direct(fixtures.worker, target, fixtures.message("heartbeat", {}))
	}
}

test_roles_undefined_sender_role_is_denied if {
	ghost := fixtures.agent("ghost-1", "ghost", "acme")
	d := authz.decision with input as fixtures.direct(ghost, fixtures.worker, fixtures.message("heartbeat", {}))
	`sender role "ghost" is not defined by the constitution (data.roles)` in d.deny
}

test_roles_undefined_recipient_role_is_denied if {
	ghost := fixtures.agent("ghost-1", "ghost", "acme")
	d := authz.decision with input as fixtures.direct(fixtures.planner, ghost, fixtures.message("heartbeat", {}))
	d.deny == {`recipient role "ghost" is not defined by the constitution (data.roles)`}
}

test_roles_publish_a_type_the_role_may_send if {
	authz.allow with input as fixtures.published(fixtures.worker, fixtures.message("event", {}))
}

test_roles_publish_a_type_the_role_may_not_send if {
	d := authz.decision with input as fixtures.published(fixtures.worker, fixtures.message("command", {}))
	d.deny == {`role "worker" may not publish "command" messages: it may send them to no role (data.roles.worker.send)`}
}

test_roles_follow_the_data_document if {
	authz.allow with input as fixtures.direct(fixtures.worker, fixtures.planner, fixtures.message("command", {}))
		with data.roles.worker.send.planner as ["command"]
}

# Consistency of the data document: whoever may send a command or query to a
# role may also get its response back.
sendable(from_role, to_role) := {t |
	some key in ["*", to_role]
	some t in object.get(data.roles[from_role].send, key, [])
}

test_roles_every_request_can_be_answered if {
	every from_role, _ in data.roles {
		every to_role, _ in data.roles {
			every request_type in {"command", "query"} & sendable(from_role, to_role) {
				"response" in sendable(to_role, from_role)
			}
		}
	}
}

test_roles_request_consistency_check_catches_a_gap if {
	not test_roles_every_request_can_be_answered with data.roles.worker.send.planner as ["event"]
}
