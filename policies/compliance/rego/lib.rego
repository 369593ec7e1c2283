# METADATA
# title: Helpers shared by the compliance controls (three-valued values, Terraform shapes, ports)
# description: >-
#   A plan value that Terraform computes at apply time reaches Rego as the unknown marker
#   (an object). Control packages read attributes only through these helpers: each is undefined
#   when the value it needs is unknown, so an unknown value can never fail a control. The loader
#   refuses control packages that compare with <, <=, > or >= directly (use below/at_most/above/at_least here).
package novacron.compliance.lib

import rego.v1

# --- unknown values ---------------------------------------------------------------------------

marker_key := "__unknown__"

marker_value := "known after apply"

# v is the marker of a value unknown until apply.
unknown(v) if {
	is_object(v)
	v[marker_key] == marker_value
}

known(v) if not unknown(v)

# Some value under v (v included) is unknown.
unknown_under(v) if unknown(v)

unknown_under(v) if {
	walk(v, [_, x])
	unknown(x)
}

# obj[key], null when absent; the marker itself when obj is unknown (unknown propagates).
get(obj, key) := obj if unknown(obj)
else := object.get(obj, key, null) if is_object(obj)
else := null

# The first element of a Terraform nested block (JSON: a list), {} when absent or empty, the
# marker when the block (or its first element) is unknown.
block(obj, key) := obj if unknown(obj)
else := v if {
	v := object.get(obj, key, null)
	unknown(v)
} else := b if {
	b := object.get(obj, key, null)[0]
	is_object(b)
} else := {}

# obj[key] when it is a list, else [] (absent, null or unknown: callers read unknowns via reads).
list_of(obj, key) := x if {
	x := object.get(obj, key, null)
	is_array(x)
} else := []

# --- three-valued tests: each holds only for a known value ------------------------------------

is_true(obj, key) if get(obj, key) == true

is_false(obj, key) if get(obj, key) == false

# Known, and not true (false, absent or null count: a flag that is not set is off).
not_true(obj, key) if {
	v := get(obj, key)
	known(v)
	v != true
}

# Known and equal / different.
equals(obj, key, want) if get(obj, key) == want

differs(obj, key, want) if {
	v := get(obj, key)
	known(v)
	v != want
}

# Known and outside a set (absent counts as null).
not_in(obj, key, allowed) if {
	v := get(obj, key)
	known(v)
	not v in allowed
}

# Known and empty: absent, null, "", [] or {}.
empty(obj, key) if {
	v := get(obj, key)
	known(v)
	not non_empty(v)
}

# A known, non-empty string, list or object.
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
	known(v)
	count(v) > 0
}

# A known number (numeric strings included; Terraform JSON renders some numbers as strings),
# or `fallback` when the attribute is absent or null.
number(obj, key, fallback) := n if {
	v := get(obj, key)
	v == null
	n := fallback
} else := n if {
	n := get(obj, key)
	is_number(n)
} else := n if {
	v := get(obj, key)
	is_string(v)
	regex.match(`^-?[0-9]+(\.[0-9]+)?$`, trim_space(v))
	n := to_number(trim_space(v))
}

# Number comparisons, defined for two numbers only (regopy and OPA disagree when a string is
# compared with a number, so the types are checked first).
below(a, b) if {
	is_number(a)
	is_number(b)
	a < b
}

at_most(a, b) if {
	is_number(a)
	is_number(b)
	a <= b
}

above(a, b) if below(b, a)

at_least(a, b) if at_most(b, a)

truthy(v) if v == true

truthy(v) if {
	is_string(v)
	lower(v) in {"true", "1", "on", "yes", "enabled"}
}

# --- framework parameters ----------------------------------------------------------------------

# {control id: parameter values} of a parametrised control and its framework variants.
variants(control) := object.get(object.get(input, "params", {}), control, {})

# --- networks and ports ------------------------------------------------------------------------

# Source tags that mean "anyone" in Azure NSGs and GCP/AWS rule shapes.
world_tags := {"*", "internet", "any", "0.0.0.0"}

# A source open to the whole internet: a world tag, or any IPv4/IPv6 CIDR of prefix length 0
# ("0.0.0.0/0", "::/0", "::0/0", "1.2.3.4/0", ...).
world_open(src) if {
	is_string(src)
	lower(trim_space(src)) in world_tags
}

world_open(src) if {
	is_string(src)
	parts := split(trim_space(src), "/")
	count(parts) == 2
	regex.match(`^[0-9a-fA-F:.]+$`, parts[0])
	to_number(parts[1]) == 0
}

world_open_v4(src) if {
	world_open(src)
	not contains(src, ":")
}

world_open_v6(src) if {
	world_open(src)
	contains(src, ":")
}

# A protocol value that allows every protocol (AWS "-1", GCP "all", Azure "*").
all_protocols(p) if p in {"-1", -1, "all", "*", "ALL", "Any", "any"}

tcp(p) if lower(sprintf("%v", [p])) in {"tcp", "6"}

udp(p) if lower(sprintf("%v", [p])) in {"udp", "17"}

# A protocol that carries ports: tcp, udp or all.
has_ports(p) if tcp(p)

has_ports(p) if udp(p)

has_ports(p) if all_protocols(p)

# [from, to] of a port spec: a number, "22", "20-30", "*" or absent (every port).
port_range(spec) := [0, 65535] if spec == null

port_range(spec) := [0, 65535] if spec in {"*", "Any", "any", "", "0-65535"}

port_range(spec) := [spec, spec] if is_number(spec)

port_range(spec) := [n, n] if {
	is_string(spec)
	regex.match(`^\s*[0-9]+\s*$`, spec)
	n := to_number(trim_space(spec))
}

port_range(spec) := [to_number(trim_space(p[0])), to_number(trim_space(p[1]))] if {
	is_string(spec)
	p := split(spec, "-")
	count(p) == 2
	regex.match(`^\s*[0-9]+\s*$`, p[0])
	regex.match(`^\s*[0-9]+\s*$`, p[1])
}

# A [from, to] range contains a port.
covers(range, port) if {
	at_most(range[0], port)
	at_most(port, range[1])
}

# A [from, to] range contains a port outside `allowed` (a set of numbers): counts the allowed
# ports inside the range instead of enumerating up to 65536 ports.
beyond(range, allowed) if {
	inside := count({p | some p in allowed; covers(range, p)})
	above((range[1] - range[0]) + 1, inside)
}

# --- IAM-style policy documents ----------------------------------------------------------------

# Statements of an IAM-style policy given as a JSON string or an object.
statements(policy) := s if {
	is_string(policy)
	s := as_array(json.unmarshal(policy).Statement)
} else := s if {
	is_object(policy)
	known(policy)
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
