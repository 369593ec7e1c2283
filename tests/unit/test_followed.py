"""The govern role's one copy of desired state: one reader feeds the gate's facts and drift."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from agents.drift import DriftDetector, desired_state
from agents.gate_facts import ResourceFacts
from agents.shared import SharedState
from runbooks.loader import Library
from runbooks.registry import runbook_record
from schemas import ConfigChange, Decision, DriftFinding
from schemas.codec import Codec
from streams.followed import FollowedTopics
from streams.host_metrics import HostMetrics
from streams.reader import Consumer, MemoryLog, TopicReader
from streams.settings import KafkaConfig, Settings
from streams.wiring import AgentContext, rows_of

KAFKA = KafkaConfig(topic_prefix="t.")
CONFIG = {"size": "m5.large", "tags": {"environment": "production", "team": "payments"}}


def _govern(log: MemoryLog) -> tuple[FollowedTopics, DriftDetector, ResourceFacts]:
    """The drift row of the wiring table and the gate's facts on one followed SharedState."""
    shared = SharedState()
    drift_row = next(r for r in rows_of("govern") if r.name == "drift")
    followed = FollowedTopics(shared, KAFKA, drift_row.follows, metrics=HostMetrics(None),
                              role="govern", source=log)
    followed.need("desired")  # what the gate asks for: already followed, so not read twice
    drift = drift_row.make(AgentContext(Settings(), shared, "govern"))
    assert isinstance(drift, DriftDetector)
    return followed, drift, ResourceFacts(shared.desired)


async def test_one_desired_state_update_reaches_the_gate_and_drift() -> None:
    log = MemoryLog(topics={KAFKA.topic("desired"): 2, KAFKA.topic("drift-ignores"): 1})
    followed, drift, facts = _govern(log)
    assert followed.topics == ["desired", "drift-ignores"]
    await followed.start()
    await followed.catch_up()
    assert followed.ready.is_set() and len(facts) == 0

    baseline = desired_state("db-1", "aws_db_instance", CONFIG, origin="git")
    log.append(KAFKA.topic("desired"), b"db-1", Codec().encode(baseline), partition=1)
    await followed.catch_up()

    decision = Decision(resource_id="db-1", decision_type="scale_up")
    assert facts.context_for(decision) == {"resource": {
        "type": "aws_db_instance", "environment": "production",
        "labels": {"environment": "production", "team": "payments"}}}
    change = ConfigChange(resource_id="db-1", resource_type="aws_db_instance",
                          config=CONFIG | {"size": "m5.xlarge"}, change_source="console")
    assert any(isinstance(e, DriftFinding) for e in drift.on_config(change))

    log.append(KAFKA.topic("desired"), b"db-1", None, partition=1)  # the baseline is withdrawn
    await followed.catch_up()
    assert facts.context_for(decision) is None
    assert drift.on_config(change) == []
    await followed.stop()


async def test_unusable_records_are_counted_and_skipped() -> None:
    log = MemoryLog(topics={KAFKA.topic("desired"): 1, KAFKA.topic("drift-ignores"): 1})
    followed, drift, _ = _govern(log)
    metrics = followed.metrics
    log.append(KAFKA.topic("desired"), b"x", b"\xff not an event")
    await followed.start()
    await followed.catch_up()
    assert metrics.followed.labels("desired", "rejected")._value.get() == 1
    assert len(drift.store) == 0


RUNBOOK = """metadata: {id: from-git, name: From git, selectable: true}
steps:
  - id: say
    action_type: noop
    action: "say hello"
"""


async def test_the_runbook_registry_is_folded_once_and_serves_the_gates_library() -> None:
    log = MemoryLog(topics={KAFKA.topic("runbooks"): 1})
    shared, library = SharedState(), Library([])
    shared.runbooks.on_change = library.register  # what the gate's wiring does
    followed = FollowedTopics(shared, KAFKA, ["runbooks"], metrics=HostMetrics(None),
                              role="govern", source=log)
    followed.need("runbooks")  # the gate's and the GitOps reconciler's: one reader
    await followed.start()
    record = runbook_record(RUNBOOK, author="ops", origin="git")
    log.append(KAFKA.topic("runbooks"), *record.encode())
    await followed.catch_up()
    assert shared.runbooks.get("from-git") is not None
    assert library.get("from-git").content_hash == record.content_hash
    log.append(KAFKA.topic("runbooks"), b"from-git", None)  # withdrawn from both
    await followed.catch_up()
    assert shared.runbooks.get("from-git") is None and "from-git" not in library


@dataclass
class _AskedLog(MemoryLog):
    """A MemoryLog that records every end-offsets request of its consumers."""

    asked: list[list[TopicPartition]] = field(default_factory=list)

    def consumer(self) -> Consumer:
        consumer = super().consumer()
        ask = consumer.end_offsets

        async def asked(partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
            self.asked.append(sorted(partitions))
            return await ask(partitions)

        consumer.end_offsets = asked  # type: ignore[method-assign]
        return consumer


async def test_one_catch_up_asks_the_end_offsets_of_every_followed_topic_in_one_request() -> None:
    desired, ignores = KAFKA.topic("desired"), KAFKA.topic("drift-ignores")
    log = _AskedLog(topics={desired: 2, ignores: 1})
    followed, drift, facts = _govern(log)
    await followed.start()
    log.append(desired, b"db-1", Codec().encode(desired_state("db-1", "aws_db_instance", CONFIG,
                                                              origin="git")), partition=1)
    await followed.catch_up()
    assert log.asked == [[TopicPartition(desired, 0), TopicPartition(desired, 1),
                          TopicPartition(ignores, 0)]]
    assert facts.context_for(Decision(resource_id="db-1", decision_type="scale_up")) is not None
    await followed.catch_up()
    assert len(log.asked) == 2  # one request per catch-up, whatever the number of topics
    await followed.stop()


async def test_a_reader_without_its_own_end_offsets_client_refuses_to_ask_them() -> None:
    log = _AskedLog(topics={KAFKA.topic("desired"): 1})
    reader = TopicReader(log, KAFKA.topic("desired"), own_end_offsets=False)
    await reader.start()
    with pytest.raises(RuntimeError, match="no end-offsets client"):
        await reader.end_offsets()
    assert await reader.catch_up(_ignore, {}) == 0 and log.asked == []
    await reader.stop()


async def _ignore(records: list[ConsumerRecord]) -> None:
    return None


async def test_a_catch_up_before_start_refuses_instead_of_reporting_ready() -> None:
    log = MemoryLog(topics={KAFKA.topic("desired"): 1, KAFKA.topic("drift-ignores"): 1})
    followed, _, _ = _govern(log)
    with pytest.raises(RuntimeError, match="before start"):
        await followed.catch_up()
    assert not followed.ready.is_set()
