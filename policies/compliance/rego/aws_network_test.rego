package novacron.compliance.aws_network_test

# Unit tests of the AWS network controls, one pass and one fail example per condition each
# control checks (`novacron policy test policies/compliance/rego`).
import data.novacron.compliance.aws_network
import rego.v1

# The verdicts for one input. Every assertion goes through this function, so the file has one
# `with` site: the in-process engine compiles a copy of the package under test for each `with`
# site, and writing `with` in every assertion needed over 11 GB.
deny_for(x) := d if {
	d := aws_network.deny with input.type as x.type with input.config as x.config with input.params as object.get(x, "params", {})
}

world := "0.0.0.0/0"

private := "10.0.0.0/8"

marker := {"__unknown__": "known after apply"}

allowlist := {"aws-sg-public-ingress-allowlisted": {"aws-sg-public-ingress-allowlisted": {"allowed_ports": [80, 443]}}}

rule(v4, v6, from, to, protocol) := {"cidr_blocks": v4, "ipv6_cidr_blocks": v6, "from_port": from, "to_port": to, "protocol": protocol}

group(rules) := {"type": "aws_security_group", "config": {"name": "g", "ingress": rules}, "params": allowlist}

# --- SSH (22) from the IPv4 internet -------------------------------------------------------------

test_ssh_open_to_the_world_fails if {
	in1 := group([rule([world], [], 22, 22, "tcp")])
	"aws-sg-no-public-ssh" in deny_for(in1)
}

test_ssh_from_a_private_cidr_passes if {
	in1 := group([rule([private], [], 22, 22, "tcp")])
	not "aws-sg-no-public-ssh" in deny_for(in1)
}

test_ssh_world_cidr_in_any_position_fails if {
	in1 := group([rule([private, world], [], 22, 22, "tcp")])
	"aws-sg-no-public-ssh" in deny_for(in1)
	in2 := group([rule([private, "192.168.0.0/16", world], [], 22, 22, "tcp")])
	"aws-sg-no-public-ssh" in deny_for(in2)
	in3 := group([rule([private], [], 22, 22, "tcp"), rule([world], [], 22, 22, "tcp")])
	"aws-sg-no-public-ssh" in deny_for(in3)
}

test_ssh_any_prefix_zero_cidr_is_the_world if {
	in1 := group([rule(["203.0.113.9/0"], [], 22, 22, "tcp")])
	"aws-sg-no-public-ssh" in deny_for(in1)
	in2 := group([rule(["0.0.0.0/1"], [], 22, 22, "tcp")])
	not "aws-sg-no-public-ssh" in deny_for(in2)
}

test_ssh_is_checked_on_port_22_only if {
	in1 := group([rule([world], [], 443, 443, "tcp")])
	not "aws-sg-no-public-ssh" in deny_for(in1)
	in2 := group([rule([world], [], 23, 23, "tcp")])
	not "aws-sg-no-public-ssh" in deny_for(in2)
	in3 := group([rule([world], [], 21, 21, "tcp")])
	not "aws-sg-no-public-ssh" in deny_for(in3)
}

test_ssh_port_ranges_that_include_22_fail if {
	in1 := group([rule([world], [], 22, 23, "tcp")])
	"aws-sg-no-public-ssh" in deny_for(in1)
	in2 := group([rule([world], [], 21, 22, "tcp")])
	"aws-sg-no-public-ssh" in deny_for(in2)
	in3 := group([rule([world], [], 0, 65535, "tcp")])
	"aws-sg-no-public-ssh" in deny_for(in3)
	in4 := group([rule([world], [], 23, 1024, "tcp")])
	not "aws-sg-no-public-ssh" in deny_for(in4)
}

test_ssh_all_protocols_and_udp_fail_icmp_passes if {
	in1 := group([rule([world], [], 0, 0, "-1")])
	"aws-sg-no-public-ssh" in deny_for(in1)
	in2 := group([rule([world], [], 22, 22, "udp")])
	"aws-sg-no-public-ssh" in deny_for(in2)
	in3 := group([rule([world], [], -1, -1, "icmp")])
	not "aws-sg-no-public-ssh" in deny_for(in3)
}

test_ssh_ipv6_world_is_not_the_ipv4_control if {
	in1 := group([rule([], ["::/0"], 22, 22, "tcp")])
	d := deny_for(in1)
	not "aws-sg-no-public-ssh" in d
	"aws-sg-no-public-admin-ipv6" in d
}

test_ssh_rule_shapes if {
	in1 := {"type": "aws_security_group_rule", "config": object.union(rule([world], [], 22, 22, "tcp"), {"type": "ingress"})}
	"aws-sg-no-public-ssh" in deny_for(in1)
	in2 := {"type": "aws_security_group_rule", "config": object.union(rule([world], [], 22, 22, "tcp"), {"type": "egress"})}
	not "aws-sg-no-public-ssh" in deny_for(in2)
	in3 := {"type": "aws_vpc_security_group_ingress_rule", "config": {"cidr_ipv4": world, "from_port": 22, "to_port": 22, "ip_protocol": "tcp"}}
	"aws-sg-no-public-ssh" in deny_for(in3)
	in4 := {"type": "aws_vpc_security_group_ingress_rule", "config": {"cidr_ipv4": private, "from_port": 22, "to_port": 22, "ip_protocol": "tcp"}}
	not "aws-sg-no-public-ssh" in deny_for(in4)
}

test_ssh_unknown_cidr_never_fails if {
	in1 := group([rule(marker, [], 22, 22, "tcp")])
	not "aws-sg-no-public-ssh" in deny_for(in1)
	in2 := group([rule([world], [], marker, marker, "tcp")])
	not "aws-sg-no-public-ssh" in deny_for(in2)
}

test_other_resource_types_are_not_judged if {
	in1 := {"type": "aws_instance", "config": {"ingress": [rule([world], [], 22, 22, "tcp")]}}
	not "aws-sg-no-public-ssh" in deny_for(in1)
}

# --- RDP (3389) and IPv6 admin ports -------------------------------------------------------------

test_rdp_open_to_the_world_fails_and_other_ports_pass if {
	in1 := group([rule([world], [], 3389, 3389, "tcp")])
	"aws-sg-no-public-rdp" in deny_for(in1)
	in2 := group([rule([world], [], 3000, 4000, "tcp")])
	"aws-sg-no-public-rdp" in deny_for(in2)
	in3 := group([rule([world], [], 3390, 4000, "tcp")])
	not "aws-sg-no-public-rdp" in deny_for(in3)
	in4 := group([rule([private], [], 3389, 3389, "tcp")])
	not "aws-sg-no-public-rdp" in deny_for(in4)
	in5 := group([rule([], ["::/0"], 3389, 3389, "tcp")])
	not "aws-sg-no-public-rdp" in deny_for(in5)
}

test_ipv6_admin_ports if {
	in1 := group([rule([], ["::/0"], 3389, 3389, "tcp")])
	"aws-sg-no-public-admin-ipv6" in deny_for(in1)
	in2 := group([rule([], ["2001:db8::/32", "::0/0"], 20, 30, "tcp")])
	"aws-sg-no-public-admin-ipv6" in deny_for(in2)
	in3 := group([rule([], ["2001:db8::/32"], 22, 22, "tcp")])
	not "aws-sg-no-public-admin-ipv6" in deny_for(in3)
	in4 := group([rule([], ["::/0"], 443, 443, "tcp")])
	not "aws-sg-no-public-admin-ipv6" in deny_for(in4)
	in5 := group([rule([world], [], 22, 22, "tcp")])
	not "aws-sg-no-public-admin-ipv6" in deny_for(in5)
}

# --- every port, database ports, the allow-list --------------------------------------------------

test_all_traffic_needs_both_ends_of_the_port_range if {
	in1 := group([rule([world], [], 0, 0, "-1")])
	"aws-sg-no-public-all-traffic" in deny_for(in1)
	in2 := group([rule([], ["::/0"], 0, 65535, "tcp")])
	"aws-sg-no-public-all-traffic" in deny_for(in2)
	in3 := group([rule([world], [], 1, 65535, "tcp")])
	not "aws-sg-no-public-all-traffic" in deny_for(in3)
	in4 := group([rule([world], [], 0, 65534, "tcp")])
	not "aws-sg-no-public-all-traffic" in deny_for(in4)
	in5 := group([rule([private], [], 0, 0, "-1")])
	not "aws-sg-no-public-all-traffic" in deny_for(in5)
}

test_database_ports if {
	every port in [1433, 1521, 3306, 5432, 6379, 9200, 11211, 27017] {
		in1 := group([rule([world], [], port, port, "tcp")])
		"aws-sg-no-public-db-ports" in deny_for(in1)
	}
	in2 := group([rule([], ["::/0"], 5000, 6000, "tcp")])
	"aws-sg-no-public-db-ports" in deny_for(in2)
	in3 := group([rule([world], [], 5433, 6378, "tcp")])
	not "aws-sg-no-public-db-ports" in deny_for(in3)
	in4 := group([rule([private], [], 5432, 5432, "tcp")])
	not "aws-sg-no-public-db-ports" in deny_for(in4)
}

test_public_ports_beyond_the_allow_list if {
	in1 := group([rule([world], [], 79, 81, "tcp")])
	"aws-sg-public-ingress-allowlisted" in deny_for(in1)
	in2 := group([rule([world], [], 8443, 8443, "tcp")])
	"aws-sg-public-ingress-allowlisted" in deny_for(in2)
	in3 := group([rule([world], [], 80, 80, "tcp")])
	not "aws-sg-public-ingress-allowlisted" in deny_for(in3)
	in4 := group([rule([world], ["::/0"], 443, 443, "tcp")])
	not "aws-sg-public-ingress-allowlisted" in deny_for(in4)
	in5 := group([rule([private], [], 0, 65535, "tcp")])
	not "aws-sg-public-ingress-allowlisted" in deny_for(in5)
}

test_the_allow_list_is_a_parameter if {
	inp := group([rule([world], [], 8443, 8443, "tcp")])
	in1 := object.union(inp, {"params": {"aws-sg-public-ingress-allowlisted": {"aws-sg-public-ingress-allowlisted": {"allowed_ports": [8443]}}}})
	not "aws-sg-public-ingress-allowlisted" in deny_for(in1)
}

# --- default group, NACLs, subnets, flow logs ----------------------------------------------------

test_default_group_must_be_empty if {
	in1 := {"type": "aws_default_security_group", "config": {"ingress": [rule([private], [], 0, 0, "-1")], "egress": []}}
	"aws-default-sg-restricts-all" in deny_for(in1)
	in2 := {"type": "aws_default_security_group", "config": {"ingress": [], "egress": [rule([world], [], 0, 0, "-1")]}}
	"aws-default-sg-restricts-all" in deny_for(in2)
	in3 := {"type": "aws_default_security_group", "config": {"ingress": [], "egress": []}}
	not "aws-default-sg-restricts-all" in deny_for(in3)
	in4 := {"type": "aws_security_group", "config": {"ingress": [rule([private], [], 443, 443, "tcp")]}}
	not "aws-default-sg-restricts-all" in deny_for(in4)
}

nacl_rule(action, cidr, from, to) := {"type": "aws_network_acl_rule", "config": {"egress": false, "rule_action": action, "cidr_block": cidr, "from_port": from, "to_port": to, "protocol": "tcp"}}

test_nacl_admin_ports if {
	in1 := nacl_rule("allow", world, 0, 1024)
	"aws-nacl-no-public-admin" in deny_for(in1)
	in2 := nacl_rule("ALLOW", world, 3389, 3389)
	"aws-nacl-no-public-admin" in deny_for(in2)
	in3 := nacl_rule("deny", world, 22, 22)
	not "aws-nacl-no-public-admin" in deny_for(in3)
	in4 := nacl_rule("allow", private, 22, 22)
	not "aws-nacl-no-public-admin" in deny_for(in4)
	in5 := nacl_rule("allow", world, 443, 443)
	not "aws-nacl-no-public-admin" in deny_for(in5)
	egress := {"type": "aws_network_acl_rule", "config": {"egress": true, "rule_action": "allow", "cidr_block": world, "from_port": 22, "to_port": 22, "protocol": "tcp"}}
	in6 := egress
	not "aws-nacl-no-public-admin" in deny_for(in6)
	in7 := {"type": "aws_network_acl", "config": {"ingress": [{"action": "allow", "cidr_block": private, "from_port": 22, "to_port": 22, "protocol": "tcp"}, {"action": "allow", "ipv6_cidr_block": "::/0", "from_port": 22, "to_port": 22, "protocol": "tcp"}]}}
	"aws-nacl-no-public-admin" in deny_for(in7)
}

test_subnets_and_flow_logs if {
	in1 := {"type": "aws_subnet", "config": {"map_public_ip_on_launch": true}}
	"aws-subnet-no-auto-public-ip" in deny_for(in1)
	in2 := {"type": "aws_subnet", "config": {"map_public_ip_on_launch": false}}
	not "aws-subnet-no-auto-public-ip" in deny_for(in2)
	in3 := {"type": "aws_subnet", "config": {"map_public_ip_on_launch": marker}}
	not "aws-subnet-no-auto-public-ip" in deny_for(in3)
	in4 := {"type": "aws_flow_log", "config": {"traffic_type": "ACCEPT"}}
	"aws-vpc-flow-logs" in deny_for(in4)
	in5 := {"type": "aws_flow_log", "config": {"traffic_type": "ALL"}}
	not "aws-vpc-flow-logs" in deny_for(in5)
	in6 := {"type": "aws_flow_log", "config": {"traffic_type": "REJECT"}}
	not "aws-vpc-flow-logs" in deny_for(in6)
}

# --- load balancers ------------------------------------------------------------------------------

listener(protocol, extra) := {"type": "aws_lb_listener", "config": object.union({"protocol": protocol, "default_action": [{"type": "forward"}]}, extra)}

test_listeners_use_https_or_redirect if {
	in1 := listener("HTTP", {})
	"aws-lb-listener-https" in deny_for(in1)
	in2 := listener("HTTPS", {"ssl_policy": "ELBSecurityPolicy-TLS13-1-2-2021-06"})
	not "aws-lb-listener-https" in deny_for(in2)
	in3 := listener("HTTP", {"default_action": [{"type": "redirect", "redirect": [{"protocol": "HTTPS"}]}]})
	not "aws-lb-listener-https" in deny_for(in3)
	in4 := listener("HTTP", {"default_action": [{"type": "redirect", "redirect": [{"protocol": "HTTP"}]}]})
	"aws-lb-listener-https" in deny_for(in4)
}

test_listeners_use_a_modern_tls_policy if {
	in1 := listener("HTTPS", {"ssl_policy": "ELBSecurityPolicy-2016-08"})
	"aws-lb-listener-modern-tls" in deny_for(in1)
	in2 := listener("HTTPS", {"ssl_policy": "ELBSecurityPolicy-TLS13-1-2-2021-06"})
	not "aws-lb-listener-modern-tls" in deny_for(in2)
	in3 := listener("TLS", {"ssl_policy": "ELBSecurityPolicy-TLS-1-2-2017-01"})
	not "aws-lb-listener-modern-tls" in deny_for(in3)
	in4 := listener("HTTP", {"ssl_policy": "ELBSecurityPolicy-2016-08"})
	not "aws-lb-listener-modern-tls" in deny_for(in4)
}

test_load_balancers_log_and_drop_invalid_headers if {
	in1 := {"type": "aws_lb", "config": {"access_logs": [{"enabled": false}]}}
	"aws-lb-access-logs" in deny_for(in1)
	in2 := {"type": "aws_lb", "config": {"access_logs": [{"enabled": true}]}}
	not "aws-lb-access-logs" in deny_for(in2)
	in3 := {"type": "aws_lb", "config": {"load_balancer_type": "application"}}
	"aws-lb-drop-invalid-headers" in deny_for(in3)
	in4 := {"type": "aws_lb", "config": {"drop_invalid_header_fields": true}}
	not "aws-lb-drop-invalid-headers" in deny_for(in4)
	in5 := {"type": "aws_lb", "config": {"load_balancer_type": "network"}}
	not "aws-lb-drop-invalid-headers" in deny_for(in5)
}
