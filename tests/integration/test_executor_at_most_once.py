"""At most once per action id through real workers: SIGKILL mid-workflow, redelivered actions."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer

from runbooks.loader import Library
from schemas import Action, Outcome
from schemas.codec import Codec
from streams.reader import read_to_end
from streams.settings import KafkaConfig
from tests.integration.conftest import wait_until
from tests.unit.test_runbooks_support import approved

pytestmark = pytest.mark.kafka
CODEC = Codec()
# Faust's 60 s default session would keep the killed member's partitions for a minute
FAST_GROUP = {"BROKER_SESSION_TIMEOUT": "6", "BROKER_HEARTBEAT_INTERVAL": "1"}
APPEND = ["python", "-c", "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + chr(10))"]
SLOW = ["python", "-c", "import sys, time; f = sys.argv[1]; open(f, 'a').write('s3-start\\n'); "
        "time.sleep(float(sys.argv[2])); open(f, 'a').write('s3-end\\n')"]


def _command(sid: str, argv: list[str], after: str | None = None,
             **extra: object) -> dict[str, object]:
    step = {"id": sid, "action_type": "command", "action": argv, "timeout": 60, **extra}
    return {**step, "dependencies": [after]} if after else step


LOG = {"type": "string", "overridable": True}  # a test runbook: the test picks the log file
FIVE_STEPS = {
    "metadata": {"id": "five-steps", "name": "Five steps in a row", "type": "test", "version": 1.0,
                 "selectable": True},
    "parameters": {"log": LOG, "pause": {"type": "integer", "default": 5, "overridable": True}},
    "steps": [
        _command("s1", [*APPEND, "${log}", "s1"]),
        _command("s2", [*APPEND, "${log}", "s2"], "s1"),
        _command("s3", [*SLOW, "${log}", "${pause}"], "s2", idempotent=True),
        _command("s4", [*APPEND, "${log}", "s4"], "s3"),
        _command("s5", [*APPEND, "${log}", "s5"], "s4"),
    ],
}
COUNT_ONCE = {
    "metadata": {"id": "count-once", "name": "Count and linger", "type": "test", "version": 1.0,
                 "selectable": True},
    "parameters": {"log": LOG},
    "steps": [
        _command("count", [*APPEND, "${log}", "ran"]),
        {"id": "linger", "action_type": "sleep", "parameters": {"seconds": 1},
         "dependencies": ["count"]},
    ],
}


def _library(tmp_path: Path) -> dict[str, str]:
    lib = tmp_path / "runbooks"
    lib.mkdir()
    (lib / "five-steps.yaml").write_text(yaml.safe_dump(FIVE_STEPS))
    (lib / "count-once.yaml").write_text(yaml.safe_dump(COUNT_ONCE))
    return {"NOVACRON_EXECUTOR__LIBRARY_DIRS": f'["{lib}"]', **FAST_GROUP}


async def _produce(cfg: KafkaConfig, *actions: Action) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=cfg.bootstrap, acks="all")
    await producer.start()
    try:
        for a in actions:
            await producer.send_and_wait(cfg.topic("actions"), CODEC.encode(a), key=a.key.encode())
    finally:
        await producer.stop()


async def _outcomes(cfg: KafkaConfig) -> list[Outcome]:
    records = await read_to_end(cfg, cfg.topic("outcomes"))
    return [CODEC.decode(r.value, Outcome) for r in records if r.value]


def _statuses(cfg: KafkaConfig, action_id: str) -> list[str]:
    return [o.status for o in asyncio.run(_outcomes(cfg))
            if o.action_id == action_id and o.scope == "action" and o.status != "started"]


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_sigkill_in_step_3_resumes_without_repeating_steps_1_and_2(  # type: ignore[no-untyped-def]
        worker_factory, kafka_cfg, tmp_path) -> None:
    log = tmp_path / "effects.log"
    env = _library(tmp_path)
    ingest = worker_factory("ingest")
    execute = worker_factory("execute", **env)
    action = approved(Library([tmp_path / "runbooks"]), "run_runbook",
                      {"runbook": "five-steps", "log": str(log), "pause": 5},
                      action_id="act-kill-1", resource_id="svc-a")
    asyncio.run(_produce(kafka_cfg, action))
    wait_until(lambda: "s3-start" in _lines(log), timeout=60, interval=0.1, what="step 3 running")
    execute.kill()  # SIGKILL in step 3: the record is uncommitted, the journal knows s1, s2
    assert _lines(log) == ["s1", "s2", "s3-start"]
    execute.start()  # same consumer group: the action is redelivered and resumed

    sql = ("SELECT status FROM novacron.outcomes FINAL "
           "WHERE action_id = 'act-kill-1' AND scope = 'action' ORDER BY event_time")
    statuses = wait_until(
        lambda: [r["status"] for r in ingest.sql(sql) if r["status"] != "started"],
        timeout=90, what="the workflow's final outcome in ClickHouse")
    assert statuses == ["succeeded"]
    # the orphaned first run of s3 (own session, outlives the worker) ends too: nothing left running
    wait_until(lambda: _lines(log).count("s3-end") == 2, timeout=30, what="both runs of step 3")
    lines = _lines(log)
    assert [x for x in lines if not x.startswith("s3")] == ["s1", "s2", "s4", "s5"]
    assert lines.count("s3-start") == 2  # s3 is idempotent: re-run after the interruption
    started = ingest.sql("SELECT step_id, count() AS n FROM novacron.outcomes FINAL WHERE "
                         "action_id = 'act-kill-1' AND scope = 'step' AND status = 'started' "
                         "GROUP BY step_id ORDER BY step_id")
    assert {r["step_id"]: r["n"] for r in started} == {"s1": 1, "s2": 1, "s3": 2, "s4": 1, "s5": 1}
    metrics = httpx.get(f"{execute.url}/metrics", timeout=10).text
    counter = 'novacron_executor_workflows_total{runbook="five-steps",status="succeeded"} 1.0'
    assert counter in metrics


def test_redelivered_action_runs_once(worker_factory, kafka_cfg, tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "count.log"
    execute = worker_factory("execute", **_library(tmp_path))
    action = approved(Library([tmp_path / "runbooks"]), "run_runbook",
                      {"runbook": "count-once", "log": str(log)},
                      action_id="act-dup-1", resource_id="svc-b")
    asyncio.run(_produce(kafka_cfg, action, action))  # the same record twice, back to back
    wait_until(lambda: sorted(_statuses(kafka_cfg, "act-dup-1")) == ["skipped", "succeeded"],
               timeout=60, what="one run and one skip")
    assert _lines(log) == ["ran"]

    execute.stop()  # a new process knows the action only from the journal topic
    execute.start()
    asyncio.run(_produce(kafka_cfg, action))
    wait_until(lambda: _statuses(kafka_cfg, "act-dup-1").count("skipped") >= 2, timeout=60,
               what="the redelivery after the restart to be skipped")
    assert _statuses(kafka_cfg, "act-dup-1").count("succeeded") == 1
    assert _lines(log) == ["ran"]  # side-effect counter = 1
    skipped = [o for o in asyncio.run(_outcomes(kafka_cfg)) if o.status == "skipped"]
    assert {o.output.get("reason") for o in skipped} == {"already executed"}
