# METADATA
# title: Terraform plans the executor may apply
# description: a saved plan is applied only when it destroys nothing it was not allowed to and leaves no blocking compliance violation behind.
# custom:
#   policy_type: infrastructure
#   enforcement: block
package novacron.infrastructure.terraform

import rego.v1

changes := object.get(input.context, ["plan", "resource_changes"], [])

deny contains msg if {
	input.action == "terraform_apply"
	some change in changes
	"delete" in change.actions
	not object.get(input.context, "allow_destroy", false) == true
	msg := sprintf("the plan destroys %s and the step does not allow destroy", [change.address])
}

deny contains msg if {
	input.action == "terraform_apply"
	blocking := {upper(s) | some s in object.get(input.context, ["compliance", "block_severities"], [])}
	some v in object.get(input.context, ["compliance", "violations"], [])
	upper(v.severity) in blocking
	msg := sprintf("%s would violate %s (%s): %s", [v.resource_id, v.control_id, v.severity, v.title])
}

deny contains msg if {
	input.action == "terraform_apply"
	some change in changes
	some a in change.actions
	not a in {"create", "update", "delete", "no-op", "read"}
	msg := sprintf("the plan has an unknown action %s on %s, failing closed", [a, change.address])
}
