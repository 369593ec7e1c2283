"""Every registered model passes the river-style contract checks."""

from __future__ import annotations

import pytest

from models.checks import CHECKS, yield_checks
from models.registry import REGISTRY, ModelSpec

CASES = [(spec, check) for spec in REGISTRY for check in yield_checks(spec)]


@pytest.mark.parametrize(
    ("spec", "check"), CASES, ids=[f"{s.name}-{c.__name__}" for s, c in CASES]
)
def test_contract(spec: ModelSpec, check) -> None:
    check(spec, 0)


def test_registry_covers_the_default_model_set() -> None:
    assert {s.name for s in REGISTRY} == {"forecaster", "anomaly", "recommender"}
    assert len(CASES) == len(REGISTRY) * len(CHECKS)


class _Mutating:
    """A model that breaks the no-mutation rule: the check must catch it."""

    def learn_one(self, x: dict) -> None:
        x["cpu_usage"] = 0.0

    def snapshot(self) -> bytes:
        return b""


def test_mutation_check_catches_a_mutating_model() -> None:
    from models.checks import check_no_input_mutation

    bad = ModelSpec("bad", lambda seed: _Mutating(), lambda m, x: m.learn_one(x),
                    lambda m, x: None, lambda out: out is None, lambda b: _Mutating())
    with pytest.raises(AssertionError, match="mutated"):
        check_no_input_mutation(bad)
