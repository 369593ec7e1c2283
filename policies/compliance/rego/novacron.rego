# METADATA
# title: Controls for NovaCron's own resource types (as the simulator and API emit them)
package novacron.compliance.novacron

import data.novacron.compliance.lib
import rego.v1

cfg := input.config

admin_ports := [22, 3389]

# Rules {port (a number or "from-to"), cidr, protocol} open to the internet, as port ranges.
public_ranges(rules) := [range |
	some r in rules
	lib.world_open(lib.get(r, "cidr"))
	range := lib.port_range(lib.get(r, "port"))
]

admits(rules, port) if {
	some range in public_ranges(rules)
	lib.covers(range, port)
}

deny contains "novacron-vm-disk-encrypted" if {
	input.type == "novacron_vm"
	lib.not_true(cfg, "disk_encrypted")
}

deny contains "novacron-vm-no-public-ip" if {
	input.type == "novacron_vm"
	lib.is_true(cfg, "public_ip")
}

deny contains "novacron-vm-no-public-admin-ports" if {
	input.type == "novacron_vm"
	some port in admin_ports
	admits(lib.list_of(cfg, "security_groups"), port)
}

deny contains "novacron-vm-monitoring" if {
	input.type == "novacron_vm"
	lib.not_true(cfg, "monitoring")
}

deny contains "novacron-vm-owner-tag" if {
	input.type == "novacron_vm"
	lib.empty(lib.get(cfg, "tags"), "owner")
}

deny contains "novacron-network-tls" if {
	input.type == "novacron_network"
	lib.not_true(cfg, "tls")
}

deny contains "novacron-network-min-tls" if {
	input.type == "novacron_network"
	lib.is_true(cfg, "tls")
	lib.not_in(cfg, "min_tls_version", {"1.2", "1.3"})
}

deny contains "novacron-network-no-public-access" if {
	input.type == "novacron_network"
	lib.is_true(cfg, "public_access")
}

deny contains "novacron-network-flow-logs" if {
	input.type == "novacron_network"
	lib.not_true(cfg, "flow_logs")
}

deny contains "novacron-network-no-public-admin-ingress" if {
	input.type == "novacron_network"
	some port in admin_ports
	admits(lib.list_of(cfg, "ingress"), port)
}

deny contains id if {
	some id, p in lib.variants("novacron-public-ingress-allowlisted")
	some key in ["security_groups", "ingress"]
	some range in public_ranges(lib.list_of(cfg, key))
	lib.beyond(range, {x | some x in p.allowed_ports})
}

deny contains "novacron-storage-encrypted" if {
	input.type == "novacron_storage"
	lib.not_true(cfg, "encrypted")
}

deny contains "novacron-storage-no-public-access" if {
	input.type == "novacron_storage"
	lib.is_true(cfg, "public_access")
}

deny contains id if {
	input.type == "novacron_storage"
	some id, p in lib.variants("novacron-storage-backups")
	lib.below(lib.number(cfg, "backup_retention_days", 0), p.min_days)
}

deny contains "novacron-policy-enabled" if {
	input.type == "novacron_policy"
	lib.is_false(cfg, "enabled")
}

deny contains "novacron-policy-security-blocking" if {
	input.type == "novacron_policy"
	lib.get(cfg, "policy_type") in {"security", "access", "data_governance"}
	lib.differs(cfg, "enforcement", "block")
}

deny contains "novacron-policy-signed" if {
	input.type == "novacron_policy"
	lib.empty(cfg, "signature")
}
