# METADATA
# title: Controls for NovaCron's own resource types (as the simulator and API emit them)
package novacron.compliance.novacron

import data.novacron.compliance.lib
import rego.v1

cfg := input.config

admin_ports := [22, 3389]

public_rule(rules, port) if {
	some r in rules
	lib.is_public(object.get(r, "cidr", ""))
	r.port == port
}

deny contains "novacron-vm-disk-encrypted" if {
	input.type == "novacron_vm"
	not cfg.disk_encrypted == true
}

deny contains "novacron-vm-no-public-ip" if {
	input.type == "novacron_vm"
	cfg.public_ip == true
}

deny contains "novacron-vm-no-public-admin-ports" if {
	input.type == "novacron_vm"
	some port in admin_ports
	public_rule(lib.list_of(cfg, "security_groups"), port)
}

deny contains "novacron-vm-monitoring" if {
	input.type == "novacron_vm"
	not cfg.monitoring == true
}

deny contains "novacron-vm-owner-tag" if {
	input.type == "novacron_vm"
	not lib.non_empty(object.get(object.get(cfg, "tags", {}), "owner", ""))
}

deny contains "novacron-network-tls" if {
	input.type == "novacron_network"
	not cfg.tls == true
}

deny contains "novacron-network-min-tls" if {
	input.type == "novacron_network"
	cfg.tls == true
	not object.get(cfg, "min_tls_version", "") in {"1.2", "1.3"}
}

deny contains "novacron-network-no-public-access" if {
	input.type == "novacron_network"
	cfg.public_access == true
}

deny contains "novacron-network-flow-logs" if {
	input.type == "novacron_network"
	not cfg.flow_logs == true
}

deny contains "novacron-network-no-public-admin-ingress" if {
	input.type == "novacron_network"
	some port in admin_ports
	public_rule(lib.list_of(cfg, "ingress"), port)
}

deny contains "novacron-storage-encrypted" if {
	input.type == "novacron_storage"
	not cfg.encrypted == true
}

deny contains "novacron-storage-no-public-access" if {
	input.type == "novacron_storage"
	cfg.public_access == true
}

deny contains "novacron-storage-backups" if {
	input.type == "novacron_storage"
	object.get(cfg, "backup_retention_days", 0) < 7
}

deny contains "novacron-policy-enabled" if {
	input.type == "novacron_policy"
	cfg.enabled == false
}

deny contains "novacron-policy-security-blocking" if {
	input.type == "novacron_policy"
	object.get(cfg, "policy_type", "") in {"security", "access", "data_governance"}
	not cfg.enforcement == "block"
}

deny contains "novacron-policy-signed" if {
	input.type == "novacron_policy"
	not lib.non_empty(object.get(cfg, "signature", ""))
}
