package novacron.compliance.aws_s3_test

# Unit tests of the S3 public-access and ACL controls, one pass and one fail example per
# condition (`novacron policy test policies/compliance/rego`). Inputs are set with
# input.type/config overrides: the in-process engine evaluates those.
import data.novacron.compliance.aws_s3
import rego.v1

all_blocked := {"block_public_acls": true, "block_public_policy": true, "ignore_public_acls": true, "restrict_public_buckets": true}

all_users := "http://acs.amazonaws.com/groups/global/AllUsers"

test_every_public_access_flag_must_be_set if {
	# (a bare rule reference as the `with` value is misread by the in-process engine: a copy)
	not "aws-s3-public-access-block" in aws_s3.deny with input.type as "aws_s3_bucket_public_access_block" with input.config as object.union(all_blocked, {})
	every flag in object.keys(all_blocked) {
		"aws-s3-public-access-block" in aws_s3.deny with input.type as "aws_s3_bucket_public_access_block" with input.config as object.union(all_blocked, {flag: false})
	}
	"aws-s3-public-access-block" in aws_s3.deny with input.type as "aws_s3_bucket_public_access_block" with input.config as object.remove(all_blocked, ["ignore_public_acls"])
	not "aws-s3-public-access-block" in aws_s3.deny with input.type as "aws_s3_bucket_public_access_block" with input.config as object.union(all_blocked, {"block_public_acls": {"__unknown__": "known after apply"}})
}

test_a_bucket_is_judged_with_its_merged_block if {
	not "aws-s3-public-access-block" in aws_s3.deny with input.type as "aws_s3_bucket" with input.config as {"public_access_block": all_blocked}
	"aws-s3-public-access-block" in aws_s3.deny with input.type as "aws_s3_bucket" with input.config as {}
	"aws-s3-public-access-block" in aws_s3.deny with input.type as "aws_s3_account_public_access_block" with input.config as object.union(all_blocked, {"restrict_public_buckets": false})
}

test_public_acls_and_grants if {
	"aws-s3-acl-not-public" in aws_s3.deny with input.type as "aws_s3_bucket" with input.config as {"acl": "public-read"}
	"aws-s3-acl-not-public" in aws_s3.deny with input.type as "aws_s3_bucket_acl" with input.config as {"acl": "authenticated-read"}
	not "aws-s3-acl-not-public" in aws_s3.deny with input.type as "aws_s3_bucket" with input.config as {"acl": "private"}
	"aws-s3-acl-not-public" in aws_s3.deny with input.type as "aws_s3_bucket" with input.config as {"grant": [{"uri": "http://example.com/x"}, {"uri": all_users}]}
	not "aws-s3-acl-not-public" in aws_s3.deny with input.type as "aws_s3_bucket" with input.config as {"grant": [{"id": "owner"}]}
	"aws-s3-acl-not-public" in aws_s3.deny with input.type as "aws_s3_bucket_acl" with input.config as {"access_control_policy": [{"grant": [{"grantee": [{"id": "o"}, {"uri": all_users}]}]}]}
	not "aws-s3-acl-not-public" in aws_s3.deny with input.type as "aws_s3_bucket_acl" with input.config as {"access_control_policy": [{"grant": [{"grantee": [{"id": "o"}]}]}]}
}
