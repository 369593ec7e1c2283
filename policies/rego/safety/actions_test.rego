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
