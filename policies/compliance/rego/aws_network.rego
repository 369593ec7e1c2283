# METADATA
# title: AWS network controls (security groups, NACLs, subnets, flow logs, load balancers)
# description: >-
#   A security group (or NACL) is judged with its separate rule resources merged into its
#   inline ingress/egress lists (graph.py). Any port range and both address families count:
#   a source is open to the internet when its CIDR has prefix length 0 (0.0.0.0/0, ::/0, ...).
package novacron.compliance.aws_network

import data.novacron.compliance.lib
import rego.v1

cfg := input.config

group_types := {"aws_security_group", "aws_default_security_group"}

sg_types := group_types | {"aws_security_group_rule", "aws_vpc_security_group_ingress_rule"}

# Ingress rules of every AWS shape, normalised to {sources, range: [from, to], protocol}.
ingress contains r if {
	input.type in group_types
	some i in lib.list_of(cfg, "ingress")
	r := rule(i, lib.list_of(i, "cidr_blocks"), lib.list_of(i, "ipv6_cidr_blocks"), lib.get(i, "protocol"))
}

ingress contains r if {
	input.type == "aws_security_group_rule"
	lib.equals(cfg, "type", "ingress")
	r := rule(cfg, lib.list_of(cfg, "cidr_blocks"), lib.list_of(cfg, "ipv6_cidr_blocks"), lib.get(cfg, "protocol"))
}

ingress contains r if {
	input.type == "aws_vpc_security_group_ingress_rule"
	r := rule(cfg, strings_of(cfg, "cidr_ipv4"), strings_of(cfg, "cidr_ipv6"), lib.get(cfg, "ip_protocol"))
}

strings_of(obj, key) := [v | v := lib.get(obj, key); is_string(v)]

# Every protocol: every port, whatever from/to say (AWS uses 0/0 or -1/-1 with protocol -1).
rule(_, v4, v6, p) := {"sources": array.concat(v4, v6), "range": [0, 65535], "protocol": "all"} if lib.all_protocols(p)

rule(i, v4, v6, p) := {"sources": array.concat(v4, v6), "range": [f, t], "protocol": lower(sprintf("%v", [p]))} if {
	lib.has_ports(p)
	not lib.all_protocols(p)
	f := lib.number(i, "from_port", 0)
	t := lib.number(i, "to_port", 65535)
}

world(r) if {
	some s in r.sources
	lib.world_open(s)
}

world_v4(r) if {
	some s in r.sources
	lib.world_open_v4(s)
}

world_v6(r) if {
	some s in r.sources
	lib.world_open_v6(s)
}

deny contains "aws-sg-no-public-ssh" if {
	input.type in sg_types
	some r in ingress
	world_v4(r)
	lib.covers(r.range, 22)
}

deny contains "aws-sg-no-public-rdp" if {
	input.type in sg_types
	some r in ingress
	world_v4(r)
	lib.covers(r.range, 3389)
}

deny contains "aws-sg-no-public-admin-ipv6" if {
	input.type in sg_types
	some r in ingress
	world_v6(r)
	some port in [22, 3389]
	lib.covers(r.range, port)
}

deny contains "aws-sg-no-public-all-traffic" if {
	input.type in sg_types
	some r in ingress
	world(r)
	lib.covers(r.range, 0)
	lib.covers(r.range, 65535)
}

db_ports := [1433, 1521, 3306, 5432, 6379, 9200, 11211, 27017]

deny contains "aws-sg-no-public-db-ports" if {
	input.type in sg_types
	some r in ingress
	world(r)
	some port in db_ports
	lib.covers(r.range, port)
}

# Any port open to the internet that is not on the deployment's allow-list of public ports.
deny contains id if {
	input.type in sg_types
	some id, p in lib.variants("aws-sg-public-ingress-allowlisted")
	some r in ingress
	world(r)
	lib.beyond(r.range, {x | some x in p.allowed_ports})
}

deny contains "aws-default-sg-restricts-all" if {
	input.type == "aws_default_security_group"
	some key in ["ingress", "egress"]
	v := lib.get(cfg, key)
	is_array(v)
	lib.above(count(v), 0)
}

nacl_entries contains e if {
	input.type == "aws_network_acl_rule"
	not lib.is_true(cfg, "egress")
	lib.known(lib.get(cfg, "egress"))
	e := nacl_entry(cfg, lib.get(cfg, "rule_action"))
}

nacl_entries contains e if {
	input.type == "aws_network_acl"
	some i in lib.list_of(cfg, "ingress")
	e := nacl_entry(i, lib.get(i, "action"))
}

nacl_entry(i, action) := object.union(r, {"action": lower(action)}) if {
	is_string(action)
	r := rule(i, strings_of(i, "cidr_block"), strings_of(i, "ipv6_cidr_block"), lib.get(i, "protocol"))
}

deny contains "aws-nacl-no-public-admin" if {
	input.type in {"aws_network_acl_rule", "aws_network_acl"}
	some e in nacl_entries
	e.action == "allow"
	world(e)
	some port in [22, 3389]
	lib.covers(e.range, port)
}

deny contains "aws-subnet-no-auto-public-ip" if {
	input.type == "aws_subnet"
	lib.is_true(cfg, "map_public_ip_on_launch")
}

deny contains "aws-vpc-flow-logs" if {
	input.type == "aws_flow_log"
	lib.not_in(cfg, "traffic_type", {"ALL", "REJECT"})
}

listener_types := {"aws_lb_listener", "aws_alb_listener"}

secure_protocols := {"HTTPS", "TLS"}

redirects_to_https(actions) if {
	some a in actions
	lib.get(a, "type") == "redirect"
	lib.get(lib.block(a, "redirect"), "protocol") == "HTTPS"
}

deny contains "aws-lb-listener-https" if {
	input.type in listener_types
	lib.not_in(cfg, "protocol", secure_protocols)
	actions := lib.get(cfg, "default_action")
	not lib.unknown_under(actions)
	not redirects_to_https(lib.list_of(cfg, "default_action"))
}

deny contains "aws-lb-listener-modern-tls" if {
	input.type in listener_types
	lib.get(cfg, "protocol") in secure_protocols
	policy := object.get(cfg, "ssl_policy", "")
	lib.known(policy)
	not modern_policy(policy)
}

modern_policy(p) if contains(p, "TLS13")

modern_policy(p) if contains(p, "-1-2-")

lb_types := {"aws_lb", "aws_alb"}

deny contains "aws-lb-access-logs" if {
	input.type in lb_types
	lib.not_true(lib.block(cfg, "access_logs"), "enabled")
}

deny contains "aws-lb-drop-invalid-headers" if {
	input.type in lb_types
	lib.get(cfg, "load_balancer_type") in {null, "application"}
	lib.not_true(cfg, "drop_invalid_header_fields")
}
