# METADATA
# title: Security controls
# description: automation never switches off security features and never accepts drift that weakens them.
# custom:
#   policy_type: security
#   enforcement: block
package novacron.security.controls

import rego.v1

protected_features := {"firewall", "encryption", "audit_logging", "mfa", "tls"}

deny contains msg if {
	input.action == "disable_feature"
	feature := object.get(input.context, ["params", "feature"], "")
	feature in protected_features
	msg := sprintf("disabling the security feature '%s' is not allowed", [feature])
}

deny contains msg if {
	input.action == "accept_drift"
	some field in object.get(input.context, ["params", "fields"], [])
	field in {"encryption", "public_access", "tls", "firewall"}
	msg := sprintf("accepting drift on the security field '%s' is not allowed", [field])
}
