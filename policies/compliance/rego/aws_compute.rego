# METADATA
# title: AWS compute and storage controls (EC2, EBS, EFS)
package novacron.compliance.aws_compute

import data.novacron.compliance.lib
import rego.v1

cfg := input.config

deny contains "aws-ebs-encrypted" if {
	input.type == "aws_ebs_volume"
	lib.not_true(cfg, "encrypted")
}

# The resource exists to turn the setting on: absent means the provider default (true).
deny contains "aws-ebs-default-encryption" if {
	input.type == "aws_ebs_encryption_by_default"
	lib.is_false(cfg, "enabled")
}

deny contains "aws-instance-volumes-encrypted" if {
	input.type in {"aws_instance", "aws_launch_template"}
	some d in devices
	lib.not_true(d, "encrypted")
}

devices contains d if {
	input.type == "aws_instance"
	some key in ["root_block_device", "ebs_block_device"]
	some d in lib.list_of(cfg, key)
}

devices contains d if {
	input.type == "aws_launch_template"
	some m in lib.list_of(cfg, "block_device_mappings")
	some d in lib.list_of(m, "ebs")
}

# IMDSv2 is required unless the metadata endpoint is switched off.
deny contains "aws-instance-imdsv2" if {
	input.type in {"aws_instance", "aws_launch_template"}
	meta := lib.block(cfg, "metadata_options")
	lib.differs(meta, "http_endpoint", "disabled")
	lib.differs(meta, "http_tokens", "required")
}

deny contains "aws-instance-no-public-ip" if {
	input.type == "aws_instance"
	lib.is_true(cfg, "associate_public_ip_address")
}

deny contains "aws-instance-detailed-monitoring" if {
	input.type == "aws_instance"
	lib.not_true(cfg, "monitoring")
}

deny contains "aws-efs-encrypted" if {
	input.type == "aws_efs_file_system"
	lib.not_true(cfg, "encrypted")
}
