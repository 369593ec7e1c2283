package novacron.resource.quota_test

import data.novacron.resource.quota
import rego.v1

test_within_quota if {
	count(quota.deny) == 0 with input.action as "scale_up"
		with input.resource as {"id": "web", "active_vms": 4, "cost_per_hour": 8}
		with input.context as {"params": {"delta": 2}, "quota": {"max_vms": 10}}
}

test_over_vm_quota if {
	quota.deny["scale_up to 12 VMs exceeds the quota of 10"] with input.action as "scale_up"
		with input.resource as {"id": "web", "active_vms": 10, "cost_per_hour": 8}
		with input.context as {"params": {"delta": 2}, "quota": {"max_vms": 10}}
}

test_over_budget if {
	count(quota.deny) == 1 with input.action as "scale_up"
		with input.resource as {"id": "web", "active_vms": 2, "cost_per_hour": 100}
		with input.context as {"params": {"delta": 2}, "quota": {"max_cost_per_hour": 150}}
}

test_scale_down_not_limited if {
	count(quota.deny) == 0 with input.action as "scale_down"
		with input.resource as {"id": "web", "active_vms": 100}
		with input.context as {"quota": {"max_vms": 10}}
}

# A string delta is not a number: denied, never compared (that comparison is undefined in regopy).
test_string_delta_is_denied if {
	quota.deny["params.delta is not a number (1000), failing closed"] with input.action as "scale_up"
		with input.resource as {"id": "web", "active_vms": 4, "cost_per_hour": 8}
		with input.context as {"params": {"delta": "1000"}, "quota": {"max_vms": 10}}
}

test_boolean_delta_is_denied if {
	count(quota.deny) == 1 with input.action as "scale_up"
		with input.resource as {"id": "web", "active_vms": 4}
		with input.context as {"params": {"delta": true}}
}

# The quota applies to the runbook's effect, whatever action type carried it.
test_quota_applies_to_a_scaling_runbook if {
	quota.deny["scale_up to 1004 VMs exceeds the quota of 50"] with input.action as "rebalance_load"
		with input.runbook as {"id": "scale-up", "implements": ["scale_up"]}
		with input.resource as {"id": "web", "active_vms": 4}
		with input.context as {"params": {"delta": 1000}}
}

test_non_numeric_fact_fails_closed if {
	count(quota.deny) == 1 with input.action as "scale_up"
		with input.resource as {"id": "web", "active_vms": "4"}
		with input.context as {"params": {"delta": 1}}
}
