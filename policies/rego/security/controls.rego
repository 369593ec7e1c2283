# METADATA
# title: Security controls
# description: automation never switches off security features and never accepts drift that weakens them; judged on what will run.
# custom:
#   policy_type: security
#   enforcement: block
package novacron.security.controls

import rego.v1

protected_features := {"firewall", "encryption", "audit_logging", "mfa", "tls"}

security_fields := {"encryption", "public_access", "tls", "firewall"}

# What will run: the decision's type and every action type its runbook implements.
effects contains input.action

effects contains kind if some kind in object.get(input, ["runbook", "implements"], [])

deny contains msg if {
	"disable_feature" in effects
	feature := object.get(input.context, ["params", "feature"], "")
	feature in protected_features
	msg := sprintf("disabling the security feature '%s' is not allowed", [feature])
}

deny contains msg if {
	"accept_drift" in effects
	some field in object.get(input.context, ["params", "fields"], [])
	trim_left(field, "/") in security_fields
	msg := sprintf("accepting drift on the security field '%s' is not allowed", [field])
}

deny contains msg if {
	"accept_drift" in effects
	fields := object.get(input.context, ["params", "fields"], [])
	not is_array(fields)
	msg := sprintf("params.fields is not a list (%v), failing closed", [fields])
}
