# METADATA
# title: Control API access (RBAC)
# description: admin may do anything; operator may read, evaluate and decide approvals; viewer may read.
# custom:
#   policy_type: access
#   enforcement: block
package novacron.access.rbac

import rego.v1

default allow := false

allow if input.subject.role == "admin"

allow if {
	input.subject.role == "operator"
	input.action in {"read", "evaluate", "approve"}
}

allow if {
	input.subject.role == "viewer"
	input.action == "read"
}

deny contains msg if {
	not allow
	msg := sprintf("role '%s' may not %s %s", [input.subject.role, input.action, input.resource.type])
}
