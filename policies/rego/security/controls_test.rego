package novacron.security.controls_test

import data.novacron.security.controls
import rego.v1

test_disable_firewall_denied if {
	controls.deny["disabling the security feature 'firewall' is not allowed"] with input.action as "disable_feature"
		with input.context as {"params": {"feature": "firewall"}}
}

test_disable_other_feature_allowed if {
	count(controls.deny) == 0 with input.action as "disable_feature"
		with input.context as {"params": {"feature": "beta_ui"}}
}

test_accept_public_access_drift_denied if {
	count(controls.deny) == 1 with input.action as "accept_drift"
		with input.context as {"params": {"fields": ["tags", "public_access"]}}
}

test_disabling_firewall_through_a_runbook_is_denied if {
	count(controls.deny) == 1 with input.action as "run_runbook"
		with input.runbook as {"id": "feature-disable", "implements": ["disable_feature"]}
		with input.context as {"params": {"feature": "firewall"}}
}

test_drift_field_as_json_pointer_is_denied if {
	controls.deny["accepting drift on the security field '/encryption' is not allowed"] with input.action as "accept_drift"
		with input.context as {"params": {"fields": ["/encryption"]}}
}

test_enabling_a_protected_feature_is_allowed if {
	count(controls.deny) == 0 with input.action as "enable_feature"
		with input.runbook as {"id": "feature-enable", "implements": ["enable_feature"]}
		with input.context as {"params": {"feature": "firewall"}}
}
