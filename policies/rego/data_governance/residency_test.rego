package novacron.data_governance.residency_test

import data.novacron.data_governance.residency
import rego.v1

test_pii_stays_in_eu if {
	count(residency.deny) == 1 with input.action as "migrate_vm"
		with input.resource as {"id": "db-1", "labels": {"data_class": "pii"}}
		with input.context as {"params": {"target_region": "us-east-1"}}
}

test_pii_moves_within_eu if {
	count(residency.deny) == 0 with input.action as "migrate_vm"
		with input.resource as {"id": "db-1", "labels": {"data_class": "pii"}}
		with input.context as {"params": {"target_region": "eu-central-1"}}
}

test_public_data_moves_anywhere if {
	count(residency.deny) == 0 with input.action as "migrate_vm"
		with input.resource as {"id": "cdn-1", "labels": {"data_class": "public"}}
		with input.context as {"params": {"target_region": "us-east-1"}}
}

test_purge_runbook_is_denied_for_personal_data if {
	count(residency.deny) == 1 with input.action as "run_runbook"
		with input.runbook as {"id": "purge-history", "implements": []}
		with input.resource as {"id": "db-1", "labels": {"data_class": "pii"}}
		with input.context as {"params": {}}
}

test_migrating_runbook_keeps_pii_in_eu if {
	count(residency.deny) == 1 with input.action as "rebalance_load"
		with input.runbook as {"id": "mover", "implements": ["migrate_vm"]}
		with input.resource as {"id": "db-1", "labels": {"data_class": "pii"}}
		with input.context as {"params": {"target_region": "us-east-1"}}
}
