"""The audit chain on a real ingest worker: signed heads on the audit-heads topic, `audit verify`
through /sql while the worker runs, truncation detected after it stops, and a restarted writer
that continues after the signed head instead of reusing the deleted seqs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from policies.signing import generate_key
from schemas import Decision
from schemas.codec import Codec
from sinks.checkpoint import read_head_file
from streams.audithead import HEADS_TOPIC, read_heads
from tests.integration.conftest import VIEWER_TOKEN, WorkerProcess, wait_until

pytestmark = pytest.mark.kafka


def _decisions(bootstrap: str, topic: str, n: int, tag: str) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for i in range(n):
                d = Decision(resource_id=f"{tag}-{i}", decision_type="scale_up")
                await producer.send_and_wait(topic, Codec().encode(d), key=d.resource_id.encode())
        finally:
            await producer.stop()

    asyncio.run(send())


def _cli(
    worker: WorkerProcess, *args: str, sql_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**worker.env(), "NOVACRON_SQL_TOKEN": VIEWER_TOKEN, "COLUMNS": "200"}
    if sql_url:
        env["NOVACRON_SQL_URL"] = sql_url
    return subprocess.run([sys.executable, "-m", "streams.cli.main", *args], env=env,
                          cwd=worker.workdir, capture_output=True, text=True, timeout=120)


def _seqs(worker: WorkerProcess) -> list[int]:
    return [int(r["seq"]) for r in worker.sql("SELECT seq FROM audit_log FINAL ORDER BY seq")]


def test_truncation_is_detected_and_seqs_are_never_reused(worker_factory, kafka_cfg, tmp_path):
    key_file = tmp_path / "audit.key"
    key_file.write_text(generate_key())
    env = {"NOVACRON_AUDIT__SIGNING_KEY_FILE": str(key_file)}
    worker = worker_factory("ingest", **env)
    _decisions(kafka_cfg.bootstrap, kafka_cfg.topic("decisions"), 6, "a")
    wait_until(lambda: _seqs(worker) == [1, 2, 3, 4, 5, 6], what="six audit rows")
    head_file = worker.workdir / "var" / "audit" / "head.json"  # the default, under cwd
    wait_until(lambda: head_file.exists() and read_head_file(head_file)[0].head.seq == 6,
               what="the signed head of seq 6")
    on_topic = asyncio.run(read_heads(kafka_cfg, kafka_cfg.topic(HEADS_TOPIC)))
    assert max(h.head.seq for h in on_topic) == 6 and on_topic[-1].head.chain == "novacron"

    running = _cli(worker, "audit", "verify", sql_url=worker.url)  # the folder is locked: /sql
    assert running.returncode == 0, running.stdout + running.stderr
    assert "6 audit rows, signed head seq 6" in running.stdout

    worker.stop()
    _delete_after(worker.workdir / "var" / "chdb", 4)
    os.remove(head_file)  # the attacker removes the file copy too: the topic still anchors
    stopped = _cli(worker, "audit", "verify")
    assert stopped.returncode == 1 and "truncated" in stopped.stderr + stopped.stdout

    again = WorkerProcess("ingest", kafka_cfg, worker.workdir, extra_env=env).start()
    try:
        _decisions(kafka_cfg.bootstrap, kafka_cfg.topic("decisions"), 1, "b")
        wait_until(lambda: _seqs(again)[-1:] == [7], what="the next audit row")
        assert _seqs(again) == [1, 2, 3, 4, 7]  # 5 and 6 are never written again
        gap = _cli(again, "audit", "verify", sql_url=again.url)
        assert gap.returncode == 1 and "expected seq 5" in gap.stderr + gap.stdout
    finally:
        again.stop()


def _delete_after(path: Path, seq: int) -> None:
    code = (
        "import sys; from sinks.backend import ChdbBackend; b = ChdbBackend(sys.argv[1]); "
        f"b.execute('ALTER TABLE novacron.audit_log DELETE WHERE seq > {seq} "
        "SETTINGS mutations_sync = 2'); b.close()"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=60)
