# METADATA
# title: Helpers shared by the compliance controls (Terraform JSON shapes, ports, policies)
package novacron.compliance.lib

import rego.v1

# Sources that mean "anyone on the internet" across providers.
public_sources := {"0.0.0.0/0", "::/0", "*", "internet", "any"}

# Database and cache ports that must never face the internet.
db_ports := [1433, 1521, 3306, 5432, 6379, 9200, 11211, 27017]

# The first element of a Terraform nested block (JSON: a list), or {} when absent.
block(obj, key) := b if {
	b := obj[key][0]
} else := {}

is_public(cidr) if lower(cidr) in public_sources

truthy(v) if v == true

truthy(v) if lower(v) in {"true", "1", "on", "yes", "enabled"}

# A protocol value that allows every protocol (AWS "-1", GCP "all", Azure "*").
all_protocols(p) if p in {"-1", -1, "all", "*", "ALL", "Any", "any"}

tcp_or_all(p) if lower(p) in {"tcp", "6"}

tcp_or_all(p) if all_protocols(p)

udp_or_all(p) if lower(p) in {"udp", "17"}

udp_or_all(p) if all_protocols(p)

# Numeric range [from, to] containing port; AWS uses from 0 / to 0 with protocol -1 for all.
range_covers(from, to, port) if {
	to_number(from) <= port
	port <= to_number(to)
}

# A port spec string ("22", "20-30", "*"), as used by GCP firewalls and Azure NSG rules.
spec_covers(spec, _) if spec in {"*", "Any", "any"}

spec_covers(spec, port) if to_number(spec) == port

spec_covers(spec, port) if {
	parts := split(spec, "-")
	count(parts) == 2
	range_covers(parts[0], parts[1], port)
}

# Statements of an IAM-style policy given as a JSON string or an object.
statements(policy) := s if {
	is_string(policy)
	s := as_array(json.unmarshal(policy).Statement)
} else := s if {
	is_object(policy)
	s := as_array(policy.Statement)
} else := []

as_array(x) := x if is_array(x)

as_array(x) := [x] if not is_array(x)

wildcard_principal(p) if p == "*"

wildcard_principal(p) if {
	is_object(p)
	some v in as_array(p.AWS)
	v == "*"
}

public_allow(s) if {
	s.Effect == "Allow"
	wildcard_principal(s.Principal)
	not s.Condition
}

non_empty(v) if {
	is_string(v)
	v != ""
}

non_empty(v) if {
	is_array(v)
	count(v) > 0
}

non_empty(v) if {
	is_object(v)
	count(v) > 0
}

# obj[key] when it is a list, else [] (absent, null or unknown until apply).
list_of(obj, key) := x if {
	x := obj[key]
	is_array(x)
} else := []
