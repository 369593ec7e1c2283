package novacron.access.rbac_test

# rego-cpp (regopy) aborts on `with input as {object}` when the rule under test references other
# rules, so these tests replace input one key at a time (`with input.subject as ...`).
import data.novacron.access.rbac
import rego.v1

test_admin_may_write if {
	rbac.allow with input.subject as {"user": "ana", "role": "admin"}
		with input.action as "write"
		with input.resource as {"type": "policy"}
}

test_operator_may_read if {
	rbac.allow with input.subject as {"user": "olu", "role": "operator"}
		with input.action as "read"
		with input.resource as {"type": "policy"}
}

test_operator_may_approve if {
	rbac.allow with input.subject as {"user": "olu", "role": "operator"}
		with input.action as "approve"
		with input.resource as {"type": "approval"}
}

test_operator_may_not_write if {
	not rbac.allow with input.subject as {"user": "olu", "role": "operator"}
		with input.action as "write"
		with input.resource as {"type": "policy"}
}

test_viewer_may_not_approve if {
	rbac.deny["role 'viewer' may not approve approval"] with input.subject as {"user": "vi", "role": "viewer"}
		with input.action as "approve"
		with input.resource as {"type": "approval"}
}

test_unknown_role_denied if {
	not rbac.allow with input.subject as {"user": "x", "role": "intruder"}
		with input.action as "read"
		with input.resource as {"type": "policy"}
}
