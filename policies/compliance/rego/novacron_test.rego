package novacron.compliance.novacron_test

# Unit tests of the controls of NovaCron's own VM and network types, one pass and one fail
# example per condition (`novacron policy test policies/compliance/rego`). Inputs are set with
# input.type/config overrides: the in-process engine evaluates those. object.union is used only
# to replace top-level keys: the in-process engine merges nested objects shallowly, OPA deeply.
import data.novacron.compliance.novacron
import rego.v1

good_vm := {"disk_encrypted": true, "public_ip": false, "monitoring": true, "tags": {"owner": "ops"}, "security_groups": []}

good_net := {"tls": true, "min_tls_version": "1.2", "public_access": false, "flow_logs": true, "ingress": []}

test_a_well_configured_vm_and_network_pass if {
	count(novacron.deny) == 0 with input.type as "novacron_vm" with input.config as object.union(good_vm, {})
	count(novacron.deny) == 0 with input.type as "novacron_network" with input.config as object.union(good_net, {})
}

test_admin_ports_open_to_the_world if {
	"novacron-vm-no-public-admin-ports" in novacron.deny with input.type as "novacron_vm" with input.config as object.union(good_vm, {"security_groups": [{"port": 22, "cidr": "0.0.0.0/0"}]})
	"novacron-vm-no-public-admin-ports" in novacron.deny with input.type as "novacron_vm" with input.config as object.union(good_vm, {"security_groups": [{"port": 443, "cidr": "10.0.0.0/8"}, {"port": "3000-4000", "cidr": "::/0"}]})
	not "novacron-vm-no-public-admin-ports" in novacron.deny with input.type as "novacron_vm" with input.config as object.union(good_vm, {"security_groups": [{"port": 22, "cidr": "10.0.0.0/8"}]})
	not "novacron-vm-no-public-admin-ports" in novacron.deny with input.type as "novacron_vm" with input.config as object.union(good_vm, {"security_groups": [{"port": "23-3388", "cidr": "0.0.0.0/0"}]})
	"novacron-network-no-public-admin-ingress" in novacron.deny with input.type as "novacron_network" with input.config as object.union(good_net, {"ingress": [{"port": "20-30", "cidr": "::/0"}]})
	not "novacron-network-no-public-admin-ingress" in novacron.deny with input.type as "novacron_network" with input.config as object.union(good_net, {"ingress": [{"port": 80, "cidr": "0.0.0.0/0"}]})
}

test_each_vm_flag if {
	"novacron-vm-disk-encrypted" in novacron.deny with input.type as "novacron_vm" with input.config as object.union(good_vm, {"disk_encrypted": false})
	"novacron-vm-disk-encrypted" in novacron.deny with input.type as "novacron_vm" with input.config as object.remove(good_vm, ["disk_encrypted"])
	"novacron-vm-no-public-ip" in novacron.deny with input.type as "novacron_vm" with input.config as object.union(good_vm, {"public_ip": true})
	"novacron-vm-monitoring" in novacron.deny with input.type as "novacron_vm" with input.config as object.union(good_vm, {"monitoring": false})
	"novacron-vm-owner-tag" in novacron.deny with input.type as "novacron_vm" with input.config as object.union(good_vm, {"tags": {"owner": ""}})
	"novacron-vm-owner-tag" in novacron.deny with input.type as "novacron_vm" with input.config as object.union(object.remove(good_vm, ["tags"]), {"tags": {"team": "x"}})
}

test_each_network_flag if {
	"novacron-network-tls" in novacron.deny with input.type as "novacron_network" with input.config as object.union(good_net, {"tls": false})
	"novacron-network-min-tls" in novacron.deny with input.type as "novacron_network" with input.config as object.union(good_net, {"min_tls_version": "1.1"})
	not "novacron-network-min-tls" in novacron.deny with input.type as "novacron_network" with input.config as object.union(good_net, {"min_tls_version": "1.3"})
	not "novacron-network-min-tls" in novacron.deny with input.type as "novacron_network" with input.config as object.union(good_net, {"tls": false, "min_tls_version": "1.0"})
	"novacron-network-no-public-access" in novacron.deny with input.type as "novacron_network" with input.config as object.union(good_net, {"public_access": true})
	"novacron-network-flow-logs" in novacron.deny with input.type as "novacron_network" with input.config as object.union(good_net, {"flow_logs": false})
}
