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
