# METADATA
# title: Google Cloud controls (storage, firewall, Cloud SQL, Compute Engine, KMS, GKE, IAM)
package novacron.compliance.gcp

import data.novacron.compliance.lib
import rego.v1

cfg := input.config

bucket := "google_storage_bucket"

deny contains "gcp-storage-uniform-access" if {
	input.type == bucket
	not cfg.uniform_bucket_level_access == true
}

deny contains "gcp-storage-public-access-prevention" if {
	input.type == bucket
	not cfg.public_access_prevention == "enforced"
}

public_members := {"allUsers", "allAuthenticatedUsers"}

deny contains "gcp-storage-iam-no-public" if {
	input.type == "google_storage_bucket_iam_member"
	cfg.member in public_members
}

deny contains "gcp-storage-iam-no-public" if {
	input.type == "google_storage_bucket_iam_binding"
	some m in lib.list_of(cfg, "members")
	m in public_members
}

deny contains "gcp-storage-versioning" if {
	input.type == bucket
	not lib.block(cfg, "versioning").enabled == true
}

deny contains "gcp-storage-logging" if {
	input.type == bucket
	not lib.non_empty(lib.block(cfg, "logging").log_bucket)
}

deny contains "gcp-storage-cmek" if {
	input.type == bucket
	not lib.non_empty(lib.block(cfg, "encryption").default_kms_key_name)
}

# Ingress firewall rules that are enabled and open to the internet.
open_firewall if {
	input.type == "google_compute_firewall"
	object.get(cfg, "direction", "INGRESS") == "INGRESS"
	not cfg.disabled == true
	some r in lib.list_of(cfg, "source_ranges")
	r in {"0.0.0.0/0", "::/0"}
}

fw_allows(port) if {
	some a in lib.list_of(cfg, "allow")
	lib.tcp_or_all(a.protocol)
	ports_cover(lib.list_of(a, "ports"), port)
}

ports_cover(ports, _) if count(ports) == 0 # no ports: every port of the protocol

ports_cover(ports, port) if {
	some spec in ports
	lib.spec_covers(spec, port)
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
	lib.all_protocols(a.protocol)
}

sql := "google_sql_database_instance"

settings := lib.block(cfg, "settings")

ipconf := lib.block(settings, "ip_configuration")

deny contains "gcp-sql-no-public-ip" if {
	input.type == sql
	object.get(ipconf, "ipv4_enabled", true) == true
}

deny contains "gcp-sql-require-ssl" if {
	input.type == sql
	not ssl_enforced
}

ssl_enforced if ipconf.ssl_mode in {"ENCRYPTED_ONLY", "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"}

ssl_enforced if ipconf.require_ssl == true

deny contains "gcp-sql-no-open-networks" if {
	input.type == sql
	some n in lib.list_of(ipconf, "authorized_networks")
	n.value in {"0.0.0.0/0", "::/0"}
}

deny contains "gcp-sql-backups" if {
	input.type == sql
	not lib.block(settings, "backup_configuration").enabled == true
}

flag_on(name) if {
	some f in lib.list_of(settings, "database_flags")
	f.name == name
	lower(f.value) == "on"
}

deny contains "gcp-sql-pg-log-connections" if {
	input.type == sql
	startswith(object.get(cfg, "database_version", ""), "POSTGRES")
	not flag_on("log_connections")
}

deny contains "gcp-sql-pg-log-disconnections" if {
	input.type == sql
	startswith(object.get(cfg, "database_version", ""), "POSTGRES")
	not flag_on("log_disconnections")
}

vm := "google_compute_instance"

deny contains "gcp-instance-no-public-ip" if {
	input.type == vm
	some nic in lib.list_of(cfg, "network_interface")
	count(lib.list_of(nic, "access_config")) > 0
}

deny contains "gcp-instance-no-ip-forwarding" if {
	input.type == vm
	cfg.can_ip_forward == true
}

deny contains "gcp-instance-shielded-vm" if {
	input.type == vm
	shielded := lib.block(cfg, "shielded_instance_config")
	some flag in ["enable_vtpm", "enable_integrity_monitoring"]
	object.get(shielded, flag, false) != true
}

deny contains "gcp-instance-default-sa-full-access" if {
	input.type == vm
	some sa in lib.list_of(cfg, "service_account")
	endswith(object.get(sa, "email", ""), "-compute@developer.gserviceaccount.com")
	some scope in lib.list_of(sa, "scopes")
	scope in {"cloud-platform", "https://www.googleapis.com/auth/cloud-platform"}
}

metadata := object.get(cfg, "metadata", {})

deny contains "gcp-instance-no-serial-port" if {
	input.type == vm
	lib.truthy(metadata["serial-port-enable"])
}

deny contains "gcp-instance-block-project-ssh-keys" if {
	input.type == vm
	not lib.truthy(object.get(metadata, "block-project-ssh-keys", false))
}

deny contains "gcp-subnet-flow-logs" if {
	input.type == "google_compute_subnetwork"
	count(lib.list_of(cfg, "log_config")) == 0
}

deny contains "gcp-kms-rotation" if {
	input.type == "google_kms_crypto_key"
	not rotates_within(7776000)
}

rotates_within(limit) if {
	seconds := to_number(trim_suffix(cfg.rotation_period, "s"))
	seconds <= limit
}

gke := "google_container_cluster"

deny contains "gcp-gke-legacy-abac-disabled" if {
	input.type == gke
	cfg.enable_legacy_abac == true
}

deny contains "gcp-gke-private-nodes" if {
	input.type == gke
	not lib.block(cfg, "private_cluster_config").enable_private_nodes == true
}

deny contains "gcp-gke-network-policy" if {
	input.type == gke
	not lib.block(cfg, "network_policy").enabled == true
	not cfg.datapath_provider == "ADVANCED_DATAPATH"
}

deny contains "gcp-gke-master-authorized-networks" if {
	input.type == gke
	count(lib.list_of(cfg, "master_authorized_networks_config")) == 0
}

deny contains "gcp-gke-no-client-certificate" if {
	input.type == gke
	auth := lib.block(cfg, "master_auth")
	lib.block(auth, "client_certificate_config").issue_client_certificate == true
}

deny contains "gcp-iam-no-sa-admin-roles" if {
	input.type in {"google_project_iam_member", "google_project_iam_binding"}
	admin_role(cfg.role)
	some m in members
	startswith(m, "serviceAccount:")
}

members := [cfg.member] if is_string(cfg.member)

members := lib.list_of(cfg, "members") if not is_string(cfg.member)

admin_role(r) if r in {"roles/owner", "roles/editor"}

admin_role(r) if endswith(r, "Admin")

admin_role(r) if endswith(r, ".admin")
