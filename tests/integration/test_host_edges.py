"""The generic host on the real broker: malformed input is dead-lettered by every role, a toy
agent runs from one wiring row, and a kcat sample keeps one id from ClickHouse to its decision."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import zlib

import pytest

from agents.ingest import record_event_id
from schemas import ConfigChange, DeadLetter, Event, Insight, MetricSample
from schemas.codec import Codec
from sinks.http import HttpSqlBackend
from sinks.queries import chain
from streams.emit import Emitter
from streams.runner import RoleRunner
from streams.settings import Settings
from streams.topics import create_topics
from streams.wiring import AgentRow
from tests.integration.conftest import VIEWER_TOKEN, wait_until
from tests.integration.records import cli, events, send_events, send_raw, state
from tests.toy_agent import Tally

pytestmark = pytest.mark.kafka

MALFORMED = {
    "metrics": [b"this is not json", b'{"resource_id": "vm-1", "cpu_usage": 180}',
                b"\xff\xfe binary \xc0", b'{"cpu_usage": 10}',
                json.dumps({"resource_id": "vm-big", "labels": {"x": "y" * 6000}}).encode()],
    "config": [b"{oops", b"[1, 2, 3]", b'{"resource_id": "sg-1"}', b'{"resource_id": "sg-1", '
               b'"resource_type": "aws_security_group", "op": "explode", "config": {}}',
               json.dumps({"resource_id": "sg-big", "resource_type": "t",
                           "config": {"x": "y" * 6000}}).encode()],
}


@pytest.mark.parametrize(("role", "topic"), [("learn", "metrics"), ("govern", "config")])
def test_malformed_input_of_every_role_lands_in_the_dlq_with_a_reason(
        worker_factory, kafka_cfg, role: str, topic: str) -> None:  # type: ignore[no-untyped-def]
    worker_factory(role, NOVACRON_MAX_MESSAGE_BYTES="4096")
    bad = MALFORMED[topic]
    sent = send_raw(kafka_cfg, topic, b"k", *bad)

    def letters() -> list[DeadLetter]:
        found = [d for d in events(kafka_cfg, DeadLetter) if d.source == f"novacron.{role}"]
        return found if len(found) >= len(bad) else []

    found = {(d.partition, d.offset): d for d in wait_until(letters, what="dead letters")}
    assert set(found) == set(sent)  # every bad record, each once
    full = kafka_cfg.topic(topic)
    for (partition, offset), raw in zip(sent, bad, strict=True):
        letter = found[(partition, offset)]
        assert letter.source_topic == full and letter.reason
        assert letter.event_id == record_event_id(full, partition, offset)  # the sink's id
        assert letter.raw == raw[:65_536] and letter.raw_size == len(raw)
    assert {d.error_kind for d in found.values()} == {"decode", "schema", "oversized"}
    # and the role keeps working: a good record after the bad ones is handled
    if role == "learn":
        good: Event = MetricSample(resource_id="svc-ok", resource_type="service", cpu_usage=50.0,
                                   active_vms=2)
    else:
        good = ConfigChange(resource_id="vm-ok", resource_type="novacron_vm", config={})
    send_events(kafka_cfg, good)
    agent = "decision" if role == "learn" else "compliance"
    wait_until(lambda: good.resource_id in state(kafka_cfg, role, agent),
               what="the good record handled")


ROW = AgentRow("toy", "tally", lambda ctx: Tally(), ("metrics",))


def test_a_toy_agent_runs_from_one_wiring_row(kafka_cfg) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(create_topics(kafka_cfg, roles=["toy"]))
    settings = Settings(kafka=kafka_cfg)
    samples = [MetricSample(resource_id=f"vm-{i % 3}", cpu_usage=10.0 + i) for i in range(9)]

    async def run_twice() -> None:
        for batch in (samples[:6], samples[6:]):  # the second run resumes from toy-state
            codec = Codec()
            emitter = Emitter(settings, codec)
            runner = RoleRunner(settings, "toy", [ROW], emitter=emitter, codec=codec)
            started: list[int] = []
            task = asyncio.create_task(runner.run(started=lambda s=started: s.append(1)))
            await asyncio.to_thread(send_events, kafka_cfg, *batch)
            wanted = {s.event_id for s in batch}
            while not wanted <= {i.causation_id for i in await asyncio.to_thread(
                    events, kafka_cfg, Insight)}:
                await asyncio.sleep(0.2)
            assert started == [1]  # the worker's start-up hook (tune_gc), called once
            task.cancel()  # graceful: the shutdown checkpoint
            await asyncio.gather(task, return_exceptions=True)
            await emitter.stop()

    asyncio.run(asyncio.wait_for(run_twice(), 120))
    counts = {i.causation_id: i.value for i in events(kafka_cfg, Insight)}
    assert [counts[s.event_id] for s in samples] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    saved = state(kafka_cfg, "toy", "tally")
    assert {k: zlib.decompress(v[0] or b"") for k, v in saved.items()} == {
        f"vm-{i}": b"3" for i in range(3)}  # zlib-compressed snapshots, key "tally/vm-i"


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat missing: apt-get install kcat")
def test_a_kcat_sample_keeps_its_id_through_insight_and_decision(worker_factory, kafka_cfg
                                                                   ) -> None:  # type: ignore[no-untyped-def]
    ingest = worker_factory("ingest")
    worker_factory("learn", NOVACRON_OPTIMIZER__FORECAST_EVERY="1")
    sample = {"resource_id": "svc-kcat", "resource_type": "service", "cpu_usage": 91.5,
              "network_latency_ms": 380.0, "error_rate": 0.02, "request_rate": 850.0,
              "active_vms": 3}
    lines = b"".join(b"svc-kcat:" + json.dumps({**sample, "cpu_usage": 80 + i}).encode() + b"\n"
                     for i in range(6))  # no event_id: ids come from the record position
    subprocess.run(["kcat", "-P", "-K:", "-b", kafka_cfg.bootstrap, "-t",
                    kafka_cfg.topic("metrics")], input=lines, check=True, timeout=60)
    backend = HttpSqlBackend(ingest.url, token=VIEWER_TOKEN)

    def caused(table: str) -> list[dict[str, object]]:
        return ingest.sql(
            f"SELECT s.event_id AS sample, e.event_id AS effect "
            f"FROM novacron.metric_samples AS s FINAL "
            f"INNER JOIN novacron.{table} AS e FINAL ON e.causation_id = s.event_id "
            f"WHERE s.resource_id = 'svc-kcat' ORDER BY s.event_time LIMIT 1")

    # which samples the model acts on is the model's business (the shipped one acts on the first
    # ones, before the optimizer's forecasts start): each effect is followed from its own sample
    for table in ("insights", "decisions"):
        row = wait_until(lambda t=table: caused(t), timeout=90, what=f"a sample with {table}")[0]
        sample_id, effect_id = str(row["sample"]), str(row["effect"])
        positions = {record_event_id(kafka_cfg.topic("metrics"), p, o)
                     for p in range(kafka_cfg.partitions) for o in range(6)}
        assert sample_id in positions  # ingest and learn both derived it from the record position
        hops = chain(backend, "novacron", sample_id)  # what `novacron audit chain` shows
        by_id = {str(h["event_id"]): h for h in hops}
        assert {sample_id, effect_id} <= set(by_id)
        for hop in hops:  # no break: every event's cause is in the chain (the sample starts it)
            cause = str(hop["causation_id"])
            assert (hop["event_id"] == sample_id and not cause) or cause in by_id, hop
        shown = cli(kafka_cfg, "audit", "chain", sample_id, "--sql-url", ingest.url,
                    COLUMNS="400", NOVACRON_SQL_TOKEN=VIEWER_TOKEN)
        assert shown.returncode == 0, shown.stderr
        for event_id in (sample_id, effect_id):
            assert event_id in shown.stdout
