# METADATA
# title: Network placement
# description: migrations stay in allowed regions and do not cross into a high-latency zone.
# custom:
#   policy_type: network
#   enforcement: warn
package novacron.network.placement

import rego.v1

default_allowed_regions := ["eu-west-1", "eu-central-1", "us-east-1"]

allowed_regions := object.get(input.context, "allowed_regions", default_allowed_regions)

target_region := object.get(input.context, ["params", "target_region"], "")

deny contains msg if {
	input.action == "migrate_vm"
	target_region != ""
	not target_region in allowed_regions
	msg := sprintf("migration target region '%s' is not in the allowed regions", [target_region])
}

deny contains msg if {
	input.action == "migrate_vm"
	latency := object.get(input.context, ["params", "target_latency_ms"], 0)
	latency > object.get(input.context, "max_latency_ms", 50)
	msg := sprintf("migration target latency %v ms is above the limit", [latency])
}
