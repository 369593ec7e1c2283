# METADATA
# title: AWS network controls (security groups, NACLs, subnets, flow logs, load balancers)
package novacron.compliance.aws_network

import data.novacron.compliance.lib
import rego.v1

cfg := input.config

# Ingress rules of every AWS shape, normalised to {cidrs, from, to, protocol}.
ingress contains r if {
	input.type in {"aws_security_group", "aws_default_security_group"}
	some i in lib.list_of(cfg, "ingress")
	r := {"v4": lib.list_of(i, "cidr_blocks"), "v6": lib.list_of(i, "ipv6_cidr_blocks"), "from": i.from_port, "to": i.to_port, "protocol": i.protocol}
}

ingress contains r if {
	input.type == "aws_security_group_rule"
	cfg.type == "ingress"
	r := {"v4": lib.list_of(cfg, "cidr_blocks"), "v6": lib.list_of(cfg, "ipv6_cidr_blocks"), "from": cfg.from_port, "to": cfg.to_port, "protocol": cfg.protocol}
}

ingress contains r if {
	input.type == "aws_vpc_security_group_ingress_rule"
	r := {"v4": [x | x := cfg.cidr_ipv4; is_string(x)], "v6": [x | x := cfg.cidr_ipv6; is_string(x)], "from": object.get(cfg, "from_port", 0), "to": object.get(cfg, "to_port", 65535), "protocol": cfg.ip_protocol}
}

exposes(r, port) if lib.all_protocols(r.protocol)

exposes(r, port) if {
	lib.tcp_or_all(r.protocol)
	lib.range_covers(r.from, r.to, port)
}

open_v4(r) if "0.0.0.0/0" in r.v4

open_v6(r) if "::/0" in r.v6

sg_types := {"aws_security_group", "aws_security_group_rule", "aws_vpc_security_group_ingress_rule"}

deny contains "aws-sg-no-public-ssh" if {
	input.type in sg_types
	some r in ingress
	open_v4(r)
	exposes(r, 22)
}

deny contains "aws-sg-no-public-rdp" if {
	input.type in sg_types
	some r in ingress
	open_v4(r)
	exposes(r, 3389)
}

deny contains "aws-sg-no-public-admin-ipv6" if {
	input.type in sg_types
	some r in ingress
	open_v6(r)
	some port in [22, 3389]
	exposes(r, port)
}

deny contains "aws-sg-no-public-all-traffic" if {
	input.type in sg_types
	some r in ingress
	any_open(r)
	all_ports(r)
}

any_open(r) if open_v4(r)

any_open(r) if open_v6(r)

all_ports(r) if lib.all_protocols(r.protocol)

all_ports(r) if {
	lib.range_covers(r.from, r.to, 0)
	lib.range_covers(r.from, r.to, 65535)
}

deny contains "aws-sg-no-public-db-ports" if {
	input.type in sg_types
	some r in ingress
	any_open(r)
	some port in lib.db_ports
	exposes(r, port)
}

deny contains "aws-default-sg-restricts-all" if {
	input.type == "aws_default_security_group"
	some key in ["ingress", "egress"]
	count(lib.list_of(cfg, key)) > 0
}

nacl_entries contains e if {
	input.type == "aws_network_acl_rule"
	not cfg.egress == true
	e := {"action": cfg.rule_action, "cidr": object.get(cfg, "cidr_block", ""), "v6": object.get(cfg, "ipv6_cidr_block", ""), "from": object.get(cfg, "from_port", 0), "to": object.get(cfg, "to_port", 65535), "protocol": cfg.protocol}
}

nacl_entries contains e if {
	input.type == "aws_network_acl"
	some i in lib.list_of(cfg, "ingress")
	e := {"action": i.action, "cidr": object.get(i, "cidr_block", ""), "v6": object.get(i, "ipv6_cidr_block", ""), "from": i.from_port, "to": i.to_port, "protocol": i.protocol}
}

deny contains "aws-nacl-no-public-admin" if {
	input.type in {"aws_network_acl_rule", "aws_network_acl"}
	some e in nacl_entries
	lower(e.action) == "allow"
	some src in [e.cidr, e.v6]
	src in {"0.0.0.0/0", "::/0"}
	some port in [22, 3389]
	exposes({"protocol": e.protocol, "from": e.from, "to": e.to}, port)
}

deny contains "aws-subnet-no-auto-public-ip" if {
	input.type == "aws_subnet"
	cfg.map_public_ip_on_launch == true
}

deny contains "aws-vpc-flow-logs" if {
	input.type == "aws_flow_log"
	not cfg.traffic_type in {"ALL", "REJECT"}
}

listener_types := {"aws_lb_listener", "aws_alb_listener"}

secure_protocols := {"HTTPS", "TLS"}

redirects_to_https if {
	some a in cfg.default_action
	a.type == "redirect"
	lib.block(a, "redirect").protocol == "HTTPS"
}

deny contains "aws-lb-listener-https" if {
	input.type in listener_types
	not cfg.protocol in secure_protocols
	not redirects_to_https
}

deny contains "aws-lb-listener-modern-tls" if {
	input.type in listener_types
	cfg.protocol in secure_protocols
	not modern_policy(object.get(cfg, "ssl_policy", ""))
}

modern_policy(p) if contains(p, "TLS13")

modern_policy(p) if contains(p, "-1-2-")

lb_types := {"aws_lb", "aws_alb"}

deny contains "aws-lb-access-logs" if {
	input.type in lb_types
	not lib.block(cfg, "access_logs").enabled == true
}

deny contains "aws-lb-drop-invalid-headers" if {
	input.type in lb_types
	object.get(cfg, "load_balancer_type", "application") == "application"
	not cfg.drop_invalid_header_fields == true
}
