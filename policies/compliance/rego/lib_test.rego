package novacron.compliance.lib_test

# Unit tests of the compliance helpers (`novacron policy test policies/compliance/rego`).
import data.novacron.compliance.lib
import rego.v1

marker := {"__unknown__": "known after apply"}

test_the_marker_is_unknown_and_values_are_not if {
	lib.unknown(marker)
	not lib.unknown("(known after apply)")
	not lib.unknown({"a": 1})
	lib.unknown_under({"a": [1, {"b": marker}]})
	not lib.unknown_under({"a": [1, {"b": 2}]})
}

test_unknown_propagates_through_get_and_block if {
	lib.get(marker, "x") == marker
	lib.block({"meta": marker}, "meta") == marker
	lib.block({"meta": [marker]}, "meta") == marker
	lib.block({}, "meta") == {}
	lib.get({}, "x") == null
}

test_three_valued_tests_hold_only_for_known_values if {
	lib.not_true({"a": false}, "a")
	lib.not_true({}, "a")
	not lib.not_true({"a": marker}, "a")
	not lib.differs({"a": marker}, "a", "x")
	not lib.not_in({"a": marker}, "a", {"x"})
	not lib.empty({"a": marker}, "a")
	lib.empty({"a": ""}, "a")
}

test_numbers_compare_only_as_numbers if {
	lib.number({"n": "14"}, "n", 0) == 14
	lib.number({}, "n", 6) == 6
	not lib.number({"n": "(known after apply)"}, "n", 0)
	not lib.number({"n": marker}, "n", 0)
	lib.below(3, 4)
	not lib.below("3", 4)
	not lib.below(marker, 4)
	lib.at_least(4, 4)
}

test_world_open_sources if {
	lib.world_open("0.0.0.0/0")
	lib.world_open("::/0")
	lib.world_open("::0/0")
	lib.world_open("203.0.113.9/0")
	lib.world_open("Internet")
	lib.world_open_v6("::/0")
	not lib.world_open_v6("0.0.0.0/0")
	not lib.world_open("10.0.0.0/8")
	not lib.world_open("0.0.0.0/1")
}

test_port_ranges if {
	lib.port_range("79-81") == [79, 81]
	lib.port_range(22) == [22, 22]
	lib.port_range("*") == [0, 65535]
	lib.covers([20, 30], 22)
	not lib.covers([23, 30], 22)
	lib.beyond([79, 81], {80, 443})
	not lib.beyond([443, 443], {80, 443})
	not lib.beyond([80, 80], {80, 443})
}
