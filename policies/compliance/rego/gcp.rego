# METADATA
# title: Google Cloud controls (storage, firewall, Cloud SQL, Compute Engine, KMS, GKE, IAM)
package novacron.compliance.gcp

import data.novacron.compliance.lib
import rego.v1

cfg := input.config

bucket := "google_storage_bucket"

deny contains "gcp-storage-uniform-access" if {
	input.type == bucket
	lib.not_true(cfg, "uniform_bucket_level_access")
}

deny contains "gcp-storage-public-access-prevention" if {
	input.type == bucket
	lib.differs(cfg, "public_access_prevention", "enforced")
}

public_members := {"allUsers", "allAuthenticatedUsers"}

deny contains "gcp-storage-iam-no-public" if {
	input.type == "google_storage_bucket_iam_member"
	lib.get(cfg, "member") in public_members
}

deny contains "gcp-storage-iam-no-public" if {
	input.type == "google_storage_bucket_iam_binding"
	some m in lib.list_of(cfg, "members")
	m in public_members
}

deny contains "gcp-storage-versioning" if {
	input.type == bucket
	lib.not_true(lib.block(cfg, "versioning"), "enabled")
}

deny contains "gcp-storage-logging" if {
	input.type == bucket
	lib.empty(lib.block(cfg, "logging"), "log_bucket")
}

deny contains "gcp-storage-cmek" if {
	input.type == bucket
	lib.empty(lib.block(cfg, "encryption"), "default_kms_key_name")
}

# Ingress firewall rules that are enabled and open to the internet (IPv4 or IPv6, any /0).
open_firewall if {
	input.type == "google_compute_firewall"
	lib.get(cfg, "direction") in {null, "INGRESS"}
	lib.known(lib.get(cfg, "disabled"))
	not lib.is_true(cfg, "disabled")
	some r in lib.list_of(cfg, "source_ranges")
	lib.world_open(r)
}

# {protocol, ranges} of each allow block that carries ports; no ports listed: every port.
allowed contains {"protocol": p, "ranges": port_ranges(p, lib.list_of(a, "ports"))} if {
	some a in lib.list_of(cfg, "allow")
	p := lower(lib.get(a, "protocol"))
	lib.has_ports(p)
}

port_ranges(p, _) := [[0, 65535]] if lib.all_protocols(p)

port_ranges(p, ports) := [[0, 65535]] if {
	not lib.all_protocols(p)
	count(ports) == 0
}

port_ranges(p, ports) := [lib.port_range(s) | some s in ports] if {
	not lib.all_protocols(p)
	lib.above(count(ports), 0)
}

fw_allows(port) if {
	some a in allowed
	a.protocol in {"tcp", "6", "all"}
	some range in a.ranges
	lib.covers(range, port)
}

deny contains "gcp-firewall-no-public-ssh" if {
	open_firewall
	fw_allows(22)
}

deny contains "gcp-firewall-no-public-rdp" if {
	open_firewall
	fw_allows(3389)
}

deny contains "gcp-firewall-no-public-all" if {
	open_firewall
	some a in lib.list_of(cfg, "allow")
	lib.all_protocols(lib.get(a, "protocol"))
}

deny contains id if {
	open_firewall
	some id, p in lib.variants("gcp-firewall-public-ingress-allowlisted")
	some a in allowed
	some range in a.ranges
	lib.beyond(range, {x | some x in p.allowed_ports})
}

sql := "google_sql_database_instance"

settings := lib.block(cfg, "settings")

ipconf := lib.block(settings, "ip_configuration")

deny contains "gcp-sql-no-public-ip" if {
	input.type == sql
	lib.get(ipconf, "ipv4_enabled") in {null, true}
}

deny contains "gcp-sql-require-ssl" if {
	input.type == sql
	not lib.unknown_under(ipconf)
	not ssl_enforced
}

ssl_enforced if ipconf.ssl_mode in {"ENCRYPTED_ONLY", "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"}

ssl_enforced if ipconf.require_ssl == true

deny contains "gcp-sql-no-open-networks" if {
	input.type == sql
	some n in lib.list_of(ipconf, "authorized_networks")
	lib.world_open(lib.get(n, "value"))
}

deny contains "gcp-sql-backups" if {
	input.type == sql
	lib.not_true(lib.block(settings, "backup_configuration"), "enabled")
}

flag_on(name) if {
	some f in lib.list_of(settings, "database_flags")
	f.name == name
	lower(f.value) == "on"
}

postgres if {
	version := lib.get(cfg, "database_version")
	is_string(version)
	startswith(version, "POSTGRES")
}

deny contains "gcp-sql-pg-log-connections" if {
	input.type == sql
	postgres
	not lib.unknown_under(lib.get(settings, "database_flags"))
	not flag_on("log_connections")
}

deny contains "gcp-sql-pg-log-disconnections" if {
	input.type == sql
	postgres
	not lib.unknown_under(lib.get(settings, "database_flags"))
	not flag_on("log_disconnections")
}

vm := "google_compute_instance"

deny contains "gcp-instance-no-public-ip" if {
	input.type == vm
	some nic in lib.list_of(cfg, "network_interface")
	lib.above(count(lib.list_of(nic, "access_config")), 0)
}

deny contains "gcp-instance-no-ip-forwarding" if {
	input.type == vm
	lib.is_true(cfg, "can_ip_forward")
}

deny contains "gcp-instance-shielded-vm" if {
	input.type == vm
	shielded := lib.block(cfg, "shielded_instance_config")
	some flag in ["enable_vtpm", "enable_integrity_monitoring"]
	lib.differs(shielded, flag, true)
}

deny contains "gcp-instance-default-sa-full-access" if {
	input.type == vm
	some sa in lib.list_of(cfg, "service_account")
	email := lib.get(sa, "email")
	is_string(email)
	endswith(email, "-compute@developer.gserviceaccount.com")
	some scope in lib.list_of(sa, "scopes")
	scope in {"cloud-platform", "https://www.googleapis.com/auth/cloud-platform"}
}

metadata := lib.get(cfg, "metadata")

deny contains "gcp-instance-no-serial-port" if {
	input.type == vm
	lib.truthy(lib.get(metadata, "serial-port-enable"))
}

deny contains "gcp-instance-block-project-ssh-keys" if {
	input.type == vm
	v := lib.get(metadata, "block-project-ssh-keys")
	lib.known(v)
	not lib.truthy(v)
}

deny contains "gcp-subnet-flow-logs" if {
	input.type == "google_compute_subnetwork"
	lib.empty(cfg, "log_config")
}

deny contains id if {
	input.type == "google_kms_crypto_key"
	some id, p in lib.variants("gcp-kms-rotation")
	period := lib.get(cfg, "rotation_period")
	lib.known(period)
	not rotates_within(period, p.max_days * 86400)
}

rotates_within(period, limit) if {
	is_string(period)
	lib.at_most(to_number(trim_suffix(period, "s")), limit)
}

gke := "google_container_cluster"

deny contains "gcp-gke-legacy-abac-disabled" if {
	input.type == gke
	lib.is_true(cfg, "enable_legacy_abac")
}

deny contains "gcp-gke-private-nodes" if {
	input.type == gke
	lib.not_true(lib.block(cfg, "private_cluster_config"), "enable_private_nodes")
}

deny contains "gcp-gke-network-policy" if {
	input.type == gke
	lib.not_true(lib.block(cfg, "network_policy"), "enabled")
	lib.differs(cfg, "datapath_provider", "ADVANCED_DATAPATH")
}

deny contains "gcp-gke-master-authorized-networks" if {
	input.type == gke
	lib.empty(cfg, "master_authorized_networks_config")
}

deny contains "gcp-gke-no-client-certificate" if {
	input.type == gke
	auth := lib.block(cfg, "master_auth")
	lib.is_true(lib.block(auth, "client_certificate_config"), "issue_client_certificate")
}

deny contains "gcp-iam-no-sa-admin-roles" if {
	input.type in {"google_project_iam_member", "google_project_iam_binding"}
	role := lib.get(cfg, "role")
	is_string(role)
	admin_role(role)
	some m in members
	is_string(m)
	startswith(m, "serviceAccount:")
}

members := [m | m := lib.get(cfg, "member"); is_string(m)] if lib.get(cfg, "member") != null

members := lib.list_of(cfg, "members") if lib.get(cfg, "member") == null

admin_role(r) if r in {"roles/owner", "roles/editor"}

admin_role(r) if endswith(r, "Admin")

admin_role(r) if endswith(r, ".admin")
