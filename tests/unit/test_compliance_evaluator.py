"""The compliance evaluator built inside each test (not at import), with fixed examples: the
dispatch module it generates, three-valued verdicts, counting, and per-resource errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from policies.compliance import RegoEvaluator, load_library
from policies.compliance.evaluator import (
    Verdicts,
    evaluate_each,
    input_for,
    rule_name,
    unknown_keys,
    wrapper_module,
)

MARKER = {"__unknown__": "known after apply"}
OPEN_SSH = {"type": "ingress", "cidr_blocks": ["0.0.0.0/0"], "from_port": 22, "to_port": 22,
            "protocol": "tcp"}


def test_rule_names_are_rego_identifiers() -> None:
    assert rule_name("aws_security_group") == "t_aws_security_group"
    assert rule_name("a-b.c/d") == "t_a_b_c_d"


def test_the_dispatch_module_lists_each_type_with_sorted_reads() -> None:
    library = load_library()
    module = wrapper_module(library)
    reads = {c.id: c.reads for c in library.by_type["aws_security_group_rule"]}
    assert f"t_aws_security_group_rule_reads := {json.dumps(reads, sort_keys=True)}" in module
    union = " | ".join(f"data.{p}.deny" for p in library.packages_for("aws_security_group_rule"))
    assert f"t_aws_security_group_rule_fail := {union}" in module
    assert 'unknown_keys := unknown_top | {"*" | count(unknown_top) > 0}' in module.splitlines()


def test_unknown_keys_are_the_top_level_attributes_holding_the_marker() -> None:
    config = {"a": MARKER, "b": [1, {"c": MARKER}], "d": {"e": 1}, "f": [1, 2], "g": "x"}
    assert unknown_keys(config) == ["a", "b"]
    assert unknown_keys({"a": 1, "b": None, "c": {"d": [1]}}) == []


def test_the_input_of_one_resource() -> None:
    library = load_library(parameters={"aws-sg-public-ingress-allowlisted":
                                       {"allowed_ports": [443]}})
    value = input_for(library, "aws_security_group_rule", {"x": MARKER})
    assert value == {"type": "aws_security_group_rule", "config": {"x": MARKER},
                     "params": library.params_for("aws_security_group_rule"),
                     "unknown": ["x"]}
    assert value["params"]["aws-sg-public-ingress-allowlisted"] == {
        "aws-sg-public-ingress-allowlisted": {"allowed_ports": [443]}}


def test_a_fresh_evaluator_compiles_and_judges_three_valued() -> None:
    evaluator = RegoEvaluator(load_library(parameters={
        "aws-sg-public-ingress-allowlisted": {"allowed_ports": [22]}}))
    assert evaluator.evaluations == 0
    verdicts = evaluator.evaluate("aws_security_group_rule", OPEN_SSH)
    assert "aws-sg-no-public-ssh" in verdicts.failing
    assert "aws-sg-public-ingress-allowlisted" not in verdicts.failing  # the parameter is used
    assert verdicts.unknown == frozenset()
    unknown = evaluator.evaluate("aws_security_group_rule", {**OPEN_SSH, "cidr_blocks": MARKER})
    assert "aws-sg-no-public-ssh" in unknown.unknown
    assert "aws-sg-no-public-ssh" not in unknown.failing
    assert evaluator.evaluate("no_such_type", {}) == Verdicts()
    assert evaluator.evaluations == 2  # the type no control covers is not queried


def test_a_batch_keeps_each_resource_in_its_slot() -> None:
    evaluator = RegoEvaluator(load_library())
    out = evaluator.evaluate_batch([("aws_security_group_rule", OPEN_SSH), ("no_such_type", {}),
                                    ("aws_security_group_rule", {**OPEN_SSH, "from_port": 443,
                                                                 "to_port": 443})])
    assert [isinstance(v, Verdicts) for v in out] == [True, True, True]
    first, second, third = out
    assert isinstance(first, Verdicts) and "aws-sg-no-public-ssh" in first.failing
    assert second == Verdicts()
    assert isinstance(third, Verdicts) and "aws-sg-no-public-ssh" not in third.failing


class Refusing:
    """An evaluator that fails on one resource type."""

    def evaluate(self, resource_type: str, config: Mapping[str, Any]) -> Verdicts:
        if resource_type == "bad":
            raise ValueError("bad resource")
        return Verdicts(frozenset({resource_type}))


def test_evaluate_each_keeps_a_failure_in_its_own_slot() -> None:
    out = evaluate_each(Refusing(), [("a", {}), ("bad", {}), ("c", {})])  # type: ignore[arg-type]
    assert out[0] == Verdicts(frozenset({"a"})) and out[2] == Verdicts(frozenset({"c"}))
    assert isinstance(out[1], ValueError) and str(out[1]) == "bad resource"


def test_a_library_that_does_not_compile_is_rejected() -> None:
    library = load_library()
    name = next(iter(library.modules))
    library.modules[name] += "\nthis is not rego ((\n"
    with pytest.raises(Exception, match="^compliance library does not compile: ") as caught:
        RegoEvaluator(library).compile()
    lines = str(caught.value.__cause__).strip().splitlines()
    assert len(lines) > 3  # the message keeps the first three lines of the engine's, joined
    assert str(caught.value) == "compliance library does not compile: " + " | ".join(lines[:3])


def test_the_default_parameters_reach_the_rules() -> None:
    evaluator = RegoEvaluator(load_library())
    rule = {**OPEN_SSH, "from_port": 8443, "to_port": 8443}
    assert "aws-sg-public-ingress-allowlisted" in evaluator.evaluate(
        "aws_security_group_rule", rule).failing


def test_a_batch_of_uncovered_types_compiles_nothing() -> None:
    evaluator = RegoEvaluator(load_library())
    assert evaluator.evaluate_batch([("no_such_type", {})]) == [Verdicts()]
    assert evaluator._bundle is None and evaluator.evaluations == 0
