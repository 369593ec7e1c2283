# METADATA
# title: Action safety
# description: no scale-down during an incident, at most N migrations per hour, production changes need approval.
# custom:
#   policy_type: action_safety
#   enforcement: block
package novacron.safety.actions

import rego.v1

max_migrations_per_hour := object.get(input.context, "max_migrations_per_hour", 3)

min_confidence := object.get(input.context, "min_confidence", 0.6)

deny contains msg if {
	input.action == "scale_down"
	object.get(input.context, "incident", false) == true
	msg := sprintf("no scale_down of %s during an open incident", [input.resource.id])
}

deny contains msg if {
	input.action == "migrate_vm"
	done := object.get(input.context, "migrations_last_hour", 0)
	done >= max_migrations_per_hour
	msg := sprintf("%d migrations of %s in the last hour (limit %d)", [done, input.resource.id, max_migrations_per_hour])
}

approval_required contains msg if {
	object.get(input.resource, "environment", "") == "production"
	input.action != "no_action"
	msg := sprintf("%s on production resource %s needs approval", [input.action, input.resource.id])
}

approval_required contains msg if {
	object.get(input.context, "confidence", 1) < min_confidence
	msg := sprintf("confidence %v is below %v", [input.context.confidence, min_confidence])
}
