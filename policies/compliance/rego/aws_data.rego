# METADATA
# title: AWS database, cache and messaging controls
package novacron.compliance.aws_data

import data.novacron.compliance.lib
import rego.v1

cfg := input.config

rds := {"aws_db_instance", "aws_rds_cluster"}

deny contains "aws-rds-encrypted" if {
	input.type in rds
	lib.not_true(cfg, "storage_encrypted")
}

deny contains "aws-rds-not-public" if {
	input.type in {"aws_db_instance", "aws_rds_cluster_instance"}
	lib.is_true(cfg, "publicly_accessible")
}

deny contains "aws-rds-auto-minor-upgrade" if {
	input.type in {"aws_db_instance", "aws_rds_cluster_instance"}
	lib.is_false(cfg, "auto_minor_version_upgrade")
}

# Unset, the retention period is computed by AWS at apply time: unknown in a plan, not a
# violation; a state shows the real value.
deny contains id if {
	input.type in rds
	some id, p in lib.variants("aws-rds-backup-retention")
	lib.below(lib.number(cfg, "backup_retention_period", 0), p.min_days)
}

deny contains "aws-rds-multi-az" if {
	input.type == "aws_db_instance"
	lib.not_true(cfg, "multi_az")
}

deny contains "aws-rds-deletion-protection" if {
	input.type in rds
	lib.not_true(cfg, "deletion_protection")
}

deny contains "aws-rds-iam-auth" if {
	input.type in rds
	lib.not_true(cfg, "iam_database_authentication_enabled")
}

deny contains "aws-rds-log-exports" if {
	input.type in rds
	lib.empty(cfg, "enabled_cloudwatch_logs_exports")
}

deny contains "aws-dynamodb-pitr" if {
	input.type == "aws_dynamodb_table"
	lib.not_true(lib.block(cfg, "point_in_time_recovery"), "enabled")
}

deny contains "aws-elasticache-at-rest-encryption" if {
	input.type == "aws_elasticache_replication_group"
	lib.not_true(cfg, "at_rest_encryption_enabled")
}

deny contains "aws-elasticache-in-transit-encryption" if {
	input.type == "aws_elasticache_replication_group"
	lib.not_true(cfg, "transit_encryption_enabled")
}

deny contains "aws-sqs-encrypted" if {
	input.type == "aws_sqs_queue"
	lib.empty(cfg, "kms_master_key_id")
	lib.not_true(cfg, "sqs_managed_sse_enabled")
}

deny contains "aws-sns-encrypted" if {
	input.type == "aws_sns_topic"
	lib.empty(cfg, "kms_master_key_id")
}

deny contains "aws-redshift-encrypted" if {
	input.type == "aws_redshift_cluster"
	lib.not_true(cfg, "encrypted")
}

deny contains "aws-redshift-not-public" if {
	input.type == "aws_redshift_cluster"
	lib.is_true(cfg, "publicly_accessible")
}
