package novacron.compliance.gcp_test

# Unit tests of the GCP firewall exposure controls, one pass and one fail example per condition
# (`novacron policy test policies/compliance/rego`). Inputs are set with input.type/config
# overrides: the in-process engine evaluates those (a whole `with input as` it does not).
import data.novacron.compliance.gcp
import rego.v1

fw(ranges, allow) := {"direction": "INGRESS", "source_ranges": ranges, "allow": allow}

tcp(ports) := [{"protocol": "tcp", "ports": ports}]

test_ssh_open_to_the_world_fails if {
	"gcp-firewall-no-public-ssh" in gcp.deny with input.type as "google_compute_firewall" with input.config as fw(["0.0.0.0/0"], tcp(["22"]))
	"gcp-firewall-no-public-ssh" in gcp.deny with input.type as "google_compute_firewall" with input.config as fw(["10.0.0.0/8", "::/0"], tcp(["22"]))
	"gcp-firewall-no-public-ssh" in gcp.deny with input.type as "google_compute_firewall" with input.config as fw(["0.0.0.0/0"], tcp(["20-30"]))
	"gcp-firewall-no-public-ssh" in gcp.deny with input.type as "google_compute_firewall" with input.config as fw(["0.0.0.0/0"], tcp([]))
	"gcp-firewall-no-public-ssh" in gcp.deny with input.type as "google_compute_firewall" with input.config as fw(["0.0.0.0/0"], [{"protocol": "all"}])
}

test_ssh_passes_for_private_sources_other_ports_and_other_protocols if {
	not "gcp-firewall-no-public-ssh" in gcp.deny with input.type as "google_compute_firewall" with input.config as fw(["10.0.0.0/8"], tcp(["22"]))
	not "gcp-firewall-no-public-ssh" in gcp.deny with input.type as "google_compute_firewall" with input.config as fw(["0.0.0.0/0"], tcp(["23-3388"]))
	not "gcp-firewall-no-public-ssh" in gcp.deny with input.type as "google_compute_firewall" with input.config as fw(["0.0.0.0/0"], [{"protocol": "udp", "ports": ["22"]}])
	not "gcp-firewall-no-public-ssh" in gcp.deny with input.type as "google_compute_firewall" with input.config as fw(["0.0.0.0/0"], [{"protocol": "icmp"}])
}

test_only_enabled_ingress_rules_count if {
	not "gcp-firewall-no-public-ssh" in gcp.deny with input.type as "google_compute_firewall" with input.config as object.union(fw(["0.0.0.0/0"], tcp(["22"])), {"direction": "EGRESS"})
	not "gcp-firewall-no-public-ssh" in gcp.deny with input.type as "google_compute_firewall" with input.config as object.union(fw(["0.0.0.0/0"], tcp(["22"])), {"disabled": true})
	"gcp-firewall-no-public-ssh" in gcp.deny with input.type as "google_compute_firewall" with input.config as object.union(fw(["0.0.0.0/0"], tcp(["22"])), {"disabled": false})
	not "gcp-firewall-no-public-ssh" in gcp.deny with input.type as "google_compute_firewall" with input.config as object.union(fw(["0.0.0.0/0"], tcp(["22"])), {"disabled": {"__unknown__": "known after apply"}})
}

test_rdp_and_all_protocols if {
	"gcp-firewall-no-public-rdp" in gcp.deny with input.type as "google_compute_firewall" with input.config as fw(["::/0"], tcp(["3389"]))
	not "gcp-firewall-no-public-rdp" in gcp.deny with input.type as "google_compute_firewall" with input.config as fw(["::/0"], tcp(["22"]))
	"gcp-firewall-no-public-all" in gcp.deny with input.type as "google_compute_firewall" with input.config as fw(["0.0.0.0/0"], [{"protocol": "all"}])
	not "gcp-firewall-no-public-all" in gcp.deny with input.type as "google_compute_firewall" with input.config as fw(["0.0.0.0/0"], tcp(["443"]))
}
