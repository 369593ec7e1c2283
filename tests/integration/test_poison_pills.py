"""Poison pills per role on the real broker (issue 11, finding 3): bad records of every class on a
role's input topics, then a good record. The worker stays up and handles the good record; the
ingest role dead-letters each bad record with a reason; the role skipped exactly those."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from schemas import (
    TOPIC_TYPES,
    Action,
    Approval,
    ConfigChange,
    DeadLetter,
    Decision,
    DesiredState,
    Event,
    Insight,
    MetricSample,
    Outcome,
    PolicyVerdict,
    PolicyVersion,
)
from schemas.avro import MAGIC
from schemas.codec import Codec
from schemas.errors import DeadLetterError
from streams.reader import read_to_end
from streams.settings import KafkaConfig
from tests.integration.conftest import WorkerProcess, wait_until

pytestmark = pytest.mark.kafka
CODEC = Codec()
FAST_GROUP = {"BROKER_SESSION_TIMEOUT": "6", "BROKER_HEARTBEAT_INTERVAL": "1"}


def _deep(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = {"a": value}
    return value


@dataclass(frozen=True)
class Input:
    """One input topic of a role: a valid event and the fields the bad records break."""

    example: Event
    nest: str  # a free-form JSON field (or, without one, a typed field) to nest 300 levels
    text: str  # a field to put a 300,000-character string in
    number: str | None  # a numeric field to send `true` in


def bad_records(spec: Input) -> dict[str, bytes]:
    """Every class of poison of the finding, built from a valid record of the topic."""
    good = orjson.loads(CODEC.encode(spec.example))
    id_field = next(f for f in ("resource_id", "request_id", "policy_id", "action_id") if f in good)
    writer = CODEC.registry.current(spec.example.event_type)
    records = {
        "deep nesting": json.dumps({**good, spec.nest: _deep(300)}).encode(),
        "huge string": orjson.dumps({**good, spec.text: {"k": "x" * 300_000}}
                                    if spec.text == spec.nest else
                                    {**good, spec.text: "x" * 300_000}),
        "wrong type": orjson.dumps({**good, id_field: 17}),
        "control characters": orjson.dumps({**good, id_field: "id\x00\n\u202e"}),
        "absurd time": orjson.dumps({**good, "event_time": "9999-12-31T00:00:00Z"}),
        "not JSON": b"\xff\xfe{not json",
        "Avro garbage": MAGIC + writer.fingerprint + b"\xff" * 7,
    }
    if spec.number:
        records["boolean number"] = orjson.dumps({**good, spec.number: True})
    return records


REASONS = {
    "deep nesting": "nested deeper than 64 levels|valid (string|integer)|not valid JSON",
    "huge string": r"string of 300000 characters|at most \d+ characters",
    "wrong type": "Input should be a valid string",
    "control characters": "U\\+0000",
    "absurd time": "ahead of now",
    "not JSON": "not valid JSON",
    "Avro garbage": "corrupt Avro body",
    "boolean number": "a boolean is not a number",
}


def recent(minutes_ago: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes_ago)


# a well-formed policy of a type /sql's access check does not read (a rule-less access policy
# would rightly close /sql: an access policy in error fails closed)
NEVER_DENIES = 'package zz.poison\n\ndeny contains msg if {\n\tfalse\n\tmsg := "never"\n}\n'

INPUTS: dict[str, Input] = {
    "metrics": Input(MetricSample(resource_id="svc-good", cpu_usage=40.0, memory_usage=50.0),
                     "labels", "labels", "cpu_usage"),
    "config": Input(ConfigChange(resource_id="res-good", resource_type="aws_s3_bucket",
                                 config={"acl": "private"}), "config", "config", None),
    "desired": Input(DesiredState(resource_id="res-good", resource_type="aws_s3_bucket",
                                  config={"acl": "private"}), "config", "config", None),
    "policies": Input(PolicyVersion(policy_id="zz.poison", policy_type="security",
                                    rego=NEVER_DENIES),
                      "policy_id", "name", "version"),
    "decisions": Input(Decision(resource_id="svc-good", decision_type="scale_up",
                                confidence=0.9, params={"delta": 1}), "params", "params",
                       "confidence"),
    "insights": Input(Insight(resource_id="svc-good", kind="anomaly", score=0.4),
                      "details", "details", "score"),
    "outcomes": Input(Outcome(action_id="act-other", status="succeeded"), "output", "output",
                      "duration_ms"),
    "actions": Input(Action(action_id="act-good", resource_id="svc-good",
                            action_type="no_action"), "params", "params", None),
    "approvals": Input(Approval(request_id="req-good", status="pending"), "request_id",
                       "reason", None),
}


async def _send(cfg: KafkaConfig, topic: str, values: list[bytes], key: bytes) -> list[int]:
    producer = AIOKafkaProducer(bootstrap_servers=cfg.bootstrap, acks="all",
                                max_request_size=2 << 20)
    await producer.start()
    try:  # one key: one partition, so the good record comes after every bad one
        return [(await producer.send_and_wait(cfg.topic(topic), v, key=key)).offset
                for v in values]
    finally:
        await producer.stop()


async def _read(cfg: KafkaConfig, logical: str) -> list[Event]:
    records = await read_to_end(cfg, cfg.topic(logical))
    return [e for r in records if (e := _decoded(r.value, logical)) is not None]


def _decoded(value: bytes | None, logical: str) -> Event | None:
    try:  # the topics hold this test's poison too
        return CODEC.decode(value, TOPIC_TYPES[logical], max_bytes=1 << 24)
    except DeadLetterError:
        return None


def poison(cfg: KafkaConfig, topics: list[str], good: dict[str, list[Event]]) -> dict[Any, str]:
    """Send the bad records of each topic, then its good events; {(topic, offset): kind}."""
    sent: dict[Any, str] = {}
    for topic in topics:
        spec = INPUTS[topic]
        bad = bad_records(spec)
        values = [*bad.values(), *(CODEC.encode(e) for e in good.get(topic, []))]
        offsets = asyncio.run(_send(cfg, topic, values, spec.example.key.encode()))
        kinds = zip(offsets, bad, strict=False)  # the good events come after the bad ones
        sent.update({(cfg.topic(topic), off): kind for off, kind in kinds})
    return sent


def dead_lettered(cfg: KafkaConfig, sent: dict[Any, str]) -> dict[Any, DeadLetter]:
    """Wait until every bad record is in the dead-letter topic; check each reason."""
    letters: dict[Any, DeadLetter] = {}

    def missing() -> dict[Any, str]:
        letters.update({(d.source_topic, d.offset): d for d in asyncio.run(_read(cfg, "dlq"))
                        if isinstance(d, DeadLetter)})
        return {p: k for p, k in sent.items() if p not in letters}

    try:
        wait_until(lambda: not missing(), timeout=60, what="a dead letter for every bad record")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; missing: {missing()}") from None
    for position, kind in sent.items():
        assert re.search(REASONS[kind], letters[position].reason), (kind, letters[position])
    return letters


def alive_and_skipped(worker: WorkerProcess, role: str, at_least: int) -> None:
    """The worker is up, and its hosts skipped (refused) at least `at_least` records."""
    assert worker.proc is not None and worker.proc.poll() is None, worker.log_tail()
    assert httpx.get(f"{worker.url}/health", timeout=5).status_code == 200
    # roles on the generic host count what they dead-letter per topic; the older wiring counts
    # what it skips (ingest dead-letters it)
    host = re.compile(rf'^novacron_agent_dead_letters_total{{[^}}]*role="{role}"')
    old = f'novacron_events_processed_total{{agent="{role}",topic="skipped-invalid"}}'

    def skipped() -> float:
        text = httpx.get(f"{worker.url}/metrics", timeout=5).text
        return sum(float(x.split()[-1]) for x in text.splitlines()
                   if host.match(x) or x.startswith(old))

    wait_until(lambda: skipped() >= at_least, timeout=30,
               what=f"{role} skipping the bad records (counted {skipped()} of {at_least})")


def test_ingest_role_survives_poison_on_every_topic_it_reads(worker_factory, kafka_cfg) -> None:  # type: ignore[no-untyped-def]
    ingest = worker_factory("ingest")
    topics = list(INPUTS)
    good = {t: [INPUTS[t].example] for t in topics}
    sent = poison(kafka_cfg, topics, good)
    dead_lettered(kafka_cfg, sent)
    for topic in topics:
        event = INPUTS[topic].example
        table = {"metrics": "metric_samples", "config": "config_changes",
                 "desired": "desired_states", "policies": "policy_versions",
                 "decisions": "decisions", "insights": "insights", "outcomes": "outcomes",
                 "actions": "actions", "approvals": "approvals"}[topic]
        wait_until(lambda t=table, e=event: ingest.scalar(
            f"SELECT count() FROM novacron.{t} WHERE event_id = '{e.event_id}'") == 1,
            timeout=60, what=f"the good {topic} record stored")
    stored = ingest.sql("SELECT source_topic, offset, error_kind, reason "
                        "FROM novacron.dead_letters FINAL")
    assert {(r["source_topic"], r["offset"]) for r in stored} == set(sent)
    assert all(r["reason"] for r in stored)
    assert ingest.proc is not None and ingest.proc.poll() is None


def test_learn_role_skips_poison_and_forecasts_the_good_samples(worker_factory, kafka_cfg) -> None:  # type: ignore[no-untyped-def]
    worker_factory("ingest")
    learn = worker_factory("learn", NOVACRON_OPTIMIZER__FORECAST_EVERY="1", **FAST_GROUP)
    samples = [MetricSample(resource_id="svc-good", event_time=recent(6 - i),
                            cpu_usage=40.0 + i, memory_usage=50.0) for i in range(6)]
    topics = ["metrics", "outcomes"]  # insights reach the decision agent in-process
    sent = poison(kafka_cfg, topics, {"metrics": samples})
    ids = {s.event_id for s in samples}
    wait_until(lambda: any(isinstance(i, Insight) and i.kind == "forecast" and i.causation_id in ids
                           for i in asyncio.run(_read(kafka_cfg, "insights"))),
               timeout=90, what="a forecast caused by a good sample")
    dead_lettered(kafka_cfg, sent)
    alive_and_skipped(learn, "learn", len(sent))


def test_govern_role_skips_poison_and_judges_the_good_decision(worker_factory, kafka_cfg) -> None:  # type: ignore[no-untyped-def]
    worker_factory("ingest")
    govern = worker_factory("govern", **FAST_GROUP)
    decision = INPUTS["decisions"].example
    topics = ["policies", "desired", "config", "insights", "decisions"]
    sent = poison(kafka_cfg, topics, {"decisions": [decision]})
    verdicts = wait_until(
        lambda: [v for v in asyncio.run(_read(kafka_cfg, "verdicts"))
                 if isinstance(v, PolicyVerdict) and v.decision_id == decision.event_id],
        timeout=90, what="the verdict on the good decision")
    assert verdicts[0].outcome in ("allow", "deny", "needs_approval")
    dead_lettered(kafka_cfg, sent)
    # the folded (followed) topics are dead-lettered by ingest; the role's own consumers count
    # what they refuse on the topics they read
    read = [k for k in sent if k[0] in (kafka_cfg.topic("config"), kafka_cfg.topic("decisions"))]
    alive_and_skipped(govern, "govern", len(read))


def test_execute_role_skips_poison_and_handles_the_good_action(worker_factory, kafka_cfg) -> None:  # type: ignore[no-untyped-def]
    worker_factory("ingest")
    execute = worker_factory("execute", **FAST_GROUP)
    action = INPUTS["actions"].example
    sent = poison(kafka_cfg, ["approvals", "actions"], {"actions": [action]})
    outcomes = wait_until(
        lambda: [o for o in asyncio.run(_read(kafka_cfg, "outcomes"))
                 if isinstance(o, Outcome) and o.action_id == "act-good" and o.scope == "action"],
        timeout=60, what="an outcome for the good action")
    assert outcomes[-1].status == "skipped"  # no_action: reported, nothing run
    dead_lettered(kafka_cfg, sent)
    alive_and_skipped(execute, "execute", len(sent))


def test_finding_5_as_written_nothing_is_accepted_and_then_lost(worker_factory, kafka_cfg) -> None:  # type: ignore[no-untyped-def]
    # a 30-day history: anything older would be dropped by the table TTL on insert
    ingest = worker_factory("ingest", NOVACRON_CLICKHOUSE__TTL_DAYS="30")
    good = {"resource_id": "vm-ok", "cpu_usage": 12.5}
    cases = {
        "year 9999": {**good, "event_time": "9999-01-01T00:00:00Z"},
        "year 2105": {**good, "event_time": "2105-06-01T00:00:00Z"},
        "year 2150": {**good, "event_time": "2150-01-01T00:00:00Z"},
        "older than ttl_days": {**good, "event_time": recent(40 * 24 * 60).isoformat()},
        "cpu_usage true": {**good, "cpu_usage": True},
        "NUL in resource_id": {**good, "resource_id": "vm\x00ok"},
        "newline in resource_id": {**good, "resource_id": "vm\nok"},
    }
    values = [orjson.dumps(v) for v in cases.values()] + [orjson.dumps(good)]
    offsets = asyncio.run(_send(kafka_cfg, "metrics", values, b"vm-ok"))
    wait_until(lambda: ingest.scalar("SELECT count() FROM novacron.metric_samples") == 1,
               timeout=60, what="the good sample stored")
    rows = wait_until(lambda: len(found := ingest.sql(
        "SELECT offset, reason FROM novacron.dead_letters FINAL ORDER BY offset")) == len(cases)
        and found, timeout=60, what="every bad sample dead-lettered")
    assert [r["offset"] for r in rows] == offsets[:-1]
    reasons = dict(zip(cases, (str(r["reason"]) for r in rows), strict=True))
    for case in ("year 9999", "year 2105", "year 2150"):
        assert "ahead of now" in reasons[case], reasons[case]
    assert "older than the 30-day history retention" in reasons["older than ttl_days"]
    assert "cpu_usage: a boolean is not a number" in reasons["cpu_usage true"]
    assert "U+0000" in reasons["NUL in resource_id"]
    assert "U+000A" in reasons["newline in resource_id"]
    stored = ingest.sql("SELECT resource_id, cpu_usage FROM novacron.metric_samples")
    assert stored == [{"resource_id": "vm-ok", "cpu_usage": 12.5}]
