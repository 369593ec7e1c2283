package novacron.compliance.aws_data_test

# Unit tests of the RDS, DynamoDB, ElastiCache, SQS, SNS and Redshift controls, one pass and one
# fail example per condition (`novacron policy test policies/compliance/rego`). Inputs are set
# with input.type/config/params overrides: the in-process engine evaluates those (a whole
# `with input as` it does not).
import data.novacron.compliance.aws_data
import rego.v1

marker := {"__unknown__": "known after apply"}

# The verdicts for one input. Every assertion goes through these functions, so the file has one
# `with` site per input shape: the in-process engine compiles a copy of the package under test
# for each `with` site (a few hundred MB each for the larger packages), and writing `with` in
# every assertion would need gigabytes.
deny_of(t, c) := d if {
	d := aws_data.deny with input.type as t with input.config as c
}

deny_with(t, c, p) := d if {
	d := aws_data.deny with input.type as t with input.config as c with input.params as p
}

retention := {"aws-rds-backup-retention": {"aws-rds-backup-retention": {"min_days": 7}, "aws-rds-backup-retention-x": {"min_days": 14}}}

good_db := {
	"storage_encrypted": true, "publicly_accessible": false, "auto_minor_version_upgrade": true,
	"backup_retention_period": 14, "multi_az": true, "deletion_protection": true,
	"iam_database_authentication_enabled": true, "enabled_cloudwatch_logs_exports": ["postgresql"],
}

good_cluster := object.remove(good_db, ["publicly_accessible", "auto_minor_version_upgrade", "multi_az"])

test_well_configured_databases_pass if {
	count(deny_with("aws_db_instance", object.union(good_db, {}), retention)) == 0
	count(deny_with("aws_rds_cluster", object.union(good_cluster, {}), retention)) == 0
	count(deny_of("aws_rds_cluster_instance", {"publicly_accessible": false})) == 0
}

test_rds_storage_is_encrypted if {
	"aws-rds-encrypted" in deny_of("aws_db_instance", object.union(good_db, {"storage_encrypted": false}))
	"aws-rds-encrypted" in deny_of("aws_rds_cluster", object.remove(good_cluster, ["storage_encrypted"]))
	not "aws-rds-encrypted" in deny_of("aws_db_instance", object.union(good_db, {"storage_encrypted": marker}))
	not "aws-rds-encrypted" in deny_of("aws_rds_cluster_instance", {"storage_encrypted": false})
}

test_rds_instances_are_not_public if {
	"aws-rds-not-public" in deny_of("aws_db_instance", object.union(good_db, {"publicly_accessible": true}))
	"aws-rds-not-public" in deny_of("aws_rds_cluster_instance", {"publicly_accessible": true})
	not "aws-rds-not-public" in deny_of("aws_db_instance", object.remove(good_db, ["publicly_accessible"]))
	not "aws-rds-not-public" in deny_of("aws_db_instance", object.union(good_db, {"publicly_accessible": marker}))
	not "aws-rds-not-public" in deny_of("aws_rds_cluster", {"publicly_accessible": true})
}

test_minor_upgrades_fail_only_when_switched_off if {
	"aws-rds-auto-minor-upgrade" in deny_of("aws_db_instance", object.union(good_db, {"auto_minor_version_upgrade": false}))
	"aws-rds-auto-minor-upgrade" in deny_of("aws_rds_cluster_instance", {"auto_minor_version_upgrade": false})
	not "aws-rds-auto-minor-upgrade" in deny_of("aws_db_instance", object.remove(good_db, ["auto_minor_version_upgrade"]))
	not "aws-rds-auto-minor-upgrade" in deny_of("aws_db_instance", object.union(good_db, {"auto_minor_version_upgrade": marker}))
}

test_backup_retention_per_variant if {
	d1 := deny_with("aws_db_instance", object.union(good_db, {"backup_retention_period": 6}), retention)
	"aws-rds-backup-retention" in d1
	"aws-rds-backup-retention-x" in d1
	d2 := deny_with("aws_rds_cluster", object.union(good_cluster, {"backup_retention_period": 7}), retention)
	not "aws-rds-backup-retention" in d2
	"aws-rds-backup-retention-x" in d2
	d3 := deny_with("aws_db_instance", object.union(good_db, {"backup_retention_period": "13"}), retention)
	not "aws-rds-backup-retention" in d3
	"aws-rds-backup-retention-x" in d3
	d4 := deny_with("aws_db_instance", object.union(good_db, {"backup_retention_period": 14}), retention)
	not "aws-rds-backup-retention-x" in d4
	d5 := deny_with("aws_db_instance", object.remove(good_db, ["backup_retention_period"]), retention)
	"aws-rds-backup-retention" in d5
	d6 := deny_with("aws_db_instance", object.union(good_db, {"backup_retention_period": marker}), retention)
	not "aws-rds-backup-retention" in d6
	not "aws-rds-backup-retention-x" in d6
	d7 := deny_with("aws_rds_cluster_instance", {"backup_retention_period": 0}, retention)
	not "aws-rds-backup-retention" in d7
}

test_rds_instances_are_multi_az if {
	"aws-rds-multi-az" in deny_of("aws_db_instance", object.union(good_db, {"multi_az": false}))
	"aws-rds-multi-az" in deny_of("aws_db_instance", object.remove(good_db, ["multi_az"]))
	not "aws-rds-multi-az" in deny_of("aws_db_instance", object.union(good_db, {"multi_az": marker}))
	not "aws-rds-multi-az" in deny_of("aws_rds_cluster", object.union(good_cluster, {"multi_az": false}))
}

test_rds_deletion_protection_and_iam_auth if {
	"aws-rds-deletion-protection" in deny_of("aws_db_instance", object.union(good_db, {"deletion_protection": false}))
	"aws-rds-deletion-protection" in deny_of("aws_rds_cluster", object.remove(good_cluster, ["deletion_protection"]))
	not "aws-rds-deletion-protection" in deny_of("aws_rds_cluster", object.union(good_cluster, {"deletion_protection": marker}))
	"aws-rds-iam-auth" in deny_of("aws_rds_cluster", object.union(good_cluster, {"iam_database_authentication_enabled": false}))
	"aws-rds-iam-auth" in deny_of("aws_db_instance", object.remove(good_db, ["iam_database_authentication_enabled"]))
	not "aws-rds-iam-auth" in deny_of("aws_db_instance", object.union(good_db, {"iam_database_authentication_enabled": marker}))
}

test_rds_exports_logs if {
	"aws-rds-log-exports" in deny_of("aws_db_instance", object.union(good_db, {"enabled_cloudwatch_logs_exports": []}))
	"aws-rds-log-exports" in deny_of("aws_rds_cluster", object.remove(good_cluster, ["enabled_cloudwatch_logs_exports"]))
	not "aws-rds-log-exports" in deny_of("aws_rds_cluster", object.union(good_cluster, {"enabled_cloudwatch_logs_exports": ["audit", "error"]}))
	not "aws-rds-log-exports" in deny_of("aws_db_instance", object.union(good_db, {"enabled_cloudwatch_logs_exports": marker}))
}

test_dynamodb_point_in_time_recovery if {
	not "aws-dynamodb-pitr" in deny_of("aws_dynamodb_table", {"point_in_time_recovery": [{"enabled": true}]})
	"aws-dynamodb-pitr" in deny_of("aws_dynamodb_table", {"point_in_time_recovery": [{"enabled": false}]})
	"aws-dynamodb-pitr" in deny_of("aws_dynamodb_table", {"name": "t"})
	not "aws-dynamodb-pitr" in deny_of("aws_dynamodb_table", {"point_in_time_recovery": marker})
	not "aws-dynamodb-pitr" in deny_of("aws_dynamodb_table", {"point_in_time_recovery": [{"enabled": marker}]})
}

test_elasticache_encryption if {
	d1 := deny_of("aws_elasticache_replication_group", {"at_rest_encryption_enabled": true, "transit_encryption_enabled": true})
	not "aws-elasticache-at-rest-encryption" in d1
	not "aws-elasticache-in-transit-encryption" in d1
	d2 := deny_of("aws_elasticache_replication_group", {"at_rest_encryption_enabled": false})
	"aws-elasticache-at-rest-encryption" in d2
	"aws-elasticache-in-transit-encryption" in d2
	d3 := deny_of("aws_elasticache_replication_group", {"at_rest_encryption_enabled": marker, "transit_encryption_enabled": false})
	not "aws-elasticache-at-rest-encryption" in d3
	"aws-elasticache-in-transit-encryption" in d3
	d4 := deny_of("aws_elasticache_replication_group", {"at_rest_encryption_enabled": false, "transit_encryption_enabled": marker})
	"aws-elasticache-at-rest-encryption" in d4
	not "aws-elasticache-in-transit-encryption" in d4
}

test_sqs_queues_are_encrypted_either_way if {
	not "aws-sqs-encrypted" in deny_of("aws_sqs_queue", {"kms_master_key_id": "alias/queues"})
	not "aws-sqs-encrypted" in deny_of("aws_sqs_queue", {"sqs_managed_sse_enabled": true})
	"aws-sqs-encrypted" in deny_of("aws_sqs_queue", {"kms_master_key_id": "", "sqs_managed_sse_enabled": false})
	"aws-sqs-encrypted" in deny_of("aws_sqs_queue", {})
	not "aws-sqs-encrypted" in deny_of("aws_sqs_queue", {"kms_master_key_id": marker})
	not "aws-sqs-encrypted" in deny_of("aws_sqs_queue", {"sqs_managed_sse_enabled": marker})
}

test_sns_topics_are_encrypted if {
	not "aws-sns-encrypted" in deny_of("aws_sns_topic", {"kms_master_key_id": "alias/aws/sns"})
	"aws-sns-encrypted" in deny_of("aws_sns_topic", {"kms_master_key_id": ""})
	"aws-sns-encrypted" in deny_of("aws_sns_topic", {})
	not "aws-sns-encrypted" in deny_of("aws_sns_topic", {"kms_master_key_id": marker})
	not "aws-sns-encrypted" in deny_of("aws_sqs_queue", {"sqs_managed_sse_enabled": true})
}

test_redshift_is_encrypted_and_private if {
	d1 := deny_of("aws_redshift_cluster", {"encrypted": true, "publicly_accessible": false})
	not "aws-redshift-encrypted" in d1
	not "aws-redshift-not-public" in d1
	d2 := deny_of("aws_redshift_cluster", {"publicly_accessible": true})
	"aws-redshift-encrypted" in d2
	"aws-redshift-not-public" in d2
	d3 := deny_of("aws_redshift_cluster", {"encrypted": marker, "publicly_accessible": marker})
	not "aws-redshift-encrypted" in d3
	not "aws-redshift-not-public" in d3
	d4 := deny_of("aws_redshift_cluster", {"encrypted": false})
	"aws-redshift-encrypted" in d4
	not "aws-redshift-not-public" in d4
}
