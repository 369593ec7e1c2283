"""Each role's /metrics (a real worker process) shows exactly the names docs/metrics.md gives it,
the seed's names among them, and the seed's names move with real events."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer

from runbooks.loader import Library
from runbooks.resolve import Resolver
from schemas import Action, ConfigChange, Event
from schemas.codec import Codec
from streams.settings import KafkaConfig
from tests.integration.conftest import wait_until
from tests.metrics_docs import role_names

pytestmark = pytest.mark.kafka
CODEC = Codec()
WRITE = ["python", "-c", "import sys; open(sys.argv[1], 'w').write('encrypted')"]
CHECK = ["python", "-c", "import sys; sys.exit(open(sys.argv[1]).read() != 'encrypted')"]


def _scrape(url: str) -> str:
    return httpx.get(f"{url}/metrics", timeout=10).text


def _scrape_until(url: str, *samples: str, what: str, timeout: float = 60) -> str:
    """The first /metrics text in which every sample has a non-zero value."""
    def ready() -> str | None:
        text = _scrape(url)
        return text if all(_value(text, s) for s in samples) else None
    return str(wait_until(ready, timeout=timeout, what=what))


def _names(text: str) -> set[str]:
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def _value(text: str, sample: str) -> float | None:
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


async def _send(cfg: KafkaConfig, topic: str, *values: bytes | Event) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=cfg.bootstrap, acks="all")
    await producer.start()
    try:
        for v in values:
            raw = v if isinstance(v, bytes) else CODEC.encode(v)
            await producer.send_and_wait(cfg.topic(topic), raw, key=b"k")
    finally:
        await producer.stop()


@pytest.mark.parametrize("role", ["ingest", "learn"])
def test_role_exports_its_documented_names(worker_factory, role: str) -> None:  # type: ignore[no-untyped-def]
    worker = worker_factory(role)
    assert _names(_scrape(worker.url)) == role_names(role)


def test_ingest_counts_a_dead_letter(worker_factory, kafka_cfg) -> None:  # type: ignore[no-untyped-def]
    ingest = worker_factory("ingest")
    asyncio.run(_send(kafka_cfg, "metrics", b"\xff not an event"))
    sample = f'novacron_dlq_total{{kind="decode",topic="{kafka_cfg.topic("metrics")}"}}'
    assert _value(_scrape_until(ingest.url, sample, what="a counted dead letter"), sample) == 1.0


def test_govern_exports_compliance_names_from_a_violation(worker_factory, kafka_cfg) -> None:  # type: ignore[no-untyped-def]
    govern = worker_factory("govern")
    assert _names(_scrape(govern.url)) == role_names("govern")
    vm = {"service": "checkout", "disk_encrypted": False, "public_ip": False, "monitoring": True,
          "tags": {"owner": "platform"}, "security_groups": []}
    change = ConfigChange(resource_id="vm-1", resource_type="novacron_vm", config=vm)
    asyncio.run(_send(kafka_cfg, "config", change, change))  # the second is no new violation
    text = _scrape_until(govern.url, 'compliance_violations_total{severity="HIGH"}',
                         what="compliance results counted")
    assert _value(text, 'compliance_violations_total{severity="HIGH"}') == _value(
        text, 'novacron_compliance_violations_opened_total{severity="HIGH"}') == 1.0
    score = _value(text, 'compliance_score_percentage{standard="pci-dss"}')
    assert score is not None and 0 < score < 100
    assert score == _value(text, 'novacron_compliance_score_percent{standard="pci-dss"}')


MAPPING = {"remediate_compliance": "encrypt-disk"}


def _library(tmp_path: Path) -> Path:
    """Two runbooks writing and checking a file; the file is the runbook's own (a parameter with
    a default that events cannot override), as every target is."""
    lib = tmp_path / "runbooks"
    lib.mkdir()
    verify = {"id": "verify", "action_type": "command", "action": [*CHECK, "${target}"],
              "critical": True}  # the fix is done only when the check holds
    steps = [{"id": "fix", "action_type": "command", "action": [*WRITE, "${target}"],
              "critical": True}, {**verify, "dependencies": ["fix"]}]
    fails = [verify]  # nothing wrote the target: the check fails
    for rid, body, target, selectable in (
            ("encrypt-disk", steps, tmp_path / "disk-1", False),
            ("always-fails", fails, tmp_path / "disk-2", True)):
        meta = {"id": rid, "name": rid, "type": "test", "version": 1.0, "selectable": selectable}
        params = {"target": {"type": "string", "default": str(target)}}
        (lib / f"{rid}.yaml").write_text(
            yaml.safe_dump({"metadata": meta, "parameters": params, "steps": body}))
    return lib


def _approved(lib: Path, action_id: str, resource_id: str, action_type: str,
              **params: object) -> Action:
    """The action the gate would emit: the resolved runbook, its hash and typed variables."""
    resolved = Resolver(Library([lib]).get, MAPPING).resolve(action_type, params)
    return Action(action_id=action_id, resource_id=resource_id, action_type=action_type,
                  runbook=resolved.runbook_id, runbook_hash=resolved.runbook_hash,
                  params=resolved.variables)


def test_execute_exports_workflow_names_from_real_runs(worker_factory, kafka_cfg,  # type: ignore[no-untyped-def]
                                                       tmp_path) -> None:
    lib = _library(tmp_path)
    execute = worker_factory("execute", NOVACRON_EXECUTOR__LIBRARY_DIRS=json.dumps([str(lib)]),
                             NOVACRON_EXECUTOR__RUNBOOKS=json.dumps(MAPPING))
    assert _names(_scrape(execute.url)) == role_names("execute")
    assert _value(_scrape(execute.url), "compliance_auto_remediated") == 0.0
    fixed = tmp_path / "disk-1"
    actions = [
        _approved(lib, "fix-1", "vm-1", "remediate_compliance"),
        _approved(lib, "fail-1", "vm-2", "run_runbook", runbook="always-fails"),
        # an action type no runbook serves: refused (fail closed), counted as `other`
        Action(action_id="odd-1", resource_id="vm-3", action_type="launch_rockets"),
    ]
    asyncio.run(_send(kafka_cfg, "actions", *actions))
    text = _scrape_until(
        execute.url, 'novacron_executor_actions_total{action_type="other",status="rejected"}',
        'workflow_executions_total{runbook="always-fails",status="failed"}',
        'workflow_executions_total{runbook="encrypt-disk",status="succeeded"}',
        timeout=90, what="three actions handled")
    assert fixed.read_text() == "encrypted"
    assert _value(text, "compliance_auto_remediated") == 1.0
    # one succeeded, one failed, one refused by the executor's resolution (not succeeded either)
    assert _value(text, "workflow_success_rate") == pytest.approx(1 / 3)
    assert _value(text, 'workflow_step_failures{final="true",runbook="always-fails",'
                        'step="verify"}') == 1.0
    assert _value(text, 'workflow_duration_seconds_count{runbook="encrypt-disk"}') == 1.0
