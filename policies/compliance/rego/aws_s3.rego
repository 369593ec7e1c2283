# METADATA
# title: AWS S3 controls
package novacron.compliance.aws_s3

import data.novacron.compliance.lib
import rego.v1

cfg := input.config

public_acls := {"public-read", "public-read-write", "authenticated-read"}

block_flags := ["block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"]

deny contains "aws-s3-public-access-block" if {
	input.type in {"aws_s3_bucket_public_access_block", "aws_s3_account_public_access_block"}
	some flag in block_flags
	not cfg[flag] == true
}

deny contains "aws-s3-acl-not-public" if {
	input.type in {"aws_s3_bucket", "aws_s3_bucket_acl"}
	cfg.acl in public_acls
}

deny contains "aws-s3-acl-not-public" if {
	input.type == "aws_s3_bucket_acl"
	some policy in cfg.access_control_policy
	some grant in policy.grant
	some grantee in grant.grantee
	endswith(grantee.uri, "/global/AllUsers")
}

valid_sse(rules) if {
	some r in rules
	lib.block(r, "apply_server_side_encryption_by_default").sse_algorithm in {"AES256", "aws:kms", "aws:kms:dsse"}
}

deny contains "aws-s3-encryption" if {
	input.type == "aws_s3_bucket_server_side_encryption_configuration"
	not valid_sse(cfg.rule)
}

# On the bucket itself the attribute is computed (AWS encrypts new buckets by default), so only
# a declared, empty or invalid configuration is a violation.
deny contains "aws-s3-encryption" if {
	input.type == "aws_s3_bucket"
	is_array(cfg.server_side_encryption_configuration)
	not valid_sse(lib.block(cfg, "server_side_encryption_configuration").rule)
}

deny contains "aws-s3-kms-cmk" if {
	input.type == "aws_s3_bucket_server_side_encryption_configuration"
	not kms_cmk
}

kms_cmk if {
	some r in cfg.rule
	sse := lib.block(r, "apply_server_side_encryption_by_default")
	sse.sse_algorithm in {"aws:kms", "aws:kms:dsse"}
	lib.non_empty(sse.kms_master_key_id)
}

deny contains "aws-s3-versioning" if {
	input.type == "aws_s3_bucket_versioning"
	not lib.block(cfg, "versioning_configuration").status == "Enabled"
}

deny contains "aws-s3-versioning" if {
	input.type == "aws_s3_bucket"
	lib.block(cfg, "versioning").enabled == false
}

deny contains "aws-s3-mfa-delete" if {
	input.type == "aws_s3_bucket_versioning"
	not lib.block(cfg, "versioning_configuration").mfa_delete == "Enabled"
}

deny contains "aws-s3-access-logging" if {
	input.type == "aws_s3_bucket_logging"
	not lib.non_empty(cfg.target_bucket)
}

deny contains "aws-s3-access-logging" if {
	input.type == "aws_s3_bucket"
	is_array(cfg.logging)
	not lib.non_empty(lib.block(cfg, "logging").target_bucket)
}

deny contains "aws-s3-deny-insecure-transport" if {
	input.type == "aws_s3_bucket_policy"
	not denies_http
}

denies_http if {
	some s in lib.statements(cfg.policy)
	s.Effect == "Deny"
	lower(sprintf("%v", [s.Condition.Bool["aws:SecureTransport"]])) == "false"
}

deny contains "aws-s3-policy-no-public-principal" if {
	input.type == "aws_s3_bucket_policy"
	some s in lib.statements(cfg.policy)
	lib.public_allow(s)
}
