# METADATA
# title: AWS database, cache and messaging controls
package novacron.compliance.aws_data

import data.novacron.compliance.lib
import rego.v1

cfg := input.config

rds := {"aws_db_instance", "aws_rds_cluster"}

deny contains "aws-rds-encrypted" if {
	input.type in rds
	not cfg.storage_encrypted == true
}

deny contains "aws-rds-not-public" if {
	input.type in {"aws_db_instance", "aws_rds_cluster_instance"}
	cfg.publicly_accessible == true
}

deny contains "aws-rds-auto-minor-upgrade" if {
	input.type in {"aws_db_instance", "aws_rds_cluster_instance"}
	cfg.auto_minor_version_upgrade == false
}

deny contains "aws-rds-backup-retention" if {
	input.type in rds
	object.get(cfg, "backup_retention_period", 0) < 7
}

deny contains "aws-rds-multi-az" if {
	input.type == "aws_db_instance"
	not cfg.multi_az == true
}

deny contains "aws-rds-deletion-protection" if {
	input.type in rds
	not cfg.deletion_protection == true
}

deny contains "aws-rds-iam-auth" if {
	input.type in rds
	not cfg.iam_database_authentication_enabled == true
}

deny contains "aws-rds-log-exports" if {
	input.type in rds
	count(lib.list_of(cfg, "enabled_cloudwatch_logs_exports")) == 0
}

deny contains "aws-dynamodb-pitr" if {
	input.type == "aws_dynamodb_table"
	not lib.block(cfg, "point_in_time_recovery").enabled == true
}

deny contains "aws-elasticache-at-rest-encryption" if {
	input.type == "aws_elasticache_replication_group"
	not cfg.at_rest_encryption_enabled == true
}

deny contains "aws-elasticache-in-transit-encryption" if {
	input.type == "aws_elasticache_replication_group"
	not cfg.transit_encryption_enabled == true
}

deny contains "aws-sqs-encrypted" if {
	input.type == "aws_sqs_queue"
	not lib.non_empty(cfg.kms_master_key_id)
	not cfg.sqs_managed_sse_enabled == true
}

deny contains "aws-sns-encrypted" if {
	input.type == "aws_sns_topic"
	not lib.non_empty(cfg.kms_master_key_id)
}

deny contains "aws-redshift-encrypted" if {
	input.type == "aws_redshift_cluster"
	not cfg.encrypted == true
}

deny contains "aws-redshift-not-public" if {
	input.type == "aws_redshift_cluster"
	cfg.publicly_accessible == true
}
