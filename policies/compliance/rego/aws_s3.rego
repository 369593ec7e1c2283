# METADATA
# title: AWS S3 controls
# description: >-
#   A bucket is judged with its companion resources merged in (policies/compliance/graph.py):
#   encryption, versioning, logging, ACL, policy and public-access block in the provider v3
#   inline shape. A companion whose bucket is not in the plan is judged on its own.
package novacron.compliance.aws_s3

import data.novacron.compliance.lib
import rego.v1

cfg := input.config

bucket := "aws_s3_bucket"

block_flags := ["block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"]

pab_types := {"aws_s3_bucket_public_access_block", "aws_s3_account_public_access_block"}

# The four public-access-block flags of a bucket (merged block) or of a block resource.
pab := lib.get(cfg, "public_access_block") if input.type == bucket

pab := cfg if input.type in pab_types

deny contains "aws-s3-public-access-block" if {
	input.type in pab_types | {bucket}
	some flag in block_flags
	lib.not_true(pab_or_empty, flag)
}

pab_or_empty := p if {
	p := pab
	p != null
} else := {}

public_acls := {"public-read", "public-read-write", "authenticated-read"}

public_groups := {"http://acs.amazonaws.com/groups/global/AllUsers", "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"}

deny contains "aws-s3-acl-not-public" if {
	input.type in {bucket, "aws_s3_bucket_acl"}
	lib.get(cfg, "acl") in public_acls
}

deny contains "aws-s3-acl-not-public" if {
	input.type == bucket
	some grant in lib.list_of(cfg, "grant")
	lib.get(grant, "uri") in public_groups
}

deny contains "aws-s3-acl-not-public" if {
	input.type == "aws_s3_bucket_acl"
	some policy in lib.list_of(cfg, "access_control_policy")
	some grant in lib.list_of(policy, "grant")
	some grantee in lib.list_of(grant, "grantee")
	lib.get(grantee, "uri") in public_groups
}

# Rules of the default-encryption configuration (bucket: merged inline block; companion: rule).
sse_rules := lib.get(lib.block(cfg, "server_side_encryption_configuration"), "rule") if input.type == bucket

sse_rules := lib.get(cfg, "rule") if input.type == "aws_s3_bucket_server_side_encryption_configuration"

sse_types := {bucket, "aws_s3_bucket_server_side_encryption_configuration"}

algorithms := {"AES256", "aws:kms", "aws:kms:dsse"}

valid_sse(rules) if {
	some r in rules
	lib.get(lib.block(r, "apply_server_side_encryption_by_default"), "sse_algorithm") in algorithms
}

deny contains "aws-s3-encryption" if {
	input.type in sse_types
	rules := sse_rules
	not lib.unknown_under(rules)
	not valid_sse(rules_or_empty(rules))
}

rules_or_empty(r) := r if is_array(r)

rules_or_empty(r) := [] if not is_array(r)

deny contains "aws-s3-kms-cmk" if {
	input.type in sse_types
	rules := sse_rules
	not lib.unknown_under(rules)
	not kms_cmk(rules_or_empty(rules))
}

kms_cmk(rules) if {
	some r in rules
	sse := lib.block(r, "apply_server_side_encryption_by_default")
	lib.get(sse, "sse_algorithm") in {"aws:kms", "aws:kms:dsse"}
	lib.non_empty(lib.get(sse, "kms_master_key_id"))
}

# Versioning: {enabled, mfa_delete} of the bucket (merged), or the companion's configuration.
versioning := v if {
	input.type == bucket
	v := lib.block(cfg, "versioning")
}

versioning := {"enabled": on(lib.get(vc, "status")), "mfa_delete": on(lib.get(vc, "mfa_delete"))} if {
	input.type == "aws_s3_bucket_versioning"
	vc := lib.block(cfg, "versioning_configuration")
}

# "Enabled" → true, anything else known → false, unknown stays unknown.
on(v) := v if lib.unknown(v)
else := true if v == "Enabled"
else := false

versioning_types := {bucket, "aws_s3_bucket_versioning"}

deny contains "aws-s3-versioning" if {
	input.type in versioning_types
	lib.not_true(versioning, "enabled")
}

deny contains "aws-s3-mfa-delete" if {
	input.type in versioning_types
	lib.not_true(versioning, "mfa_delete")
}

deny contains "aws-s3-access-logging" if {
	input.type == bucket
	lib.empty(lib.block(cfg, "logging"), "target_bucket")
}

deny contains "aws-s3-access-logging" if {
	input.type == "aws_s3_bucket_logging"
	lib.empty(cfg, "target_bucket")
}

policy_types := {bucket, "aws_s3_bucket_policy"}

# A bucket without a policy does not deny HTTP either (CIS: every bucket).
deny contains "aws-s3-deny-insecure-transport" if {
	input.type in policy_types
	policy := lib.get(cfg, "policy")
	lib.known(policy)
	not denies_http(policy)
}

denies_http(policy) if {
	some s in lib.statements(policy)
	s.Effect == "Deny"
	lower(sprintf("%v", [s.Condition.Bool["aws:SecureTransport"]])) == "false"
}

deny contains "aws-s3-policy-no-public-principal" if {
	input.type in policy_types
	some s in lib.statements(lib.get(cfg, "policy"))
	lib.public_allow(s)
}
