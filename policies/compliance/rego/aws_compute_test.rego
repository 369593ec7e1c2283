package novacron.compliance.aws_compute_test

# Unit tests of the EC2, EBS and EFS controls, one pass and one fail example per condition
# (`novacron policy test policies/compliance/rego`). Inputs are set with input.type/config
# overrides: the in-process engine evaluates those (a whole `with input as` it does not).
import data.novacron.compliance.aws_compute
import rego.v1

marker := {"__unknown__": "known after apply"}

# The verdicts for one input. Every assertion goes through these functions, so the file has one
# `with` site per input shape: the in-process engine compiles a copy of the package under test
# for each `with` site (a few hundred MB each for the larger packages), and writing `with` in
# every assertion would need gigabytes.
deny_of(t, c) := d if {
	d := aws_compute.deny with input.type as t with input.config as c
}

test_ebs_volumes_are_encrypted if {
	not "aws-ebs-encrypted" in deny_of("aws_ebs_volume", {"encrypted": true})
	"aws-ebs-encrypted" in deny_of("aws_ebs_volume", {"encrypted": false})
	"aws-ebs-encrypted" in deny_of("aws_ebs_volume", {"size": 10})
	not "aws-ebs-encrypted" in deny_of("aws_ebs_volume", {"encrypted": marker})
	not "aws-ebs-encrypted" in deny_of("aws_ebs_snapshot", {"encrypted": false})
}

test_default_ebs_encryption_fails_only_when_switched_off if {
	"aws-ebs-default-encryption" in deny_of("aws_ebs_encryption_by_default", {"enabled": false})
	not "aws-ebs-default-encryption" in deny_of("aws_ebs_encryption_by_default", {"enabled": true})
	not "aws-ebs-default-encryption" in deny_of("aws_ebs_encryption_by_default", {})
	not "aws-ebs-default-encryption" in deny_of("aws_ebs_encryption_by_default", {"enabled": marker})
}

secure_instance := {
	"associate_public_ip_address": false,
	"monitoring": true,
	"metadata_options": [{"http_endpoint": "enabled", "http_tokens": "required"}],
	"root_block_device": [{"encrypted": true}],
	"ebs_block_device": [{"encrypted": true}, {"encrypted": true}],
}

test_a_well_configured_instance_and_launch_template_pass if {
	count(deny_of("aws_instance", object.union(secure_instance, {}))) == 0
	count(deny_of("aws_launch_template", {"metadata_options": [{"http_tokens": "required"}], "block_device_mappings": [{"ebs": [{"encrypted": true}]}, {"device_name": "/dev/sdb"}]})) == 0
}

test_every_instance_volume_is_encrypted if {
	"aws-instance-volumes-encrypted" in deny_of("aws_instance", object.union(secure_instance, {"root_block_device": [{"encrypted": false}]}))
	"aws-instance-volumes-encrypted" in deny_of("aws_instance", object.union(secure_instance, {"root_block_device": [{"volume_size": 8}]}))
	"aws-instance-volumes-encrypted" in deny_of("aws_instance", object.union(secure_instance, {"ebs_block_device": [{"encrypted": false}, {"encrypted": true}]}))
	"aws-instance-volumes-encrypted" in deny_of("aws_instance", object.union(secure_instance, {"ebs_block_device": [{"encrypted": true}, {"encrypted": false}]}))
	not "aws-instance-volumes-encrypted" in deny_of("aws_instance", object.remove(secure_instance, ["root_block_device", "ebs_block_device"]))
	not "aws-instance-volumes-encrypted" in deny_of("aws_instance", object.union(secure_instance, {"ebs_block_device": [{"encrypted": marker}]}))
}

test_every_launch_template_volume_is_encrypted if {
	"aws-instance-volumes-encrypted" in deny_of("aws_launch_template", {"block_device_mappings": [{"ebs": [{"encrypted": false}]}]})
	"aws-instance-volumes-encrypted" in deny_of("aws_launch_template", {"block_device_mappings": [{"ebs": [{"encrypted": true}]}, {"ebs": [{"volume_size": 20}]}]})
	not "aws-instance-volumes-encrypted" in deny_of("aws_launch_template", {"block_device_mappings": [{"ebs": [{"encrypted": true}]}, {"ebs": [{"encrypted": true}]}]})
	not "aws-instance-volumes-encrypted" in deny_of("aws_launch_template", {"block_device_mappings": [{"ebs": [{"encrypted": marker}]}]})
	not "aws-instance-volumes-encrypted" in deny_of("aws_launch_template", {"root_block_device": [{"encrypted": false}]})
}

test_imdsv2_is_required_unless_the_endpoint_is_off if {
	"aws-instance-imdsv2" in deny_of("aws_instance", object.union(secure_instance, {"metadata_options": [{"http_tokens": "optional"}]}))
	"aws-instance-imdsv2" in deny_of("aws_instance", object.remove(secure_instance, ["metadata_options"]))
	"aws-instance-imdsv2" in deny_of("aws_launch_template", {"metadata_options": [{"http_endpoint": "enabled", "http_tokens": "optional"}]})
	not "aws-instance-imdsv2" in deny_of("aws_instance", object.union(secure_instance, {"metadata_options": [{"http_endpoint": "disabled", "http_tokens": "optional"}]}))
	not "aws-instance-imdsv2" in deny_of("aws_launch_template", {"metadata_options": [{"http_tokens": "required"}]})
	not "aws-instance-imdsv2" in deny_of("aws_instance", object.union(secure_instance, {"metadata_options": [{"http_tokens": marker}]}))
	not "aws-instance-imdsv2" in deny_of("aws_instance", object.union(secure_instance, {"metadata_options": marker}))
	not "aws-instance-imdsv2" in deny_of("aws_ebs_volume", {"encrypted": true})
}

test_instances_have_no_public_ip if {
	"aws-instance-no-public-ip" in deny_of("aws_instance", object.union(secure_instance, {"associate_public_ip_address": true}))
	not "aws-instance-no-public-ip" in deny_of("aws_instance", object.remove(secure_instance, ["associate_public_ip_address"]))
	not "aws-instance-no-public-ip" in deny_of("aws_instance", object.union(secure_instance, {"associate_public_ip_address": marker}))
	not "aws-instance-no-public-ip" in deny_of("aws_launch_template", {"associate_public_ip_address": true})
}

test_instances_have_detailed_monitoring if {
	"aws-instance-detailed-monitoring" in deny_of("aws_instance", object.union(secure_instance, {"monitoring": false}))
	"aws-instance-detailed-monitoring" in deny_of("aws_instance", object.remove(secure_instance, ["monitoring"]))
	not "aws-instance-detailed-monitoring" in deny_of("aws_instance", object.union(secure_instance, {"monitoring": marker}))
	not "aws-instance-detailed-monitoring" in deny_of("aws_launch_template", {"monitoring": false})
}

test_efs_file_systems_are_encrypted if {
	not "aws-efs-encrypted" in deny_of("aws_efs_file_system", {"encrypted": true})
	"aws-efs-encrypted" in deny_of("aws_efs_file_system", {"encrypted": false})
	"aws-efs-encrypted" in deny_of("aws_efs_file_system", {})
	not "aws-efs-encrypted" in deny_of("aws_efs_file_system", {"encrypted": marker})
}
