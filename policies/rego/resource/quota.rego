# METADATA
# title: Resource quotas
# description: scale-ups stay within the cluster's VM quota and hourly cost budget; judged on what will run (the runbook's effects and its typed delta).
# custom:
#   policy_type: resource_allocation
#   enforcement: block
package novacron.resource.quota

import rego.v1

# Defaults when the context carries no quota for the resource's cluster.
default_max_vms := 50

default_max_cost_per_hour := 500

max_vms := object.get(input.context, ["quota", "max_vms"], default_max_vms)

max_cost := object.get(input.context, ["quota", "max_cost_per_hour"], default_max_cost_per_hour)

delta := object.get(input.context, ["params", "delta"], 1)

vms := object.get(input.resource, "active_vms", 0)

cost := object.get(input.resource, "cost_per_hour", 0)

# What will run: the decision's type and every action type its runbook implements.
effects contains input.action

effects contains kind if some kind in object.get(input, ["runbook", "implements"], [])

# Every number the quota reads must be one: "1000" compared with 50 is undefined in regopy,
# which would let the rules below pass silently.
deny contains msg if {
	"scale_up" in effects
	some name, value in {
		"params.delta": delta, "resource.active_vms": vms, "resource.cost_per_hour": cost,
		"quota.max_vms": max_vms, "quota.max_cost_per_hour": max_cost,
	}
	not is_number(value)
	msg := sprintf("%s is not a number (%v), failing closed", [name, value])
}

deny contains msg if {
	"scale_up" in effects
	is_number(delta)
	is_number(vms)
	is_number(max_vms)
	target := vms + delta
	target > max_vms
	msg := sprintf("scale_up to %v VMs exceeds the quota of %v", [target, max_vms])
}

deny contains msg if {
	"scale_up" in effects
	is_number(delta)
	is_number(vms)
	is_number(cost)
	is_number(max_cost)
	vms > 0
	projected := cost * (vms + delta) / vms
	projected > max_cost
	msg := sprintf("scale_up raises cost to %.2f/h, above the budget of %.2f/h", [projected, max_cost])
}
