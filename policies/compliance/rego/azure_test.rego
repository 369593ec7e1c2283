package novacron.compliance.azure_test

# Unit tests of the Azure NSG exposure controls, one pass and one fail example per condition
# (`novacron policy test policies/compliance/rego`). Inputs are set with input.type/config
# overrides: the in-process engine evaluates those (a whole `with input as` it does not).
import data.novacron.compliance.azure
import rego.v1

inbound(src, ports, protocol) := {"direction": "Inbound", "access": "Allow", "protocol": protocol, "source_address_prefix": src, "destination_port_range": ports}

test_ssh_open_to_the_internet_fails if {
	"azure-nsg-no-public-ssh" in azure.deny with input.type as "azurerm_network_security_rule" with input.config as inbound("*", "22", "Tcp")
	"azure-nsg-no-public-ssh" in azure.deny with input.type as "azurerm_network_security_rule" with input.config as inbound("Internet", "20-30", "Tcp")
	"azure-nsg-no-public-ssh" in azure.deny with input.type as "azurerm_network_security_rule" with input.config as inbound("0.0.0.0/0", "*", "*")
	"azure-nsg-no-public-ssh" in azure.deny with input.type as "azurerm_network_security_rule" with input.config as {"direction": "Inbound", "access": "Allow", "protocol": "Tcp", "source_address_prefixes": ["10.0.0.0/8", "::/0"], "destination_port_ranges": ["443", "22"]}
	"azure-nsg-no-public-ssh" in azure.deny with input.type as "azurerm_network_security_group" with input.config as {"security_rule": [inbound("10.0.0.0/8", "22", "Tcp"), inbound("Internet", "22", "Tcp")]}
}

test_ssh_passes_for_private_sources_denies_outbound_and_other_ports if {
	not "azure-nsg-no-public-ssh" in azure.deny with input.type as "azurerm_network_security_rule" with input.config as inbound("10.0.0.0/8", "22", "Tcp")
	not "azure-nsg-no-public-ssh" in azure.deny with input.type as "azurerm_network_security_rule" with input.config as object.union(inbound("*", "22", "Tcp"), {"access": "Deny"})
	not "azure-nsg-no-public-ssh" in azure.deny with input.type as "azurerm_network_security_rule" with input.config as object.union(inbound("*", "22", "Tcp"), {"direction": "Outbound"})
	not "azure-nsg-no-public-ssh" in azure.deny with input.type as "azurerm_network_security_rule" with input.config as inbound("*", "23-3388", "Tcp")
	not "azure-nsg-no-public-ssh" in azure.deny with input.type as "azurerm_network_security_rule" with input.config as inbound("*", "22", "Udp")
}

test_rdp_and_udp if {
	"azure-nsg-no-public-rdp" in azure.deny with input.type as "azurerm_network_security_rule" with input.config as inbound("Internet", "3000-3389", "Tcp")
	not "azure-nsg-no-public-rdp" in azure.deny with input.type as "azurerm_network_security_rule" with input.config as inbound("Internet", "3390", "Tcp")
	"azure-nsg-no-public-udp" in azure.deny with input.type as "azurerm_network_security_rule" with input.config as inbound("Internet", "161", "Udp")
	not "azure-nsg-no-public-udp" in azure.deny with input.type as "azurerm_network_security_rule" with input.config as inbound("Internet", "443", "Tcp")
}
