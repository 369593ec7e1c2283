# METADATA
# title: AWS identity, key management and audit logging controls
package novacron.compliance.aws_iam

import data.novacron.compliance.lib
import rego.v1

cfg := input.config

policy_types := {"aws_iam_policy", "aws_iam_role_policy", "aws_iam_user_policy", "aws_iam_group_policy"}

deny contains "aws-iam-no-admin-policy" if {
	input.type in policy_types
	some s in lib.statements(cfg.policy)
	s.Effect == "Allow"
	"*" in lib.as_array(s.Action)
	"*" in lib.as_array(s.Resource)
}

deny contains "aws-iam-no-user-attachments" if {
	input.type == "aws_iam_policy_attachment"
	count(lib.list_of(cfg, "users")) > 0
}

pw := "aws_iam_account_password_policy"

deny contains "aws-iam-password-length" if {
	input.type == pw
	object.get(cfg, "minimum_password_length", 0) < 14
}

deny contains "aws-iam-password-reuse" if {
	input.type == pw
	object.get(cfg, "password_reuse_prevention", 0) < 24
}

deny contains "aws-iam-password-complexity" if {
	input.type == pw
	some flag in ["require_uppercase_characters", "require_lowercase_characters", "require_numbers", "require_symbols"]
	not cfg[flag] == true
}

deny contains "aws-iam-password-max-age" if {
	input.type == pw
	age := object.get(cfg, "max_password_age", 0)
	not between(age, 1, 90)
}

between(x, lo, hi) if {
	is_number(x)
	lo <= x
	x <= hi
}

trail := "aws_cloudtrail"

deny contains "aws-cloudtrail-multi-region" if {
	input.type == trail
	not cfg.is_multi_region_trail == true
}

deny contains "aws-cloudtrail-global-events" if {
	input.type == trail
	cfg.include_global_service_events == false
}

deny contains "aws-cloudtrail-log-validation" if {
	input.type == trail
	not cfg.enable_log_file_validation == true
}

deny contains "aws-cloudtrail-kms" if {
	input.type == trail
	not lib.non_empty(cfg.kms_key_id)
}

deny contains "aws-cloudtrail-cloudwatch" if {
	input.type == trail
	not lib.non_empty(cfg.cloud_watch_logs_group_arn)
}

deny contains "aws-kms-rotation" if {
	input.type == "aws_kms_key"
	object.get(cfg, "customer_master_key_spec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT"
	not cfg.enable_key_rotation == true
}

deny contains "aws-kms-policy-no-public" if {
	input.type in {"aws_kms_key", "aws_kms_key_policy"}
	some s in lib.statements(cfg.policy)
	lib.public_allow(s)
}

deny contains "aws-log-group-retention" if {
	input.type == "aws_cloudwatch_log_group"
	days := object.get(cfg, "retention_in_days", 0)
	days != 0 # 0 means never expire
	days < 365
}

deny contains "aws-log-group-kms" if {
	input.type == "aws_cloudwatch_log_group"
	not lib.non_empty(cfg.kms_key_id)
}

deny contains "aws-config-recorder-all" if {
	input.type == "aws_config_configuration_recorder"
	group := lib.block(cfg, "recording_group")
	not records_everything(group)
}

records_everything(g) if {
	g.all_supported == true
	g.include_global_resource_types == true
}

deny contains "aws-guardduty-enabled" if {
	input.type == "aws_guardduty_detector"
	cfg.enable == false
}

deny contains "aws-eks-private-endpoint" if {
	input.type == "aws_eks_cluster"
	vpc := lib.block(cfg, "vpc_config")
	object.get(vpc, "endpoint_public_access", true) == true
	some cidr in object.get(vpc, "public_access_cidrs", ["0.0.0.0/0"])
	cidr == "0.0.0.0/0"
}

deny contains "aws-eks-secrets-encryption" if {
	input.type == "aws_eks_cluster"
	not encrypts_secrets
}

encrypts_secrets if {
	some e in lib.list_of(cfg, "encryption_config")
	"secrets" in e.resources
}

deny contains "aws-eks-control-plane-logging" if {
	input.type == "aws_eks_cluster"
	some kind in ["api", "audit", "authenticator"]
	not kind in lib.list_of(cfg, "enabled_cluster_log_types")
}
