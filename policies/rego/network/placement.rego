# METADATA
# title: Network placement
# description: migrations stay in allowed regions and do not cross into a high-latency zone; judged on what will run.
# custom:
#   policy_type: network
#   enforcement: warn
package novacron.network.placement

import rego.v1

default_allowed_regions := ["eu-west-1", "eu-central-1", "us-east-1"]

allowed_regions := object.get(input.context, "allowed_regions", default_allowed_regions)

target_region := object.get(input.context, ["params", "target_region"], "")

# What will run: the decision's type and every action type its runbook implements.
effects contains input.action

effects contains kind if some kind in object.get(input, ["runbook", "implements"], [])

deny contains msg if {
	"migrate_vm" in effects
	target_region != ""
	not target_region in allowed_regions
	msg := sprintf("migration target region '%s' is not in the allowed regions", [target_region])
}

deny contains msg if {
	"migrate_vm" in effects
	latency := object.get(input.context, ["params", "target_latency_ms"], null)
	is_number(latency)
	latency > object.get(input.context, "max_latency_ms", 50)
	msg := sprintf("migration target latency %v ms is above the limit", [latency])
}
