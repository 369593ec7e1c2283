package novacron.network.placement_test

import data.novacron.network.placement
import rego.v1

test_allowed_region if {
	count(placement.deny) == 0 with input.action as "migrate_vm"
		with input.context as {"params": {"target_region": "eu-west-1", "target_latency_ms": 12}}
}

test_disallowed_region if {
	placement.deny["migration target region 'ap-south-1' is not in the allowed regions"] with input.action as "migrate_vm"
		with input.context as {"params": {"target_region": "ap-south-1"}}
}

test_high_latency if {
	count(placement.deny) == 1 with input.action as "migrate_vm"
		with input.context as {"params": {"target_latency_ms": 90}}
}

test_unknown_latency_is_not_a_violation if {
	count(placement.deny) == 0 with input.action as "migrate_vm"
		with input.context as {"params": {"target_region": "eu-west-1", "target_latency_ms": null}}
}

test_migrating_runbook_is_checked if {
	count(placement.deny) == 1 with input.action as "run_runbook"
		with input.runbook as {"id": "migrate-vm", "implements": ["migrate_vm"]}
		with input.context as {"params": {"target_region": "ap-south-1"}}
}
