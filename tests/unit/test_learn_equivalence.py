"""The learn role's models and agents give exactly the outputs of the straightforward code."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import pytest

from schemas.decisions import _ACTION_NS, action_id_for
from tests.learn_golden import CHUNK, FIXTURE, digests, outputs


@pytest.fixture(scope="module")
def current() -> dict[str, Any]:
    return outputs()


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    return dict(json.loads(FIXTURE.read_text()))


@pytest.mark.parametrize(("section", "name"), [
    ("models", "forecast"), ("models", "forecast_error"), ("models", "anomaly"),
    ("models", "recommend"), ("learn_role", "events"), ("learn_role", "states"),
    ("learn_role", "rewards"), ("learn_role", "quality"), ("learn_role", "transitions"),
])
def test_outputs_match_the_recorded_reference(current: dict[str, Any],
                                              recorded: dict[str, Any], section: str,
                                              name: str) -> None:
    now = digests(current)[section][name]
    then = recorded[section][name]
    if isinstance(then, list):
        assert len(now) == len(then)
        for chunk, (a, b) in enumerate(zip(now, then, strict=True)):
            steps = current[section][name][chunk * CHUNK:(chunk + 1) * CHUNK]
            assert a == b, f"{section}.{name}: steps from {chunk * CHUNK} differ: {steps}"
    else:
        assert now == then, f"{section}.{name} differs: {current[section][name]}"


def test_action_ids_are_rfc4122_uuid5_of_the_decision_id() -> None:
    ids = [str(uuid.UUID(int=random.Random(i).getrandbits(128))) for i in range(500)]
    for decision_id in [*ids, "", "svc-1/ünïcode", "x" * 300]:
        assert action_id_for(decision_id) == str(uuid.uuid5(_ACTION_NS, decision_id))
