"""kcat (an external producer) sends valid and malformed metrics; every record is stored or
dead-lettered, exactly once each."""

from __future__ import annotations

import json
import random
import shutil
import subprocess

import pytest

from tests.integration.conftest import wait_until

pytestmark = pytest.mark.kafka

MALFORMED_KINDS = 8


def _valid(i: int, rng: random.Random) -> bytes:
    sample = {"resource_id": f"vm-{i % 17}", "cpu_usage": round(rng.uniform(0, 100), 2)}
    if i % 3:
        sample["memory_usage"] = round(rng.uniform(0, 100), 2)  # partial samples are fine
    if i % 5 == 0:
        sample["labels"] = {"tier": "web"}
    return json.dumps(sample).encode()


def _malformed(i: int) -> bytes:
    kind = (i // 4) % MALFORMED_KINDS  # every 4th record is malformed, cycling the kinds
    return [
        b"this is not json",
        b'{"resource_id": "vm-1", "cpu_usage": 180}',  # out of range
        b'{"resource_id": "vm-1", "cpu_usage": "high"}',  # wrong type
        b'{"cpu_usage": 10}',  # missing required field
        b"[1, 2, 3]",  # not an object
        b'{"resource_id": "vm-1", "error_rate": 1.5}',  # out of range
        b"\xff\xfe\xfd binary \xc0",  # not UTF-8
        json.dumps({"resource_id": "vm-big", "labels": {"x": "y" * 6000}}).encode(),  # oversized
    ][kind]


@pytest.mark.skipif(
    shutil.which("kcat") is None, reason="kcat missing: apt-get install kcat (.ci/run does)"
)
def test_every_record_is_stored_or_dead_lettered(worker_factory, kafka_cfg) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(42)
    records = [(_malformed(i) if i % 4 == 0 else _valid(i, rng)) for i in range(400)]
    n_bad = sum(1 for i in range(400) if i % 4 == 0)
    assert all(b"\n" not in r for r in records)
    worker = worker_factory("ingest", NOVACRON_MAX_MESSAGE_BYTES="4096")
    topic = kafka_cfg.topic("metrics")
    subprocess.run(
        ["kcat", "-P", "-b", kafka_cfg.bootstrap, "-t", topic],
        input=b"\n".join(records) + b"\n",
        check=True,
        timeout=60,
    )

    def landed() -> bool:
        valid = worker.scalar("SELECT uniqExact(event_id) FROM novacron.metric_samples")
        dead = worker.scalar(
            f"SELECT uniqExact(event_id) FROM novacron.dead_letters WHERE source_topic = '{topic}'"
        )
        return valid + dead == len(records)

    wait_until(landed, timeout=90, what="all records stored or dead-lettered")
    valid = worker.scalar("SELECT uniqExact(event_id) FROM novacron.metric_samples")
    assert valid == len(records) - n_bad
    reasons = worker.sql(
        "SELECT error_kind, reason, raw_size FROM novacron.dead_letters FINAL "
        f"WHERE source_topic = '{topic}'"
    )
    assert len(reasons) == n_bad
    assert all(r["reason"] for r in reasons)
    kinds = {r["error_kind"] for r in reasons}
    assert kinds == {"decode", "schema", "oversized"}
    texts = " | ".join(str(r["reason"]) for r in reasons)
    for words in (
        "not valid JSON",
        "less than or equal to 100",
        "Field required",
        "expected a JSON object",
        "above the 4096 limit",
        "valid number",
    ):
        assert words in texts
