# METADATA
# title: Action safety
# description: no scale-down during an incident, at most N migrations per hour, production changes need approval; judged on what will run (the runbook's effects), whatever action type carried it.
# custom:
#   policy_type: action_safety
#   enforcement: block
package novacron.safety.actions

import rego.v1

max_migrations_per_hour := object.get(input.context, "max_migrations_per_hour", 3)

min_confidence := object.get(input.context, "min_confidence", 0.6)

# What will run: the decision's type and every action type its runbook implements.
effects contains input.action

effects contains kind if some kind in object.get(input, ["runbook", "implements"], [])

deny contains msg if {
	"scale_down" in effects
	object.get(input.context, "incident", false) == true
	msg := sprintf("no scale_down of %s during an open incident", [input.resource.id])
}

deny contains msg if {
	"migrate_vm" in effects
	done := object.get(input.context, "migrations_last_hour", 0)
	is_number(done)
	is_number(max_migrations_per_hour)
	done >= max_migrations_per_hour
	msg := sprintf("%v migrations of %s in the last hour (limit %v)", [done, input.resource.id, max_migrations_per_hour])
}

# Comparisons across types are undefined in regopy: a limit that is not a number denies.
deny contains msg if {
	"migrate_vm" in effects
	some name, value in {
		"migrations_last_hour": object.get(input.context, "migrations_last_hour", 0),
		"max_migrations_per_hour": max_migrations_per_hour,
	}
	not is_number(value)
	msg := sprintf("context.%s is not a number (%v), failing closed", [name, value])
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

# Rolling a deploy back (a git revert, an ArgoCD rollback) changes what runs in production on
# the word of an anomaly: a person approves it, whoever proposed it and whatever carried it.
approval_required contains msg if {
	"gitops_rollback" in effects
	msg := sprintf("rolling back a deploy (%s on %s) needs a person's approval", [object.get(input, ["runbook", "id"], input.action), input.resource.id])
}
