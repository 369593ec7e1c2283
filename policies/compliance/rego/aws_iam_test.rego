package novacron.compliance.aws_iam_test

# Unit tests of the IAM, KMS, CloudTrail, CloudWatch Logs, Config, GuardDuty and EKS controls, one
# pass and one fail example per condition (`novacron policy test policies/compliance/rego`).
# Inputs are set with input.type/config/params overrides: the in-process engine evaluates those
# (a whole `with input as` it does not).
import data.novacron.compliance.aws_iam
import rego.v1

marker := {"__unknown__": "known after apply"}

# The verdicts for one input. Every assertion goes through these functions, so the file has one
# `with` site per input shape: the in-process engine compiles a copy of the package under test
# for each `with` site (a few hundred MB each for the larger packages), and writing `with` in
# every assertion would need gigabytes.
deny_of(t, c) := d if {
	d := aws_iam.deny with input.type as t with input.config as c
}

deny_with(t, c, p) := d if {
	d := aws_iam.deny with input.type as t with input.config as c with input.params as p
}

# input.params as the library builds it: the CIS default and the PCI DSS variant.
params := {
	"aws-iam-password-length": {"aws-iam-password-length": {"min_length": 14}, "aws-iam-password-length-pci-dss": {"min_length": 12}},
	"aws-iam-password-reuse": {"aws-iam-password-reuse": {"remember": 24}, "aws-iam-password-reuse-pci-dss": {"remember": 4}},
	"aws-iam-password-complexity": {
		"aws-iam-password-complexity": {"require": ["uppercase", "lowercase", "numbers", "symbols"]},
		"aws-iam-password-complexity-pci-dss": {"require": ["letters", "numbers"]},
	},
	"aws-iam-password-max-age": {"aws-iam-password-max-age": {"max_days": 90}},
	"aws-log-group-retention": {"aws-log-group-retention": {"min_days": 365}},
}

doc(statements) := json.marshal({"Version": "2012-10-17", "Statement": statements})

allow(action, resource) := {"Effect": "Allow", "Action": action, "Resource": resource}

# --- IAM policies and attachments ----------------------------------------------------------------

test_admin_policies_fail if {
	"aws-iam-no-admin-policy" in deny_of("aws_iam_policy", {"policy": json.marshal({"Statement": allow("*", "*")})})
	"aws-iam-no-admin-policy" in deny_of("aws_iam_role_policy", {"policy": doc([allow("s3:GetObject", "*"), allow("*", "*")])})
	"aws-iam-no-admin-policy" in deny_of("aws_iam_user_policy", {"policy": doc([allow(["s3:GetObject", "*"], ["arn:aws:s3:::b", "*"])])})
	"aws-iam-no-admin-policy" in deny_of("aws_iam_group_policy", {"policy": {"Statement": [allow(["*"], "*")]}})
}

test_scoped_denied_and_unknown_policies_pass if {
	not "aws-iam-no-admin-policy" in deny_of("aws_iam_policy", {"policy": doc([allow("logs:GetLogEvents", "*")])})
	not "aws-iam-no-admin-policy" in deny_of("aws_iam_policy", {"policy": doc([allow("*", "arn:aws:s3:::b")])})
	not "aws-iam-no-admin-policy" in deny_of("aws_iam_policy", {"policy": doc([{"Effect": "Deny", "Action": "*", "Resource": "*"}])})
	not "aws-iam-no-admin-policy" in deny_of("aws_iam_policy", {"policy": marker})
	not "aws-iam-no-admin-policy" in deny_of("aws_iam_policy", {})
	not "aws-iam-no-admin-policy" in deny_of("aws_s3_bucket_policy", {"policy": doc([allow("*", "*")])})
}

test_policies_are_not_attached_to_users if {
	"aws-iam-no-user-attachments" in deny_of("aws_iam_policy_attachment", {"users": ["alice"]})
	"aws-iam-no-user-attachments" in deny_of("aws_iam_policy_attachment", {"groups": ["ops"], "users": ["alice", "bob"]})
	not "aws-iam-no-user-attachments" in deny_of("aws_iam_policy_attachment", {"groups": ["auditors"], "users": []})
	not "aws-iam-no-user-attachments" in deny_of("aws_iam_policy_attachment", {"roles": ["r"]})
	not "aws-iam-no-user-attachments" in deny_of("aws_iam_policy_attachment", {"users": marker})
}

# --- the account password policy (CIS default and PCI DSS variant) -------------------------------

strong := {
	"minimum_password_length": 14, "password_reuse_prevention": 24, "max_password_age": 90,
	"require_uppercase_characters": true, "require_lowercase_characters": true,
	"require_numbers": true, "require_symbols": true,
}

test_a_strong_password_policy_passes_every_variant if {
	count(deny_with("aws_iam_account_password_policy", object.union(strong, {}), params)) == 0
}

test_password_length_per_variant if {
	d1 := deny_with("aws_iam_account_password_policy", object.union(strong, {"minimum_password_length": 13}), params)
	"aws-iam-password-length" in d1
	not "aws-iam-password-length-pci-dss" in d1
	d2 := deny_with("aws_iam_account_password_policy", object.union(strong, {"minimum_password_length": 11}), params)
	"aws-iam-password-length" in d2
	"aws-iam-password-length-pci-dss" in d2
	d3 := deny_with("aws_iam_account_password_policy", object.union(strong, {"minimum_password_length": "12"}), params)
	not "aws-iam-password-length-pci-dss" in d3
	d4 := deny_with("aws_iam_account_password_policy", object.remove(strong, ["minimum_password_length"]), params)
	"aws-iam-password-length-pci-dss" in d4
	d5 := deny_with("aws_iam_account_password_policy", object.union(strong, {"minimum_password_length": marker}), params)
	not "aws-iam-password-length" in d5
	not "aws-iam-password-length-pci-dss" in d5
}

test_password_reuse_per_variant if {
	d1 := deny_with("aws_iam_account_password_policy", object.union(strong, {"password_reuse_prevention": 23}), params)
	"aws-iam-password-reuse" in d1
	not "aws-iam-password-reuse-pci-dss" in d1
	d2 := deny_with("aws_iam_account_password_policy", object.union(strong, {"password_reuse_prevention": 3}), params)
	"aws-iam-password-reuse-pci-dss" in d2
	d3 := deny_with("aws_iam_account_password_policy", object.union(strong, {"password_reuse_prevention": 4}), params)
	not "aws-iam-password-reuse-pci-dss" in d3
	d4 := deny_with("aws_iam_account_password_policy", object.remove(strong, ["password_reuse_prevention"]), params)
	"aws-iam-password-reuse-pci-dss" in d4
	d5 := deny_with("aws_iam_account_password_policy", object.union(strong, {"password_reuse_prevention": marker}), params)
	not "aws-iam-password-reuse" in d5
}

test_every_required_character_class if {
	every flag in ["require_uppercase_characters", "require_lowercase_characters", "require_numbers", "require_symbols"] {
		"aws-iam-password-complexity" in deny_with("aws_iam_account_password_policy", object.union(strong, {flag: false}), params)
		"aws-iam-password-complexity" in deny_with("aws_iam_account_password_policy", object.remove(strong, [flag]), params)
		not "aws-iam-password-complexity" in deny_with("aws_iam_account_password_policy", object.union(strong, {flag: marker}), params)
	}
}

test_pci_letters_need_either_case if {
	d1 := deny_with("aws_iam_account_password_policy", object.union(strong, {"require_uppercase_characters": false, "require_symbols": false}), params)
	"aws-iam-password-complexity" in d1
	not "aws-iam-password-complexity-pci-dss" in d1
	d2 := deny_with("aws_iam_account_password_policy", object.union(strong, {"require_lowercase_characters": false}), params)
	not "aws-iam-password-complexity-pci-dss" in d2
	d3 := deny_with("aws_iam_account_password_policy", object.union(strong, {"require_uppercase_characters": false, "require_lowercase_characters": false}), params)
	"aws-iam-password-complexity-pci-dss" in d3
	d4 := deny_with("aws_iam_account_password_policy", object.union(strong, {"require_numbers": false}), params)
	"aws-iam-password-complexity-pci-dss" in d4
	d5 := deny_with("aws_iam_account_password_policy", object.union(strong, {"require_uppercase_characters": false, "require_lowercase_characters": marker}), params)
	not "aws-iam-password-complexity-pci-dss" in d5
}

test_passwords_expire_within_the_limit if {
	not "aws-iam-password-max-age" in deny_with("aws_iam_account_password_policy", object.union(strong, {"max_password_age": 1}), params)
	not "aws-iam-password-max-age" in deny_with("aws_iam_account_password_policy", object.union(strong, {"max_password_age": "90"}), params)
	"aws-iam-password-max-age" in deny_with("aws_iam_account_password_policy", object.union(strong, {"max_password_age": 91}), params)
	"aws-iam-password-max-age" in deny_with("aws_iam_account_password_policy", object.union(strong, {"max_password_age": 0}), params)
	"aws-iam-password-max-age" in deny_with("aws_iam_account_password_policy", object.remove(strong, ["max_password_age"]), params)
	not "aws-iam-password-max-age" in deny_with("aws_iam_account_password_policy", object.union(strong, {"max_password_age": marker}), params)
}

# --- CloudTrail ----------------------------------------------------------------------------------

good_trail := {
	"is_multi_region_trail": true, "include_global_service_events": true,
	"enable_log_file_validation": true, "kms_key_id": "arn:aws:kms:eu-west-1:1:key/k",
	"cloud_watch_logs_group_arn": "arn:aws:logs:eu-west-1:1:log-group:trail:*",
}

test_a_well_configured_trail_passes if {
	count(deny_of("aws_cloudtrail", object.union(good_trail, {}))) == 0
}

test_trail_flags if {
	"aws-cloudtrail-multi-region" in deny_of("aws_cloudtrail", object.union(good_trail, {"is_multi_region_trail": false}))
	"aws-cloudtrail-multi-region" in deny_of("aws_cloudtrail", object.remove(good_trail, ["is_multi_region_trail"]))
	not "aws-cloudtrail-multi-region" in deny_of("aws_cloudtrail", object.union(good_trail, {"is_multi_region_trail": marker}))
	"aws-cloudtrail-global-events" in deny_of("aws_cloudtrail", object.union(good_trail, {"include_global_service_events": false}))
	not "aws-cloudtrail-global-events" in deny_of("aws_cloudtrail", object.remove(good_trail, ["include_global_service_events"]))
	"aws-cloudtrail-log-validation" in deny_of("aws_cloudtrail", object.union(good_trail, {"enable_log_file_validation": false}))
	"aws-cloudtrail-log-validation" in deny_of("aws_cloudtrail", object.remove(good_trail, ["enable_log_file_validation"]))
	not "aws-cloudtrail-log-validation" in deny_of("aws_cloudtrail", object.union(good_trail, {"enable_log_file_validation": marker}))
}

test_trail_kms_and_cloudwatch if {
	"aws-cloudtrail-kms" in deny_of("aws_cloudtrail", object.union(good_trail, {"kms_key_id": ""}))
	"aws-cloudtrail-kms" in deny_of("aws_cloudtrail", object.remove(good_trail, ["kms_key_id"]))
	not "aws-cloudtrail-kms" in deny_of("aws_cloudtrail", object.union(good_trail, {"kms_key_id": marker}))
	"aws-cloudtrail-cloudwatch" in deny_of("aws_cloudtrail", object.union(good_trail, {"cloud_watch_logs_group_arn": null}))
	"aws-cloudtrail-cloudwatch" in deny_of("aws_cloudtrail", object.remove(good_trail, ["cloud_watch_logs_group_arn"]))
	not "aws-cloudtrail-cloudwatch" in deny_of("aws_cloudtrail", object.union(good_trail, {"cloud_watch_logs_group_arn": marker}))
}

# --- KMS -----------------------------------------------------------------------------------------

test_symmetric_keys_rotate if {
	not "aws-kms-rotation" in deny_of("aws_kms_key", {"enable_key_rotation": true})
	"aws-kms-rotation" in deny_of("aws_kms_key", {"enable_key_rotation": false})
	"aws-kms-rotation" in deny_of("aws_kms_key", {"customer_master_key_spec": "SYMMETRIC_DEFAULT"})
	not "aws-kms-rotation" in deny_of("aws_kms_key", {"customer_master_key_spec": "RSA_2048", "enable_key_rotation": false})
	not "aws-kms-rotation" in deny_of("aws_kms_key", {"customer_master_key_spec": marker})
	not "aws-kms-rotation" in deny_of("aws_kms_key", {"enable_key_rotation": marker})
}

test_key_policies_are_not_public if {
	"aws-kms-policy-no-public" in deny_of("aws_kms_key", {"enable_key_rotation": true, "policy": doc([{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}])})
	"aws-kms-policy-no-public" in deny_of("aws_kms_key_policy", {"policy": doc([{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "kms:*"}, {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::1:root", "*"]}, "Action": "kms:Decrypt"}])})
	not "aws-kms-policy-no-public" in deny_of("aws_kms_key_policy", {"policy": doc([{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "kms:*"}])})
	not "aws-kms-policy-no-public" in deny_of("aws_kms_key_policy", {"policy": doc([{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Condition": {"StringEquals": {"kms:CallerAccount": "1"}}}])})
	not "aws-kms-policy-no-public" in deny_of("aws_kms_key_policy", {"policy": doc([{"Effect": "Deny", "Principal": "*", "Action": "kms:*"}])})
	not "aws-kms-policy-no-public" in deny_of("aws_kms_key_policy", {"policy": marker})
}

# --- CloudWatch log groups -----------------------------------------------------------------------

test_log_group_retention if {
	"aws-log-group-retention" in deny_with("aws_cloudwatch_log_group", {"kms_key_id": "k", "retention_in_days": 364}, params)
	"aws-log-group-retention" in deny_with("aws_cloudwatch_log_group", {"kms_key_id": "k", "retention_in_days": "30"}, params)
	not "aws-log-group-retention" in deny_with("aws_cloudwatch_log_group", {"kms_key_id": "k", "retention_in_days": 365}, params)
	not "aws-log-group-retention" in deny_with("aws_cloudwatch_log_group", {"kms_key_id": "k", "retention_in_days": 0}, params)
	not "aws-log-group-retention" in deny_with("aws_cloudwatch_log_group", {"kms_key_id": "k"}, params)
	not "aws-log-group-retention" in deny_with("aws_cloudwatch_log_group", {"kms_key_id": "k", "retention_in_days": marker}, params)
}

test_log_group_kms if {
	not "aws-log-group-kms" in deny_of("aws_cloudwatch_log_group", {"kms_key_id": "arn:aws:kms:eu-west-1:1:key/k"})
	"aws-log-group-kms" in deny_of("aws_cloudwatch_log_group", {"kms_key_id": ""})
	"aws-log-group-kms" in deny_of("aws_cloudwatch_log_group", {})
	not "aws-log-group-kms" in deny_of("aws_cloudwatch_log_group", {"kms_key_id": marker})
}

# --- AWS Config and GuardDuty --------------------------------------------------------------------

test_config_recorder_records_everything if {
	not "aws-config-recorder-all" in deny_of("aws_config_configuration_recorder", {"recording_group": [{"all_supported": true, "include_global_resource_types": true}]})
	"aws-config-recorder-all" in deny_of("aws_config_configuration_recorder", {"recording_group": [{"all_supported": false, "include_global_resource_types": true}]})
	"aws-config-recorder-all" in deny_of("aws_config_configuration_recorder", {"recording_group": [{"all_supported": true, "include_global_resource_types": false}]})
	"aws-config-recorder-all" in deny_of("aws_config_configuration_recorder", {"recording_group": [{"all_supported": true}]})
	"aws-config-recorder-all" in deny_of("aws_config_configuration_recorder", {"name": "r"})
	not "aws-config-recorder-all" in deny_of("aws_config_configuration_recorder", {"recording_group": [{"all_supported": true, "include_global_resource_types": marker}]})
	not "aws-config-recorder-all" in deny_of("aws_config_configuration_recorder", {"recording_group": marker})
}

test_guardduty_fails_only_when_disabled if {
	"aws-guardduty-enabled" in deny_of("aws_guardduty_detector", {"enable": false})
	not "aws-guardduty-enabled" in deny_of("aws_guardduty_detector", {"enable": true})
	not "aws-guardduty-enabled" in deny_of("aws_guardduty_detector", {})
	not "aws-guardduty-enabled" in deny_of("aws_guardduty_detector", {"enable": marker})
}

# --- EKS -----------------------------------------------------------------------------------------

good_eks := {
	"vpc_config": [{"endpoint_public_access": false, "endpoint_private_access": true}],
	"encryption_config": [{"resources": ["secrets"]}],
	"enabled_cluster_log_types": ["api", "audit", "authenticator"],
}

test_a_well_configured_eks_cluster_passes if {
	count(deny_of("aws_eks_cluster", object.union(good_eks, {}))) == 0
}

test_eks_public_endpoint if {
	"aws-eks-private-endpoint" in deny_of("aws_eks_cluster", object.union(good_eks, {"vpc_config": [{"subnet_ids": ["s"]}]}))
	"aws-eks-private-endpoint" in deny_of("aws_eks_cluster", object.remove(good_eks, ["vpc_config"]))
	"aws-eks-private-endpoint" in deny_of("aws_eks_cluster", object.union(good_eks, {"vpc_config": [{"endpoint_public_access": true, "public_access_cidrs": ["0.0.0.0/0"]}]}))
	"aws-eks-private-endpoint" in deny_of("aws_eks_cluster", object.union(good_eks, {"vpc_config": [{"public_access_cidrs": ["203.0.113.0/24", "0.0.0.0/0"]}]}))
	not "aws-eks-private-endpoint" in deny_of("aws_eks_cluster", object.union(good_eks, {"vpc_config": [{"endpoint_public_access": true, "public_access_cidrs": ["203.0.113.0/24"]}]}))
	not "aws-eks-private-endpoint" in deny_of("aws_eks_cluster", object.union(good_eks, {"vpc_config": [{"endpoint_public_access": false, "public_access_cidrs": ["0.0.0.0/0"]}]}))
	not "aws-eks-private-endpoint" in deny_of("aws_eks_cluster", object.union(good_eks, {"vpc_config": [{"endpoint_public_access": marker}]}))
	not "aws-eks-private-endpoint" in deny_of("aws_eks_cluster", object.union(good_eks, {"vpc_config": [{"public_access_cidrs": marker}]}))
	not "aws-eks-private-endpoint" in deny_of("aws_eks_cluster", object.union(good_eks, {"vpc_config": marker}))
}

test_eks_secrets_encryption if {
	"aws-eks-secrets-encryption" in deny_of("aws_eks_cluster", object.remove(good_eks, ["encryption_config"]))
	"aws-eks-secrets-encryption" in deny_of("aws_eks_cluster", object.union(good_eks, {"encryption_config": [{"resources": []}]}))
	"aws-eks-secrets-encryption" in deny_of("aws_eks_cluster", object.union(good_eks, {"encryption_config": [{"resources": ["configmaps"]}]}))
	not "aws-eks-secrets-encryption" in deny_of("aws_eks_cluster", object.union(good_eks, {"encryption_config": [{"resources": ["configmaps"]}, {"resources": ["secrets"]}]}))
	not "aws-eks-secrets-encryption" in deny_of("aws_eks_cluster", object.union(good_eks, {"encryption_config": marker}))
	not "aws-eks-secrets-encryption" in deny_of("aws_eks_cluster", object.union(good_eks, {"encryption_config": [{"resources": marker}]}))
}

test_eks_control_plane_logs if {
	"aws-eks-control-plane-logging" in deny_of("aws_eks_cluster", object.union(good_eks, {"enabled_cluster_log_types": ["audit", "authenticator", "scheduler"]}))
	"aws-eks-control-plane-logging" in deny_of("aws_eks_cluster", object.union(good_eks, {"enabled_cluster_log_types": ["api", "authenticator"]}))
	"aws-eks-control-plane-logging" in deny_of("aws_eks_cluster", object.union(good_eks, {"enabled_cluster_log_types": ["api", "audit"]}))
	"aws-eks-control-plane-logging" in deny_of("aws_eks_cluster", object.remove(good_eks, ["enabled_cluster_log_types"]))
	not "aws-eks-control-plane-logging" in deny_of("aws_eks_cluster", object.union(good_eks, {"enabled_cluster_log_types": ["scheduler", "authenticator", "audit", "api"]}))
	not "aws-eks-control-plane-logging" in deny_of("aws_eks_cluster", object.union(good_eks, {"enabled_cluster_log_types": marker}))
	not "aws-eks-control-plane-logging" in deny_of("aws_eks_cluster", object.union(good_eks, {"enabled_cluster_log_types": ["api", "audit", marker]}))
}
