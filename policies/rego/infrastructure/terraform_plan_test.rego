package novacron.infrastructure.terraform_test

import data.novacron.infrastructure.terraform
import rego.v1

sg := {"address": "terraform_data.sg", "type": "terraform_data", "actions": ["update"]}

open_ssh := {
	"resource_id": "terraform_data.sg", "control_id": "aws-sg-no-ssh-world",
	"severity": "CRITICAL", "title": "SSH open to the world",
}

test_clean_plan_is_allowed if {
	count(terraform.deny) == 0 with input.action as "terraform_apply"
		with input.context as {"plan": {"resource_changes": [sg]}, "compliance": {"violations": [], "block_severities": ["CRITICAL"]}}
}

test_blocking_violation_denies if {
	count(terraform.deny) == 1 with input.action as "terraform_apply"
		with input.context as {"plan": {"resource_changes": [sg]}, "compliance": {"violations": [open_ssh], "block_severities": ["critical"]}}
}

test_lower_severity_passes if {
	count(terraform.deny) == 0 with input.action as "terraform_apply"
		with input.context as {"plan": {"resource_changes": [sg]}, "compliance": {"violations": [open_ssh], "block_severities": ["LOW"]}}
}

test_destroy_needs_permission if {
	count(terraform.deny) == 1 with input.action as "terraform_apply"
		with input.context as {"plan": {"resource_changes": [object.union(sg, {"actions": ["delete", "create"]})]}}
}

test_destroy_allowed_when_the_step_says_so if {
	count(terraform.deny) == 0 with input.action as "terraform_apply"
		with input.context as {"allow_destroy": true, "plan": {"resource_changes": [object.union(sg, {"actions": ["delete"]})]}}
}

test_unknown_action_fails_closed if {
	count(terraform.deny) == 1 with input.action as "terraform_apply"
		with input.context as {"plan": {"resource_changes": [object.union(sg, {"actions": ["teleport"]})]}}
}

test_other_inputs_are_not_judged if {
	count(terraform.deny) == 0 with input.action as "scale_up"
		with input.context as {"plan": {"resource_changes": [object.union(sg, {"actions": ["delete"]})]}}
}
