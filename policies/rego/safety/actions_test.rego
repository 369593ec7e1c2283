package novacron.safety.actions_test

import data.novacron.safety.actions
import rego.v1

test_no_scale_down_in_incident if {
	actions.deny["no scale_down of web during an open incident"] with input.action as "scale_down"
		with input.resource as {"id": "web"}
		with input.context as {"incident": true}
}

test_scale_down_without_incident if {
	count(actions.deny) == 0 with input.action as "scale_down"
		with input.resource as {"id": "web"}
		with input.context as {"incident": false}
}

test_migration_limit if {
	count(actions.deny) == 1 with input.action as "migrate_vm"
		with input.resource as {"id": "vm-7"}
		with input.context as {"migrations_last_hour": 3}
}

test_migration_under_limit if {
	count(actions.deny) == 0 with input.action as "migrate_vm"
		with input.resource as {"id": "vm-7"}
		with input.context as {"migrations_last_hour": 2}
}

test_production_needs_approval if {
	count(actions.approval_required) == 1 with input.action as "scale_up"
		with input.resource as {"id": "web", "environment": "production"}
		with input.context as {}
}

test_low_confidence_needs_approval if {
	count(actions.approval_required) == 1 with input.action as "scale_up"
		with input.resource as {"id": "web", "environment": "staging"}
		with input.context as {"confidence": 0.3}
}

# Decided on what will run: a runbook that scales down is denied whatever action type carries it.
test_scale_down_effect_under_another_action_type if {
	actions.deny["no scale_down of web during an open incident"] with input.action as "scale_up"
		with input.runbook as {"id": "shrink", "implements": ["scale_down"]}
		with input.resource as {"id": "web"}
		with input.context as {"incident": true}
}

test_migration_limit_applies_to_a_migrating_runbook if {
	count(actions.deny) == 1 with input.action as "rebalance_load"
		with input.runbook as {"id": "migrate-vm", "implements": ["migrate_vm"]}
		with input.resource as {"id": "vm-7"}
		with input.context as {"migrations_last_hour": 3}
}

test_non_numeric_migration_count_fails_closed if {
	actions.deny["context.migrations_last_hour is not a number (3), failing closed"] with input.action as "migrate_vm"
		with input.resource as {"id": "vm-7"}
		with input.context as {"migrations_last_hour": "3"}
}

test_other_runbooks_are_not_limited if {
	count(actions.deny) == 0 with input.action as "run_runbook"
		with input.runbook as {"id": "notify", "implements": []}
		with input.resource as {"id": "web"}
		with input.context as {"incident": true, "migrations_last_hour": 10}
}

test_a_gitops_rollback_needs_approval if {
	actions.approval_required["rolling back a deploy (gitops-revert on svc-checkout) needs a person's approval"] with input.action as "run_runbook"
		with input.runbook as {"id": "gitops-revert", "implements": ["gitops_rollback"]}
		with input.resource as {"id": "svc-checkout", "environment": "staging"}
		with input.context as {"confidence": 1}
}

test_a_gitops_rollback_needs_approval_even_when_the_proposer_does_not_ask if {
	count(actions.approval_required) == 1 with input.action as "run_runbook"
		with input.runbook as {"id": "argocd-rollback", "implements": ["gitops_rollback"]}
		with input.resource as {"id": "shop"}
		with input.context as {"requires_approval": false, "confidence": 1}
}

test_other_runbooks_need_no_rollback_approval if {
	count(actions.approval_required) == 0 with input.action as "run_runbook"
		with input.runbook as {"id": "notify", "implements": []}
		with input.resource as {"id": "svc-checkout", "environment": "staging"}
		with input.context as {"confidence": 1}
}
