# The decision the bus asks for: a message is allowed only when no rule denies it.
#
# Every other module in this package adds reasons to `deny`; this module only
# combines them. The bus queries `data.agentbus.authz.decision` and expects
# {"allow": <bool>, "deny": <set of strings>}.
package agentbus.authz

default allow := false

allow if count(deny) == 0

decision := {"allow": allow, "deny": deny}
