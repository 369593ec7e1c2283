# METADATA
# title: Azure controls (storage accounts, NSGs, databases, Key Vault, App Service, AKS)
package novacron.compliance.azure

import data.novacron.compliance.lib
import rego.v1

cfg := input.config

sa := "azurerm_storage_account"

# azurerm 3.x calls it enable_https_traffic_only, 4.x https_traffic_only_enabled (default true).
deny contains "azure-storage-https-only" if {
	input.type == sa
	some key in ["enable_https_traffic_only", "https_traffic_only_enabled"]
	cfg[key] == false
}

deny contains "azure-storage-min-tls" if {
	input.type == sa
	object.get(cfg, "min_tls_version", "TLS1_2") in {"TLS1_0", "TLS1_1"}
}

deny contains "azure-storage-no-public-blob" if {
	input.type == sa
	some key in ["allow_nested_items_to_be_public", "allow_blob_public_access"]
	cfg[key] == true
}

deny contains "azure-storage-default-deny" if {
	input.type == sa
	not lib.block(cfg, "network_rules").default_action == "Deny"
}

deny contains "azure-storage-infrastructure-encryption" if {
	input.type == sa
	not cfg.infrastructure_encryption_enabled == true
}

deny contains "azure-storage-blob-soft-delete" if {
	input.type == sa
	props := lib.block(cfg, "blob_properties")
	object.get(lib.block(props, "delete_retention_policy"), "days", 0) < 7
}

# Inbound allow rules of an NSG (inline security_rule blocks or a standalone rule).
nsg_rules contains r if {
	input.type == "azurerm_network_security_group"
	some r in lib.list_of(cfg, "security_rule")
}

nsg_rules contains cfg if input.type == "azurerm_network_security_rule"

internet_inbound contains r if {
	some r in nsg_rules
	lower(r.direction) == "inbound"
	lower(r.access) == "allow"
	some src in sources(r)
	lib.is_public(src)
}

sources(r) := array.concat([s | s := r.source_address_prefix; is_string(s)], lib.list_of(r, "source_address_prefixes"))

dest_ports(r) := array.concat([p | p := r.destination_port_range; is_string(p)], lib.list_of(r, "destination_port_ranges"))

nsg_exposes(proto_ok, port) if {
	some r in internet_inbound
	proto_ok[r.protocol]
	some spec in dest_ports(r)
	lib.spec_covers(spec, port)
}

tcp_protocols := {"Tcp": true, "*": true, "tcp": true}

udp_protocols := {"Udp": true, "*": true, "udp": true}

deny contains "azure-nsg-no-public-ssh" if nsg_exposes(tcp_protocols, 22)

deny contains "azure-nsg-no-public-rdp" if nsg_exposes(tcp_protocols, 3389)

deny contains "azure-nsg-no-public-udp" if {
	some r in internet_inbound
	udp_protocols[r.protocol]
}

deny contains "azure-postgres-ssl" if {
	input.type == "azurerm_postgresql_server"
	not cfg.ssl_enforcement_enabled == true
}

deny contains "azure-mysql-ssl" if {
	input.type == "azurerm_mysql_server"
	not cfg.ssl_enforcement_enabled == true
}

deny contains "azure-sql-firewall-no-any" if {
	input.type == "azurerm_mssql_firewall_rule"
	cfg.start_ip_address == "0.0.0.0"
	cfg.end_ip_address == "255.255.255.255"
}

deny contains "azure-sql-min-tls" if {
	input.type == "azurerm_mssql_server"
	object.get(cfg, "minimum_tls_version", "1.2") in {"1.0", "1.1", "Disabled"}
}

deny contains "azure-keyvault-purge-protection" if {
	input.type == "azurerm_key_vault"
	not cfg.purge_protection_enabled == true
}

webapps := {"azurerm_linux_web_app", "azurerm_windows_web_app", "azurerm_app_service"}

deny contains "azure-webapp-https-only" if {
	input.type in webapps
	not cfg.https_only == true
}

deny contains "azure-webapp-min-tls" if {
	input.type in webapps
	site := lib.block(cfg, "site_config")
	object.get(site, "minimum_tls_version", "1.2") in {"1.0", "1.1"}
}

deny contains "azure-webapp-ftps" if {
	input.type in webapps
	site := lib.block(cfg, "site_config")
	object.get(site, "ftps_state", "Disabled") == "AllAllowed"
}

deny contains "azure-aks-rbac" if {
	input.type == "azurerm_kubernetes_cluster"
	cfg.role_based_access_control_enabled == false
}

deny contains "azure-aks-network-policy" if {
	input.type == "azurerm_kubernetes_cluster"
	not lib.non_empty(lib.block(cfg, "network_profile").network_policy)
}
