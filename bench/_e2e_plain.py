"""The baseline of bench/e2e_latency.py: plain aiokafka `getmany` loops doing a role's compute.

No Faust, no generic host, no checkpoints: consume a batch, decode it, call the same agent
classes the learn and govern roles run (optimizer + decision engine; the policy gate with the
shipped policies), send the outputs with one producer, wait for the acks, commit. Run as its own
process, like a role: `python bench/_e2e_plain.py learn|govern` with the worker's NOVACRON_* env.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiokafka import AIOKafkaConsumer  # noqa: E402

from schemas import Decision, Event, Insight, MetricSample  # noqa: E402
from streams import kafka_clients  # noqa: E402
from streams.settings import Settings  # noqa: E402

Step = Callable[[list[bytes]], list[Event]]


def learn_step(settings: Settings) -> tuple[str, Step]:
    """metrics → optimizer, decision engine (insights handed over in-process) → events."""
    from agents.optimizer import Optimizer
    from streams.decision import build_engine

    codec, optimizer, engine = settings.codec(), Optimizer(settings.optimizer), \
        build_engine(settings)

    def step(values: list[bytes]) -> list[Event]:
        out: list[Event] = []
        for value in values:
            sample = codec.decode(value, MetricSample)
            insights = optimizer.handle(sample)
            out += insights
            out += engine.handle(sample)
            for insight in insights:
                if isinstance(insight, Insight):
                    out += engine.handle(insight)
        return out

    return "metrics", step


def govern_step(settings: Settings) -> tuple[str, Step]:
    """decisions → the policy gate (shipped policies, batch evaluation) → verdicts, actions."""
    from agents.gate import PolicyGate
    from policies.backends import make_engine
    from policies.registry import PolicyRegistry
    from policies.source import load_directory
    from runbooks.loader import Library
    from runbooks.resolve import Resolver
    from streams.gate import POLICY_DIR

    codec, registry = settings.codec(), PolicyRegistry(settings.policies)
    registry.seed(load_directory(POLICY_DIR))
    library = Library(settings.executor.library_dirs)
    gate = PolicyGate(make_engine(registry, settings.policy_engine), settings.gate,
                      Resolver(library.get, settings.executor.runbooks))

    def step(values: list[bytes]) -> list[Event]:
        decisions = [codec.decode(v, Decision) for v in values]
        return [e for r in gate.evaluate_batch([(d, None) for d in decisions]) for e in r.events]

    return "decisions", step


async def run(role: str) -> None:
    """Consume, compute, send, commit until killed."""
    settings = Settings()
    kafka = settings.kafka
    topic, step = (learn_step if role == "learn" else govern_step)(settings)
    consumer: AIOKafkaConsumer = kafka_clients.consumer(
        kafka, kafka.topic(topic), group_id=f"{kafka.topic_prefix}plain-{role}",
        enable_auto_commit=False, auto_offset_reset="earliest",
        fetch_max_wait_ms=kafka.fetch_max_wait_ms)
    producer = kafka_clients.producer(kafka, acks="all", linger_ms=kafka.linger_ms)
    codec = settings.codec()
    await consumer.start()
    await producer.start()
    print("ready", flush=True)
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            if not batches:
                continue
            values = [r.value for recs in batches.values() for r in recs if r.value is not None]
            events = await asyncio.to_thread(step, values)
            sent = [await producer.send(kafka.topic(e.topic), codec.encode(e.stamped()),
                                        key=e.key.encode()) for e in events]
            await asyncio.gather(*sent)
            await consumer.commit({tp: recs[-1].offset + 1 for tp, recs in batches.items()})
    finally:
        await consumer.stop()
        await producer.stop()


if __name__ == "__main__":
    import uvloop

    uvloop.install()
    asyncio.run(run(sys.argv[1]))
