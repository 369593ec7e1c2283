# METADATA
# title: Data residency
# description: resources holding personal data stay in the EU; their history is never deleted by automation; judged on what will run.
# custom:
#   policy_type: data_governance
#   enforcement: block
package novacron.data_governance.residency

import rego.v1

eu_regions := {"eu-west-1", "eu-central-1", "eu-north-1"}

personal_data if object.get(input.resource, ["labels", "data_class"], "") in {"pii", "personal"}

# What will run: the decision's type and every action type its runbook implements.
effects contains input.action

effects contains kind if some kind in object.get(input, ["runbook", "implements"], [])

purges_history if "purge_history" in effects

purges_history if object.get(input, ["runbook", "id"], "") in {"purge-history", "purge_history"}

deny contains msg if {
	"migrate_vm" in effects
	personal_data
	target := object.get(input.context, ["params", "target_region"], "")
	not target in eu_regions
	msg := sprintf("resource %s holds personal data and may not move to '%s' (outside the EU)", [input.resource.id, target])
}

deny contains msg if {
	personal_data
	purges_history
	msg := sprintf("history of %s is under retention and may not be purged", [input.resource.id])
}
