"""Each role's /metrics (a real worker process) shows exactly the names docs/metrics.md gives it,
the seed's names among them, and the seed's names move with real events."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer

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


def _library(tmp_path: Path) -> dict[str, str]:
    lib = tmp_path / "runbooks"
    lib.mkdir()
    verify = {"id": "verify", "action_type": "command", "action": [*CHECK, "${target}"],
              "critical": True}  # the fix is done only when the check holds
    steps = [{"id": "fix", "action_type": "command", "action": [*WRITE, "${target}"],
              "critical": True}, {**verify, "dependencies": ["fix"]}]
    fails = [verify]  # nothing wrote the target: the check fails
    for rid, body in (("encrypt-disk", steps), ("always-fails", fails)):
        meta = {"id": rid, "name": rid, "type": "test", "version": 1.0}
        (lib / f"{rid}.yaml").write_text(yaml.safe_dump({"metadata": meta, "steps": body}))
    return {"NOVACRON_EXECUTOR__LIBRARY_DIRS": f'["{lib}"]',
            "NOVACRON_EXECUTOR__RUNBOOKS": '{"remediate_compliance": "encrypt-disk"}'}


def test_execute_exports_workflow_names_from_real_runs(worker_factory, kafka_cfg,  # type: ignore[no-untyped-def]
                                                       tmp_path) -> None:
    execute = worker_factory("execute", **_library(tmp_path))
    assert _names(_scrape(execute.url)) == role_names("execute")
    assert _value(_scrape(execute.url), "compliance_auto_remediated") == 0.0
    fixed, broken = tmp_path / "disk-1", tmp_path / "disk-2"
    actions = [
        Action(action_id="fix-1", resource_id="vm-1", action_type="remediate_compliance",
               params={"target": str(fixed)}),
        Action(action_id="fail-1", resource_id="vm-2", action_type="run_runbook",
               runbook="always-fails", params={"target": str(broken)}),
        Action(action_id="odd-1", resource_id="vm-3", action_type="launch_rockets"),  # unmapped
    ]
    asyncio.run(_send(kafka_cfg, "actions", *actions))
    text = _scrape_until(
        execute.url, 'novacron_executor_actions_total{action_type="other",status="skipped"}',
        'workflow_executions_total{runbook="always-fails",status="failed"}',
        'workflow_executions_total{runbook="encrypt-disk",status="succeeded"}',
        timeout=90, what="three actions handled")
    assert fixed.read_text() == "encrypted"
    assert _value(text, "compliance_auto_remediated") == 1.0
    assert _value(text, "workflow_success_rate") == 0.5  # the skipped action is no execution
    assert _value(text, 'workflow_step_failures{final="true",runbook="always-fails",'
                        'step="verify"}') == 1.0
    assert _value(text, 'workflow_duration_seconds_count{runbook="encrypt-disk"}') == 1.0
