"""The SSH/RDP exposure controls condition by condition, with fixed examples: the port check,
every CIDR position in a rule, IPv4 versus IPv6 (::/0), port ranges that include 22 or stop
just short of it, and every AWS rule shape (inline, security_group_rule, vpc ingress rule)."""

from __future__ import annotations

from typing import Any

import pytest

from policies.compliance import RegoEvaluator, load_library

EVALUATOR = RegoEvaluator(load_library())
SSH, RDP, V6 = "aws-sg-no-public-ssh", "aws-sg-no-public-rdp", "aws-sg-no-public-admin-ipv6"
PRIVATE = "10.0.0.0/8"
WORLD = "0.0.0.0/0"


def _admin(rtype: str, config: dict[str, Any]) -> set[str]:
    failing = EVALUATOR.evaluate(rtype, config).failing
    return {c for c in failing if c in (SSH, RDP, V6)}


def _group(*rules: dict[str, Any]) -> set[str]:
    return _admin("aws_security_group", {"name": "g", "ingress": list(rules)})


def _inline(v4: list[str], v6: list[str] | None = None, ports: tuple[int, int] = (22, 22),
            protocol: str = "tcp") -> dict[str, Any]:
    return {"cidr_blocks": v4, "ipv6_cidr_blocks": v6 or [], "from_port": ports[0],
            "to_port": ports[1], "protocol": protocol}


@pytest.mark.parametrize(
    "cidrs",
    [[WORLD], [WORLD, PRIVATE], [PRIVATE, WORLD], [PRIVATE, "192.168.0.0/16", WORLD],
     ["172.16.0.0/12", WORLD, PRIVATE], ["203.0.113.9/0"]],
)
def test_ssh_open_to_the_world_is_found_at_every_cidr_position(cidrs: list[str]) -> None:
    assert _group(_inline(cidrs)) == {SSH}


@pytest.mark.parametrize("cidrs", [[PRIVATE], [PRIVATE, "192.168.0.0/16"], ["0.0.0.0/1"], []])
def test_ssh_from_private_or_narrow_sources_passes(cidrs: list[str]) -> None:
    assert _group(_inline(cidrs)) == set()


def test_the_open_rule_is_found_at_every_rule_position() -> None:
    closed, open_ = _inline([PRIVATE]), _inline([WORLD])
    assert _group(closed, open_) == {SSH}
    assert _group(open_, closed) == {SSH}
    assert _group(closed, _inline([WORLD], ports=(443, 443)), open_) == {SSH}


@pytest.mark.parametrize(
    ("ports", "expected"),
    [((22, 22), {SSH}), ((21, 22), {SSH}), ((22, 23), {SSH}), ((20, 30), {SSH}),
     ((0, 65535), {SSH, RDP}), ((1, 1024), {SSH}), ((23, 23), set()), ((21, 21), set()),
     ((23, 3388), set()), ((443, 443), set()), ((3389, 3389), {RDP}), ((3388, 3390), {RDP}),
     ((3390, 3390), set())],
)
def test_the_port_check_includes_22_exactly(ports: tuple[int, int], expected: set[str]) -> None:
    assert _group(_inline([WORLD], ports=ports)) == expected


@pytest.mark.parametrize(("protocol", "expected"),
                         [("tcp", {SSH}), ("6", {SSH}), ("udp", {SSH}), ("-1", {SSH, RDP}),
                          ("icmp", set())])
def test_protocols_that_carry_port_22(protocol: str, expected: set[str]) -> None:
    assert _group(_inline([WORLD], protocol=protocol)) == expected


@pytest.mark.parametrize("v6", [["::/0"], ["2001:db8::/32", "::/0"], ["::0/0"]])
def test_ipv6_world_is_the_ipv6_control_not_the_ipv4_one(v6: list[str]) -> None:
    assert _group(_inline([], v6)) == {V6}
    assert _group(_inline([PRIVATE], v6, ports=(3389, 3389))) == {V6}


def test_ipv6_private_ranges_and_other_ports_pass() -> None:
    assert _group(_inline([], ["2001:db8::/32"])) == set()
    assert _group(_inline([], ["::/0"], ports=(443, 443))) == set()
    assert _group(_inline([WORLD], ["::/0"])) == {SSH, V6}


@pytest.mark.parametrize(
    ("rtype", "config", "expected"),
    [
        ("aws_security_group_rule", {"type": "ingress", "cidr_blocks": [PRIVATE, WORLD],
                                     "from_port": 22, "to_port": 22, "protocol": "tcp"}, {SSH}),
        ("aws_security_group_rule", {"type": "egress", "cidr_blocks": [WORLD],
                                     "from_port": 22, "to_port": 22, "protocol": "tcp"}, set()),
        ("aws_security_group_rule", {"type": "ingress", "cidr_blocks": [WORLD],
                                     "from_port": 80, "to_port": 80, "protocol": "tcp"}, set()),
        ("aws_vpc_security_group_ingress_rule", {"cidr_ipv4": WORLD, "from_port": 10,
                                                 "to_port": 30, "ip_protocol": "tcp"}, {SSH}),
        ("aws_vpc_security_group_ingress_rule", {"cidr_ipv4": PRIVATE, "from_port": 22,
                                                 "to_port": 22, "ip_protocol": "tcp"}, set()),
        ("aws_vpc_security_group_ingress_rule", {"cidr_ipv6": "::/0", "from_port": 22,
                                                 "to_port": 22, "ip_protocol": "tcp"}, {V6}),
        ("aws_vpc_security_group_ingress_rule", {"cidr_ipv4": WORLD, "ip_protocol": "-1"},
         {SSH, RDP}),
        ("aws_default_security_group", {"ingress": [_inline([PRIVATE, WORLD])]}, {SSH}),
    ],
)
def test_every_rule_shape(rtype: str, config: dict[str, Any], expected: set[str]) -> None:
    assert _admin(rtype, config) == expected
