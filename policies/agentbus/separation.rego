# Separation of powers.
#
# A message may claim the action it performs in metadata.action; a role may
# perform only data.roles.<role>.actions. Judging actions (validate, approve,
# reject: data.separation_of_powers.requires_distinct_proposer) must name the
# proposer in metadata.proposed_by, and nobody judges their own proposal.
#
# Proposing, executing, judging and auditing are distinct branches
# (data.separation_of_powers.branches). A role whose actions span two branches
# makes the constitution itself invalid: `constitution_errors` reports it, and
# the bus refuses to load such a bundle. It depends on data only, so it is
# checked once at load rather than on every message.
package agentbus.authz

action := object.get(metadata, "action", null)

proposed_by := object.get(metadata, "proposed_by", "")

sender_actions := object.get(data.roles, [sender_role, "actions"], [])

deny contains msg if {
	action != null
	not action in sender_actions
	msg := sprintf(
		"role %q may not perform action %q; its actions are %v (data.roles.%s.actions)",
		[sender_role, action, sender_actions, sender_role],
	)
}

deny contains msg if {
	action in data.separation_of_powers.requires_distinct_proposer
	proposed_by == ""
	msg := sprintf("action %q must name the proposing agent in metadata.proposed_by", [action])
}

deny contains msg if {
	action in data.separation_of_powers.requires_distinct_proposer
	proposed_by == sender_id
	msg := sprintf("agent %q may not %s a message it proposed (separation of powers)", [sender_id, action])
}

role_branches(role) := {branch |
	some branch, powers in data.separation_of_powers.branches
	some power in powers
	power in data.roles[role].actions
}

constitution_errors contains msg if {
	some role, _ in data.roles
	count(role_branches(role)) > 1
	msg := sprintf(
		"role %q holds the powers of several branches %v; proposing, executing, judging and auditing must be distinct roles (data.separation_of_powers.branches)",
		[role, sort(role_branches(role))],
	)
}
