"""Exposure to the internet: any port range, IPv4 and IPv6, with an allow-list of public ports."""

from __future__ import annotations

from typing import Any

import pytest

from policies.compliance import RegoEvaluator, load_library

LIBRARY = load_library()
EVALUATOR = RegoEvaluator(LIBRARY)


def _sg_rule(cidr: str, from_port: int, to_port: int, protocol: str = "tcp") -> dict[str, Any]:
    key = "ipv6_cidr_blocks" if ":" in cidr else "cidr_blocks"
    return {"type": "ingress", key: [cidr], "from_port": from_port, "to_port": to_port,
            "protocol": protocol}


@pytest.mark.parametrize(
    ("cidr", "from_port", "to_port", "protocol", "expected"),
    [
        ("0.0.0.0/0", 79, 81, "tcp", {"aws-sg-public-ingress-allowlisted"}),
        ("::/0", 79, 81, "tcp", {"aws-sg-public-ingress-allowlisted"}),
        ("::0/0", 8000, 8080, "6", {"aws-sg-public-ingress-allowlisted"}),
        ("198.51.100.7/0", 53, 53, "udp", {"aws-sg-public-ingress-allowlisted"}),
        ("0.0.0.0/0", 443, 443, "tcp", set()),
        ("0.0.0.0/0", 80, 80, "tcp", set()),
        ("10.0.0.0/8", 0, 65535, "tcp", set()),
        ("0.0.0.0/0", 0, 65535, "tcp", {"aws-sg-public-ingress-allowlisted",
                                         "aws-sg-no-public-all-traffic", "aws-sg-no-public-ssh",
                                         "aws-sg-no-public-rdp", "aws-sg-no-public-db-ports"}),
        ("0.0.0.0/0", 20, 25, "tcp", {"aws-sg-public-ingress-allowlisted",
                                       "aws-sg-no-public-ssh"}),
        ("0.0.0.0/0", 22, 22, "udp", {"aws-sg-public-ingress-allowlisted",
                                       "aws-sg-no-public-ssh"}),  # CIS 5.2: TCP, UDP or all
        ("::/0", 3389, 3389, "tcp", {"aws-sg-public-ingress-allowlisted",
                                      "aws-sg-no-public-admin-ipv6"}),
        ("0.0.0.0/0", 0, 0, "-1", {"aws-sg-public-ingress-allowlisted",
                                    "aws-sg-no-public-all-traffic", "aws-sg-no-public-ssh",
                                    "aws-sg-no-public-rdp", "aws-sg-no-public-db-ports"}),
        ("0.0.0.0/0", -1, -1, "icmp", set()),  # no ports: not a port exposure
    ],
)
def test_security_group_exposure(cidr: str, from_port: int, to_port: int, protocol: str,
                                 expected: set[str]) -> None:
    failing = EVALUATOR.evaluate("aws_security_group_rule",
                                 _sg_rule(cidr, from_port, to_port, protocol)).failing
    exposure = {c for c in failing if c.startswith("aws-sg-")}
    assert exposure == expected


def test_the_allow_list_is_configuration() -> None:
    rule = _sg_rule("0.0.0.0/0", 8443, 8443)
    assert "aws-sg-public-ingress-allowlisted" in EVALUATOR.evaluate(
        "aws_security_group_rule", rule).failing
    custom = load_library(parameters={"aws-sg-public-ingress-allowlisted":
                                      {"allowed_ports": [443, 8443]}})
    failing = RegoEvaluator(custom).evaluate("aws_security_group_rule", rule).failing
    assert "aws-sg-public-ingress-allowlisted" not in failing
    assert custom.get("aws-sg-public-ingress-allowlisted").params == {
        "allowed_ports": [443, 8443]}


def test_parameters_for_unknown_controls_are_refused() -> None:
    with pytest.raises(Exception, match="without parameters"):
        load_library(parameters={"aws-ebs-encrypted": {"x": 1}})


@pytest.mark.parametrize(
    ("rtype", "config", "control"),
    [
        ("google_compute_firewall", {"source_ranges": ["::/0"],
                                     "allow": [{"protocol": "tcp", "ports": ["79-81"]}]},
         "gcp-firewall-public-ingress-allowlisted"),
        ("google_compute_firewall", {"source_ranges": ["0.0.0.0/0"],
                                     "allow": [{"protocol": "udp"}]},
         "gcp-firewall-public-ingress-allowlisted"),
        ("google_compute_firewall", {"source_ranges": ["::/0"],
                                     "allow": [{"protocol": "tcp", "ports": ["22"]}]},
         "gcp-firewall-no-public-ssh"),
        ("azurerm_network_security_rule", {"direction": "Inbound", "access": "Allow",
                                           "protocol": "Tcp", "source_address_prefix": "::/0",
                                           "destination_port_ranges": ["3000-3389"]},
         "azure-nsg-no-public-rdp"),
        ("azurerm_network_security_rule", {"direction": "Inbound", "access": "Allow",
                                           "protocol": "*", "source_address_prefix": "Internet",
                                           "destination_port_range": "161"},
         "azure-nsg-no-public-udp"),
        ("aws_network_acl_rule", {"egress": False, "rule_action": "allow", "protocol": "-1",
                                  "ipv6_cidr_block": "::/0", "from_port": 0, "to_port": 0},
         "aws-nacl-no-public-admin"),
        ("novacron_network", {"ingress": [{"port": "20-30", "cidr": "::/0"}]},
         "novacron-network-no-public-admin-ingress"),
        ("novacron_vm", {"security_groups": [{"port": 8080, "cidr": "0.0.0.0/0"}]},
         "novacron-public-ingress-allowlisted"),
    ],
)
def test_other_providers_use_the_same_port_and_cidr_logic(
    rtype: str, config: dict[str, Any], control: str
) -> None:
    assert control in EVALUATOR.evaluate(rtype, config).failing


def test_private_sources_and_denies_are_not_exposure() -> None:
    assert not {c for c in EVALUATOR.evaluate("google_compute_firewall", {
        "source_ranges": ["10.0.0.0/8"], "allow": [{"protocol": "all"}]}).failing
        if "firewall" in c}
    assert "aws-nacl-no-public-admin" not in EVALUATOR.evaluate("aws_network_acl_rule", {
        "egress": False, "rule_action": "deny", "protocol": "-1", "cidr_block": "0.0.0.0/0",
        "from_port": 0, "to_port": 0}).failing
