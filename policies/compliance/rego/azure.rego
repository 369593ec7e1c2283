# METADATA
# title: Azure controls (storage accounts, NSGs, databases, Key Vault, App Service, AKS)
# description: An NSG is judged with its separate azurerm_network_security_rule resources merged in.
package novacron.compliance.azure

import data.novacron.compliance.lib
import rego.v1

cfg := input.config

sa := "azurerm_storage_account"

# azurerm 3.x calls it enable_https_traffic_only, 4.x https_traffic_only_enabled (default true).
deny contains "azure-storage-https-only" if {
	input.type == sa
	some key in ["enable_https_traffic_only", "https_traffic_only_enabled"]
	lib.is_false(cfg, key)
}

deny contains "azure-storage-min-tls" if {
	input.type == sa
	lib.get(cfg, "min_tls_version") in {"TLS1_0", "TLS1_1"}
}

deny contains "azure-storage-no-public-blob" if {
	input.type == sa
	some key in ["allow_nested_items_to_be_public", "allow_blob_public_access"]
	lib.is_true(cfg, key)
}

deny contains "azure-storage-default-deny" if {
	input.type == sa
	lib.differs(lib.block(cfg, "network_rules"), "default_action", "Deny")
}

deny contains "azure-storage-infrastructure-encryption" if {
	input.type == sa
	lib.not_true(cfg, "infrastructure_encryption_enabled")
}

# No blob_properties or no delete_retention_policy block: soft delete is off (0 days); a
# block without `days` keeps the provider default of 7.
deny contains id if {
	input.type == sa
	some id, p in lib.variants("azure-storage-blob-soft-delete")
	policy := lib.block(lib.block(cfg, "blob_properties"), "delete_retention_policy")
	lib.below(retention_days(policy), p.min_days)
}

retention_days(policy) := 0 if policy == {}

retention_days(policy) := lib.number(policy, "days", 7) if {
	policy != {}
	lib.known(policy)
}

# Inbound allow rules of an NSG (inline security_rule blocks or a standalone rule).
nsg_rules contains r if {
	input.type == "azurerm_network_security_group"
	some r in lib.list_of(cfg, "security_rule")
}

nsg_rules contains cfg if input.type == "azurerm_network_security_rule"

internet_inbound contains r if {
	some r in nsg_rules
	lower(lib.get(r, "direction")) == "inbound"
	lower(lib.get(r, "access")) == "allow"
	some src in sources(r)
	lib.world_open(src)
}

strings_of(obj, key) := [v | v := lib.get(obj, key); is_string(v)]

sources(r) := array.concat(strings_of(r, "source_address_prefix"), lib.list_of(r, "source_address_prefixes"))

dest_ranges(r) := [lib.port_range(spec) | some spec in array.concat(strings_of(r, "destination_port_range"), lib.list_of(r, "destination_port_ranges"))]

tcp_like(r) if lower(sprintf("%v", [lib.get(r, "protocol")])) in {"tcp", "*"}

udp_like(r) if lower(sprintf("%v", [lib.get(r, "protocol")])) in {"udp", "*"}

exposes(port) if {
	some r in internet_inbound
	tcp_like(r)
	some range in dest_ranges(r)
	lib.covers(range, port)
}

deny contains "azure-nsg-no-public-ssh" if exposes(22)

deny contains "azure-nsg-no-public-rdp" if exposes(3389)

deny contains "azure-nsg-no-public-udp" if {
	some r in internet_inbound
	udp_like(r)
}

deny contains id if {
	some id, p in lib.variants("azure-nsg-public-ingress-allowlisted")
	some r in internet_inbound
	tcp_like(r)
	some range in dest_ranges(r)
	lib.beyond(range, {x | some x in p.allowed_ports})
}

deny contains "azure-postgres-ssl" if {
	input.type == "azurerm_postgresql_server"
	lib.not_true(cfg, "ssl_enforcement_enabled")
}

deny contains "azure-mysql-ssl" if {
	input.type == "azurerm_mysql_server"
	lib.not_true(cfg, "ssl_enforcement_enabled")
}

deny contains "azure-sql-firewall-no-any" if {
	input.type == "azurerm_mssql_firewall_rule"
	lib.equals(cfg, "start_ip_address", "0.0.0.0")
	lib.equals(cfg, "end_ip_address", "255.255.255.255")
}

deny contains "azure-sql-min-tls" if {
	input.type == "azurerm_mssql_server"
	lib.get(cfg, "minimum_tls_version") in {"1.0", "1.1", "Disabled"}
}

deny contains "azure-keyvault-purge-protection" if {
	input.type == "azurerm_key_vault"
	lib.not_true(cfg, "purge_protection_enabled")
}

webapps := {"azurerm_linux_web_app", "azurerm_windows_web_app", "azurerm_app_service"}

deny contains "azure-webapp-https-only" if {
	input.type in webapps
	lib.not_true(cfg, "https_only")
}

deny contains "azure-webapp-min-tls" if {
	input.type in webapps
	lib.get(lib.block(cfg, "site_config"), "minimum_tls_version") in {"1.0", "1.1"}
}

deny contains "azure-webapp-ftps" if {
	input.type in webapps
	lib.get(lib.block(cfg, "site_config"), "ftps_state") == "AllAllowed"
}

deny contains "azure-aks-rbac" if {
	input.type == "azurerm_kubernetes_cluster"
	lib.is_false(cfg, "role_based_access_control_enabled")
}

deny contains "azure-aks-network-policy" if {
	input.type == "azurerm_kubernetes_cluster"
	lib.empty(lib.block(cfg, "network_profile"), "network_policy")
}
