# METADATA
# title: Resource quotas
# description: scale-ups stay within the cluster's VM quota and hourly cost budget.
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

deny contains msg if {
	input.action == "scale_up"
	target := object.get(input.resource, "active_vms", 0) + delta
	target > max_vms
	msg := sprintf("scale_up to %d VMs exceeds the quota of %d", [target, max_vms])
}

deny contains msg if {
	input.action == "scale_up"
	cost := object.get(input.resource, "cost_per_hour", 0)
	vms := object.get(input.resource, "active_vms", 0)
	vms > 0
	projected := cost * (vms + delta) / vms
	projected > max_cost
	msg := sprintf("scale_up raises cost to %.2f/h, above the budget of %.2f/h", [projected, max_cost])
}
