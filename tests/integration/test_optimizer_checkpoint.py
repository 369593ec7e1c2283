"""A learn worker killed with SIGKILL resumes each resource's models from `learn-state`."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from agents.optimizer import Optimizer, OptimizerConfig
from schemas import Insight, MetricSample
from schemas.codec import Codec
from streams.reader import read_to_end
from streams.settings import KafkaConfig
from streams.state import StateMeta
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.kafka
CODEC = Codec()
# a week ago at midnight: inside the edge's event-time window whenever the test runs
T0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=7)
# two resources on each of the 4 metrics partitions (murmur2 of the key), so a rebalance moves some
RESOURCES = ["vm-0", "vm-3", "vm-1", "vm-2", "vm-6", "vm-9", "vm-12", "vm-18"]
ENV = {
    # every sample emits its forecasts, so predictions after the restart can be compared one by one
    "NOVACRON_OPTIMIZER__FORECAST_EVERY": "1",
    "NOVACRON_HOST__CHECKPOINTS__OPTIMIZER__EVERY_EVENTS": "1000000",  # only the age saves
    "NOVACRON_HOST__CHECKPOINTS__OPTIMIZER__MAX_AGE_SECONDS": "0.5",
    "NOVACRON_HOST__GAUGES_SECONDS": "0.5",
    # the killed member's partitions go to the restarted one after the session timeout
    "NOVACRON_HOST__SESSION_TIMEOUT_MS": "6000",
}


def test_resources_cover_every_partition() -> None:
    assert {murmur2(r.encode()) % 4 for r in RESOURCES} == {0, 1, 2, 3}


def _gauged(url: str) -> set[str]:
    """Resources whose forecast MAE a worker exports (those it holds models of)."""
    pattern = re.compile(r'^novacron_optimizer_mae\{metric="cpu_usage",resource="([^"]+)"\}', re.M)
    return set(pattern.findall(httpx.get(f"{url}/metrics", timeout=10).text))


def _split(owned: list[set[str]]) -> list[set[str]] | None:
    disjoint = not owned[0] & owned[1]
    return owned if disjoint and owned[0] | owned[1] == set(RESOURCES) else None


def _samples(start: int, count: int) -> list[MetricSample]:
    out = []
    for i in range(start, start + count):
        for j, rid in enumerate(RESOURCES):
            cpu = 40 + 15 * ((i * (j + 3)) % 11) / 10 + (30 if i % 97 == 50 else 0)
            out.append(MetricSample(
                resource_id=rid, event_id=str(uuid.UUID(int=i * 100 + j)),
                event_time=T0 + timedelta(minutes=i), cpu_usage=cpu, memory_usage=50 + j,
                network_latency_ms=20 + cpu / 4, cost_per_hour=0.1 * (j + 1),
                request_rate=cpu * 3, error_rate=0.01, active_vms=2))
    return out


async def _produce(cfg: KafkaConfig, samples: list[MetricSample]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=cfg.bootstrap, linger_ms=5)
    await producer.start()
    try:
        for s in samples:
            await producer.send(cfg.topic("metrics"), CODEC.encode(s), key=s.resource_id.encode())
        await producer.flush()
    finally:
        await producer.stop()


Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]], int]


async def _read_all(cfg: KafkaConfig, logical: str) -> list[Record]:
    records = await read_to_end(cfg, cfg.topic(logical))
    return [(r.key, r.value, list(r.headers), r.partition) for r in records]


def _saved_samples(cfg: KafkaConfig) -> dict[str, int]:
    """Samples each resource's latest optimizer snapshot holds."""
    latest: dict[str, int] = {}
    for key, _value, headers, partition in asyncio.run(_read_all(cfg, "learn-state")):
        agent, _, rid = key.decode().partition("/")  # type: ignore[union-attr]
        if agent == "optimizer":
            latest[rid] = StateMeta.from_headers(partition, headers).events
    return latest


def _forecasts(cfg: KafkaConfig) -> dict[tuple[str, str], list[float]]:
    """Forecast insights by (causing sample, metric): a list, so duplicates would show."""
    out: dict[tuple[str, str], list[float]] = {}
    for _k, value, _h, _p in asyncio.run(_read_all(cfg, "insights")):
        insight = CODEC.decode(value, Insight)
        if insight.kind == "forecast":
            key = (insight.causation_id or "", insight.metric or "")
            out.setdefault(key, []).append(insight.value or 0.0)
    return out


def test_sigkill_resumes_models_from_checkpoints(worker_factory, kafka_cfg) -> None:  # type: ignore[no-untyped-def]
    first, second = _samples(0, 80), _samples(80, 40)
    learn = worker_factory("learn", **ENV)
    asyncio.run(_produce(kafka_cfg, first))
    wait_until(lambda: _saved_samples(kafka_cfg) == {r: 80 for r in RESOURCES}, timeout=60,
               what="a checkpoint of all 80 samples of every resource")
    learn.kill()  # SIGKILL: no revoke, no shutdown snapshot, maybe uncommitted offsets
    learn.start()
    asyncio.run(_produce(kafka_cfg, second))
    wait_until(lambda: _saved_samples(kafka_cfg) == {r: 120 for r in RESOURCES}, timeout=60,
               what="the restarted worker to continue counting from 80")

    reference = Optimizer(OptimizerConfig(forecast_every=1))  # one uninterrupted process
    expected: dict[tuple[str, str], float] = {}
    for s in first + second:
        for e in reference.process(s):
            if isinstance(e, Insight) and e.kind == "forecast":
                expected[(s.event_id, e.metric or "")] = e.value  # type: ignore[assignment]
    got = _forecasts(kafka_cfg)
    after = {s.event_id for s in second}
    resumed = {k: v for k, v in got.items() if k[0] in after}
    assert len(resumed) == len([k for k in expected if k[0] in after]) > 0
    for key, values in resumed.items():
        assert values == [pytest.approx(expected[key], rel=1e-9, abs=1e-9)], key
    # and nothing was learned twice: every sample before the kill has exactly one set of forecasts
    assert all(len(v) == 1 for v in got.values())


def test_rebalance_and_shutdown_hand_models_over(worker_factory, kafka_cfg) -> None:  # type: ignore[no-untyped-def]
    env = {**ENV, "NOVACRON_HOST__CHECKPOINTS__OPTIMIZER__MAX_AGE_SECONDS": "1e5"}  # no age saves
    first, second = _samples(0, 60), _samples(60, 40)
    reference = Optimizer(OptimizerConfig(forecast_every=1))  # one uninterrupted process
    expected = {(s.event_id, e.metric): [e.value] for s in first + second
                for e in reference.process(s) if isinstance(e, Insight) and e.kind == "forecast"}
    in_first = len([k for k in expected if k[0] in {s.event_id for s in first}])
    a = worker_factory("learn", **env)
    asyncio.run(_produce(kafka_cfg, first))
    wait_until(lambda: len(_forecasts(kafka_cfg)) == in_first, timeout=60,
               what="worker A to learn the first samples")
    assert _saved_samples(kafka_cfg) == {}  # nothing saved yet: only revoke/shutdown save now
    b = worker_factory("learn", **env)  # joins: A's revoked partitions are saved for B
    wait_until(lambda: _saved_samples(kafka_cfg), timeout=60, what="snapshots written on revoke")
    asyncio.run(_produce(kafka_cfg, second))
    wait_until(lambda: len(_forecasts(kafka_cfg)) == len(expected), timeout=60,
               what="both workers to learn the rest")
    # the models were split, and the old owner forgot (and stopped exporting) what moved
    owned = wait_until(lambda: _split([_gauged(w.url) for w in (a, b)]), timeout=30,
                       what="each worker exporting the MAE of its own resources only")
    assert all(owned)
    a.stop()
    b.stop()  # graceful: every model is saved on the way out
    assert _saved_samples(kafka_cfg) == {r: 100 for r in RESOURCES}
    got = _forecasts(kafka_cfg)
    assert got.keys() == expected.keys()
    for key, values in got.items():  # one value each, as if nothing had moved
        assert values == [pytest.approx(expected[key][0], rel=1e-9, abs=1e-9)], key
