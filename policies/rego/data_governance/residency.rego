# METADATA
# title: Data residency
# description: resources holding personal data stay in the EU; their history is never deleted by automation.
# custom:
#   policy_type: data_governance
#   enforcement: block
package novacron.data_governance.residency

import rego.v1

eu_regions := {"eu-west-1", "eu-central-1", "eu-north-1"}

personal_data if object.get(input.resource, ["labels", "data_class"], "") in {"pii", "personal"}

deny contains msg if {
	input.action == "migrate_vm"
	personal_data
	target := object.get(input.context, ["params", "target_region"], "")
	not target in eu_regions
	msg := sprintf("resource %s holds personal data and may not move to '%s' (outside the EU)", [input.resource.id, target])
}

deny contains msg if {
	input.action == "run_runbook"
	personal_data
	object.get(input.context, ["params", "runbook"], "") == "purge_history"
	msg := sprintf("history of %s is under retention and may not be purged", [input.resource.id])
}
