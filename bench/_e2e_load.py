"""Load and measurement of bench/e2e_latency.py: open-loop producer, output tap, backlog drains."""

from __future__ import annotations

import asyncio
import gc
import math
import multiprocessing as mp
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaProducer, TopicPartition

from schemas import Decision, Event, MetricSample
from schemas.codec import Codec
from streams import kafka_clients
from streams.collect_kafka import PUBLISH_LINGER_MS
from streams.settings import KafkaConfig

CODEC = Codec()
OUTPUTS = ("decisions", "verdicts", "actions", "outcomes")


def sample(run: str, i: int, services: int) -> MetricSample:
    """Sample i of a run: services round-robin, every fifth one overloaded."""
    n = i % services
    hot = n % 5 == 0
    return MetricSample(
        event_id=f"{run}-{i}", resource_id=f"svc-{n}", resource_type="service", source="bench",
        cpu_usage=95.0 if hot else 30.0 + n % 10, memory_usage=60.0 if hot else 40.0,
        network_latency_ms=420.0 if hot else 80.0, error_rate=0.03 if hot else 0.0,
        request_rate=900.0 if hot else 120.0, active_vms=3, cost_per_hour=0.3)


async def _producer(kafka: KafkaConfig, linger_ms: int = PUBLISH_LINGER_MS) -> AIOKafkaProducer:
    """The samples' producer: the telemetry edge, as the collect role publishes (its linger),
    not a worker's hop (`kafka.linger_ms`)."""
    producer = kafka_clients.producer(kafka, acks="all", linger_ms=linger_ms)
    await producer.start()
    return producer


@dataclass(frozen=True, kw_only=True)
class Pace:
    """How the open-loop sender hands its samples to the producer."""

    tick_ms: float = 5.0
    """The sender wakes this often and hands over every sample then due (0: it wakes for each
    sample). A sample waits for its tick, and that wait is in every latency measured from the
    schedule. A wake-up per sample with the collect publisher's linger (`PUBLISH_LINGER_MS`)
    cost the bench ~0.3 cores at 1,000/s and sent ~340 requests/s, a request per partition's
    batch as each one's linger ran out; a tick's samples go out together, ~200 requests/s."""
    linger_ms: int = 0
    """The producer waits this long to fill a request (a tick's samples fill it at once)."""


async def open_loop(kafka: KafkaConfig, rate: float, seconds: float, services: int,
                    pace: Pace = Pace()) -> tuple[dict[str, float], dict[str, float]]:
    """Send `rate` samples/s for `seconds` on a fixed schedule (open loop: a slow system does
    not slow the sender). Returns each sample's scheduled send time and the time it was
    actually handed to the producer (epoch ms): the sender itself runs late when the machine
    is busy, and that lateness is in every latency measured from the schedule, as are the
    waits of `pace` (the producer's linger, the sender's tick).

    The sender is a process of its own. In the bench's process it shared an event loop with
    the tap, which decodes every output: a burst of decisions, verdicts and actions held it
    back, so the samples sent during a burst (those that start the next chains) were late
    because of the measurement, not the system. Its collector is off while it sends: a full
    collection of a growing heap is a pause the system never caused."""
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return await asyncio.get_running_loop().run_in_executor(
            pool, _send_process, kafka, rate, seconds, services, pace)


def _send_process(kafka: KafkaConfig, rate: float, seconds: float, services: int,
                  pace: Pace) -> tuple[dict[str, float], dict[str, float]]:
    gc.disable()  # the process ends with the phase
    return asyncio.run(_send(kafka, rate, seconds, services, pace))


async def _send(kafka: KafkaConfig, rate: float, seconds: float, services: int,
                pace: Pace) -> tuple[dict[str, float], dict[str, float]]:
    run, producer = uuid.uuid4().hex[:8], await _producer(kafka, pace.linger_ms)
    scheduled: dict[str, float] = {}
    sent: dict[str, float] = {}
    futures: list[asyncio.Future[Any]] = []
    start, total = time.time(), int(rate * seconds)
    try:
        i = 0
        while i < total:
            now = time.time()
            due = min(total, int((now - start) * rate) + 1)
            while i < due:
                event = sample(run, i, services).model_copy(
                    update={"event_time": datetime.fromtimestamp(now, UTC)})
                at = (start + i / rate) * 1000
                scheduled[event.event_id] = at
                sent[event.event_id] = now * 1000
                futures.append(await producer.send(
                    kafka.topic("metrics"), CODEC.encode(event.stamped()),
                    key=event.key.encode(), timestamp_ms=int(at)))
                i += 1
            wake = max(start + i / rate, now + pace.tick_ms / 1000)
            await asyncio.sleep(max(0.0, wake - time.time()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return scheduled, sent


@dataclass
class Seen:
    """One output record: its chain, the Kafka CreateTime and the event's produced_at (ms)."""

    topic: str
    correlation_id: str
    created_ms: int
    produced_ms: float | None
    body: dict[str, Any]


@dataclass
class Tap:
    """Reads every output topic from its end on, in the background."""

    kafka: KafkaConfig
    seen: list[Seen] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        names = {self.kafka.topic(t): t for t in OUTPUTS}
        consumer = kafka_clients.consumer(self.kafka, group_id=None, enable_auto_commit=False,
                                          fetch_max_wait_ms=20)
        await consumer.start()
        tps = [TopicPartition(t, p) for t in names for p in consumer.partitions_for_topic(t) or
               await _partitions(consumer, t)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        self._task = asyncio.create_task(self._read(consumer, names))

    async def _read(self, consumer: Any, names: dict[str, str]) -> None:
        try:
            while True:
                for tp, recs in (await consumer.getmany(timeout_ms=100)).items():
                    for r in recs:
                        body = orjson.loads(r.value)
                        produced = body.get("produced_at")
                        self.seen.append(Seen(names[tp.topic], body.get("correlation_id", ""),
                                              r.timestamp, _ms(produced), body))
        finally:
            await consumer.stop()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def _partitions(consumer: Any, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


def _ms(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000


def stats(values: Iterable[float]) -> dict[str, float | int]:
    """Count, p50, p99 and max (ms, one decimal)."""
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        return {"n": 0}
    return {"n": int(arr.size), "p50_ms": round(float(np.percentile(arr, 50)), 1),
            "p99_ms": round(float(np.percentile(arr, 99)), 1), "max_ms": round(float(arr.max()), 1)}


def latencies(scheduled: dict[str, float], seen: list[Seen],
              sent: dict[str, float] | None = None) -> dict[str, Any]:
    """From each sample's scheduled send to the first decision / verdict / action / outcome of
    its chain (Kafka CreateTime, set by the sending worker), and per hop (produced_at); with
    `sent`, also from the moment the sample was actually sent (without the sender's lateness)
    and that lateness itself."""
    first = _first_of_chains(scheduled, seen)
    out: dict[str, Any] = {}
    for topic in OUTPUTS:
        out[f"sample_to_{topic[:-1]}"] = stats(
            s.created_ms - scheduled[cid] for (t, cid), s in first.items() if t == topic)
    if sent is not None:
        out["sender_late"] = stats(sent[cid] - scheduled[cid] for cid in scheduled)
        for topic in ("decisions", "actions"):
            out[f"sample_sent_to_{topic[:-1]}"] = stats(
                s.created_ms - sent[cid] for (t, cid), s in first.items() if t == topic)
    out["hops_from_produced_at"] = _hops(first)
    return out


def slowest_chains(scheduled: dict[str, float], seen: list[Seen], topic: str = "actions",
                   share: float = 0.01) -> list[tuple[float, float]]:
    """The lifetimes (epoch seconds, from the sample's schedule to the first `topic` record of
    its chain) of the slowest `share` of the chains: the p99's own chains."""
    spans = sorted(((scheduled[c] / 1000, s.created_ms / 1000)
                    for (t, c), s in _first_of_chains(scheduled, seen).items() if t == topic),
                   key=lambda span: span[1] - span[0], reverse=True)
    return spans[:math.ceil(len(spans) * share)]


def _first_of_chains(scheduled: dict[str, float], seen: list[Seen]
                     ) -> dict[tuple[str, str], Seen]:
    """The first record of each topic for each of the samples' chains, by (topic, chain)."""
    first: dict[tuple[str, str], Seen] = {}
    for s in seen:
        if s.correlation_id in scheduled:
            first.setdefault((s.topic, s.correlation_id), s)
    return first


def _hops(first: dict[tuple[str, str], Seen]) -> dict[str, Any]:
    """decision → verdict and decision → action by produced_at (None on trees without it)."""
    hops: dict[str, list[float]] = {"decision_to_verdict": [], "decision_to_action": [],
                                    "action_to_outcome": []}
    for (topic, cid), s in first.items():
        cause = {"verdicts": "decisions", "actions": "decisions", "outcomes": "actions"}.get(topic)
        parent = first.get((cause, cid)) if cause is not None else None
        if cause is None or parent is None:
            continue
        if s.produced_ms is not None and parent.produced_ms is not None:
            hops[f"{cause[:-1]}_to_{topic[:-1]}"].append(s.produced_ms - parent.produced_ms)
    return {k: stats(v) for k, v in hops.items()}


async def committed_all(kafka: KafkaConfig, group: str, topic: str) -> tuple[int, int]:
    """(committed, end) offsets summed over the topic's partitions for a consumer group."""
    admin = kafka_clients.admin(kafka)
    consumer = kafka_clients.consumer(kafka, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await _partitions(consumer, topic)]
        ends = await consumer.end_offsets(tps)
        done = await admin.list_consumer_group_offsets(group)
        return sum(done[tp].offset for tp in tps if tp in done), sum(ends.values())
    finally:
        await consumer.stop()
        await admin.close()


async def drain_learn(kafka: KafkaConfig, group: str, n: int, services: int,
                      timeout: float = 240) -> dict[str, float]:
    """Produce a backlog of n samples at once; events/s until the group committed them all."""
    start_committed, _ = await committed_all(kafka, group, kafka.topic("metrics"))
    run, producer = uuid.uuid4().hex[:8], await _producer(kafka)
    t0 = time.monotonic()
    try:
        now = datetime.now(UTC)
        futures = [await producer.send(kafka.topic("metrics"), CODEC.encode(
            sample(run, i, services).model_copy(update={"event_time": now}).stamped()),
            key=f"svc-{i % services}".encode()) for i in range(n)]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    produced_s = time.monotonic() - t0
    while time.monotonic() - t0 < timeout:
        done, end = await committed_all(kafka, group, kafka.topic("metrics"))
        if done >= end:
            elapsed = time.monotonic() - t0
            return {"events": n, "seconds": round(elapsed, 2), "produce_seconds":
                    round(produced_s, 2), "events_per_s": round((done - start_committed) / elapsed)}
        await asyncio.sleep(0.1)
    done, end = await committed_all(kafka, group, kafka.topic("metrics"))
    return {"events": n, "timeout_s": timeout, "left": end - done,
            "events_per_s": round((done - start_committed) / timeout)}


def shadow_decision(run: str, i: int, services: int) -> Decision:
    """A shadow decision: judged and logged by the gate, never acted on."""
    return Decision(event_id=f"{run}-d{i}", resource_id=f"svc-{i % services}",
                    decision_type="scale_up", origin="dqn",
                    confidence=0.9, mode="shadow", params={"delta": 1}, source="bench",
                    reasoning="bench backlog")


async def drain_govern(kafka: KafkaConfig, tap: Tap, n: int, services: int,
                       timeout: float = 240) -> dict[str, float]:
    """Produce n shadow decisions at once; decisions/s until the last one's verdict."""
    run, producer = uuid.uuid4().hex[:8], await _producer(kafka)
    ids = {f"{run}-d{i}" for i in range(n)}
    t0, wall0 = time.monotonic(), time.time() * 1000
    try:
        events: list[Event] = [shadow_decision(run, i, services).stamped() for i in range(n)]
        futures = [await producer.send(kafka.topic("decisions"), CODEC.encode(e),
                                       key=e.key.encode()) for e in events]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    while time.monotonic() - t0 < timeout:
        verdicts = [s for s in tap.seen if s.topic == "verdicts" and s.correlation_id in ids]
        if len({s.correlation_id for s in verdicts}) >= n:
            last = max(s.created_ms for s in verdicts)
            seconds = (last - wall0) / 1000
            return {"events": n, "seconds": round(seconds, 2),
                    "events_per_s": round(n / seconds)}
        await asyncio.sleep(0.1)
    got = len({s.correlation_id for s in tap.seen
               if s.topic == "verdicts" and s.correlation_id in ids})
    return {"events": n, "timeout_s": timeout, "verdicts": got,
            "events_per_s": round(got / timeout)}
