# METADATA
# title: AWS identity, key management and audit logging controls
# description: Password thresholds are parameters; PCI DSS v4.0 gets its own variant (12/4).
package novacron.compliance.aws_iam

import data.novacron.compliance.lib
import rego.v1

cfg := input.config

policy_types := {"aws_iam_policy", "aws_iam_role_policy", "aws_iam_user_policy", "aws_iam_group_policy"}

deny contains "aws-iam-no-admin-policy" if {
	input.type in policy_types
	some s in lib.statements(lib.get(cfg, "policy"))
	s.Effect == "Allow"
	"*" in lib.as_array(s.Action)
	"*" in lib.as_array(s.Resource)
}

deny contains "aws-iam-no-user-attachments" if {
	input.type == "aws_iam_policy_attachment"
	lib.above(count(lib.list_of(cfg, "users")), 0)
}

pw := "aws_iam_account_password_policy"

# Absent attributes take the provider's defaults: length 6, no reuse prevention, no expiry.
deny contains id if {
	input.type == pw
	some id, p in lib.variants("aws-iam-password-length")
	lib.below(lib.number(cfg, "minimum_password_length", 6), p.min_length)
}

deny contains id if {
	input.type == pw
	some id, p in lib.variants("aws-iam-password-reuse")
	lib.below(lib.number(cfg, "password_reuse_prevention", 0), p.remember)
}

need_flags := {
	"uppercase": ["require_uppercase_characters"],
	"lowercase": ["require_lowercase_characters"],
	"numbers": ["require_numbers"],
	"symbols": ["require_symbols"],
	"letters": ["require_uppercase_characters", "require_lowercase_characters"],
}

satisfied(need) if {
	some flag in need_flags[need]
	lib.is_true(cfg, flag)
}

undecided(need) if {
	some flag in need_flags[need]
	lib.unknown(lib.get(cfg, flag))
}

deny contains id if {
	input.type == pw
	some id, p in lib.variants("aws-iam-password-complexity")
	some need in p.require
	not satisfied(need)
	not undecided(need)
}

deny contains id if {
	input.type == pw
	some id, p in lib.variants("aws-iam-password-max-age")
	age := lib.number(cfg, "max_password_age", 0)
	not expires_within(age, p.max_days)
}

expires_within(age, limit) if {
	lib.at_least(age, 1)
	lib.at_most(age, limit)
}

trail := "aws_cloudtrail"

deny contains "aws-cloudtrail-multi-region" if {
	input.type == trail
	lib.not_true(cfg, "is_multi_region_trail")
}

deny contains "aws-cloudtrail-global-events" if {
	input.type == trail
	lib.is_false(cfg, "include_global_service_events")
}

deny contains "aws-cloudtrail-log-validation" if {
	input.type == trail
	lib.not_true(cfg, "enable_log_file_validation")
}

deny contains "aws-cloudtrail-kms" if {
	input.type == trail
	lib.empty(cfg, "kms_key_id")
}

deny contains "aws-cloudtrail-cloudwatch" if {
	input.type == trail
	lib.empty(cfg, "cloud_watch_logs_group_arn")
}

deny contains "aws-kms-rotation" if {
	input.type == "aws_kms_key"
	lib.get(cfg, "customer_master_key_spec") in {null, "SYMMETRIC_DEFAULT"}
	lib.not_true(cfg, "enable_key_rotation")
}

deny contains "aws-kms-policy-no-public" if {
	input.type in {"aws_kms_key", "aws_kms_key_policy"}
	some s in lib.statements(lib.get(cfg, "policy"))
	lib.public_allow(s)
}

# retention_in_days 0 (or absent) keeps logs forever.
deny contains id if {
	input.type == "aws_cloudwatch_log_group"
	some id, p in lib.variants("aws-log-group-retention")
	days := lib.number(cfg, "retention_in_days", 0)
	days != 0
	lib.below(days, p.min_days)
}

deny contains "aws-log-group-kms" if {
	input.type == "aws_cloudwatch_log_group"
	lib.empty(cfg, "kms_key_id")
}

deny contains "aws-config-recorder-all" if {
	input.type == "aws_config_configuration_recorder"
	group := lib.block(cfg, "recording_group")
	not lib.unknown_under(group)
	not records_everything(group)
}

records_everything(g) if {
	g.all_supported == true
	g.include_global_resource_types == true
}

deny contains "aws-guardduty-enabled" if {
	input.type == "aws_guardduty_detector"
	lib.is_false(cfg, "enable")
}

# Public endpoint on (the default) and reachable from anywhere (the default CIDR list).
deny contains "aws-eks-private-endpoint" if {
	input.type == "aws_eks_cluster"
	vpc := lib.block(cfg, "vpc_config")
	lib.differs(vpc, "endpoint_public_access", false)
	some cidr in public_cidrs(lib.get(vpc, "public_access_cidrs"))
	lib.world_open(cidr)
}

public_cidrs(v) := ["0.0.0.0/0"] if v == null

public_cidrs(v) := v if is_array(v)

deny contains "aws-eks-secrets-encryption" if {
	input.type == "aws_eks_cluster"
	not lib.unknown_under(lib.get(cfg, "encryption_config"))
	not encrypts_secrets
}

encrypts_secrets if {
	some e in lib.list_of(cfg, "encryption_config")
	"secrets" in lib.list_of(e, "resources")
}

deny contains "aws-eks-control-plane-logging" if {
	input.type == "aws_eks_cluster"
	not lib.unknown_under(lib.get(cfg, "enabled_cluster_log_types"))
	some kind in ["api", "audit", "authenticator"]
	not kind in lib.list_of(cfg, "enabled_cluster_log_types")
}
