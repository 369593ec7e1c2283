"""Followed compacted topics folded into one copy per process: baselines, ignore rules, model."""

from __future__ import annotations

import pytest

from agents.drift import IgnoreRule
from agents.shared import MODEL_KEY, DeployedModel, SharedState, ignore_record, model_record
from schemas import DesiredState
from schemas.codec import Codec
from schemas.errors import DeadLetterError, DecodeError, RejectedError, SchemaViolation

RULE = IgnoreRule(path="/tags/*", resource_type="aws_*", reason="tagging bot", created_by="ops")


def test_ignore_rules_are_added_replaced_and_removed_by_tombstone() -> None:
    shared = SharedState()
    shared.apply("drift-ignores", *ignore_record(RULE))
    newer = RULE.model_copy(update={"reason": "tagging bot v2"})
    shared.apply("drift-ignores", *ignore_record(newer))
    assert [r.reason for r in shared.ignores.rules] == ["tagging bot v2"]
    shared.apply("drift-ignores", RULE.rule_id.encode(), None)
    assert shared.ignores.rules == []
    shared.apply("drift-ignores", b"unknown", None)  # removing an absent rule is a no-op


@pytest.mark.parametrize(("key", "value", "error"), [
    (b"abc", b"{not json", DecodeError),
    (b"abc", b'{"path": "no-leading-slash["}', SchemaViolation),
    (b"someone-elses-id", ignore_record(RULE)[1], SchemaViolation),
])
def test_bad_ignore_records_raise_dead_letter_errors(key: bytes, value: bytes,
                                                     error: type[DeadLetterError]) -> None:
    shared = SharedState()
    with pytest.raises(error):
        shared.apply("drift-ignores", key, value)
    assert shared.ignores.rules == []


def test_the_deployed_model_is_the_latest_record() -> None:
    shared = SharedState()
    shared.apply("model-versions", *model_record(DeployedModel(version="v0002", set_by="ana")))
    shared.apply("model-versions", *model_record(DeployedModel(version="shipped-v0001")))
    assert shared.model is not None and shared.model.version == "shipped-v0001"
    with pytest.raises(SchemaViolation):
        shared.apply("model-versions", MODEL_KEY, b'{"version": "../../etc/passwd"}')
    with pytest.raises(SchemaViolation):
        shared.apply("model-versions", b"other", b'{"version": "v0001"}')
    assert shared.model.version == "shipped-v0001"


def test_baselines_and_their_tombstones() -> None:
    shared = SharedState()
    state = DesiredState(resource_id="sg-1", resource_type="aws_security_group", config={"a": 1})
    shared.apply("desired", b"sg-1", Codec().encode(state))
    assert shared.desired.get("sg-1") == state
    shared.apply("desired", b"sg-1", None)
    assert shared.desired.get("sg-1") is None
    with pytest.raises(DecodeError):
        shared.apply("desired", b"sg-2", b"\xff")


def test_unknown_topics_are_refused() -> None:
    with pytest.raises(RejectedError):
        SharedState().apply("metrics", b"k", b"{}")
