"""SASL/SCRAM and the per-role ACLs on a real broker (the local SCRAM broker, its own port):
right credentials work, a wrong password is refused with the reason, a role cannot write a topic
it does not own, and a worker role runs end to end as its own principal."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aiokafka import TopicPartition
from aiokafka.errors import TopicAuthorizationFailedError
from pydantic import SecretStr

from runbooks.loader import Library
from schemas import Action, MetricSample, Outcome
from schemas.codec import Codec
from schemas.errors import BackendUnavailable, NonRetryableError
from streams import kafka_clients
from streams.acls import acls, apply_acls, kafka_user
from streams.kafka_local import SASL_PORT, KafkaLocal, LocalKafkaConfig
from streams.publish import publish_async
from streams.reader import read_to_end
from streams.settings import KafkaConfig, Settings
from streams.topics import create_topics
from tests.integration.conftest import WorkerProcess, wait_until
from tests.unit.test_runbooks_support import approved

pytestmark = pytest.mark.kafka
CODEC = Codec()


@pytest.fixture(scope="module")
def broker() -> Iterator[KafkaLocal]:
    """The local SCRAM broker on its own port (stopped afterwards if this module started it)."""
    local = KafkaLocal(LocalKafkaConfig(port=SASL_PORT, sasl=True))
    started = local.pid() is None
    local.start()
    yield local
    if started:
        local.stop()


@pytest.fixture(scope="module")
def admin_cfg(broker: KafkaLocal) -> Iterator[KafkaConfig]:
    """The admin on a fresh topic prefix: topics created, every role's ACLs applied."""
    cfg = broker.client_config().model_copy(
        update={"topic_prefix": f"s{uuid.uuid4().hex[:10]}."})
    asyncio.run(create_topics(cfg))
    asyncio.run(apply_acls(cfg, acls(cfg)))
    yield cfg
    asyncio.run(_delete_topics(cfg))


def _as(broker: KafkaLocal, admin_cfg: KafkaConfig, role: str) -> KafkaConfig:
    """The config of a role's principal on the test's prefix."""
    return broker.client_config(kafka_user(role)).model_copy(
        update={"topic_prefix": admin_cfg.topic_prefix})


async def _delete_topics(cfg: KafkaConfig) -> None:
    admin = kafka_clients.admin(cfg)
    await admin.start()
    try:
        prefixes = (cfg.topic_prefix, cfg.topic_prefix.rstrip(".") + "-")
        mine = [t for t in await admin.list_topics() if t.startswith(prefixes)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


def _sample(resource: str) -> MetricSample:
    return MetricSample(resource_id=resource, resource_type="vm", cpu_usage=0.5)


async def _consume_as_sink(cfg: KafkaConfig) -> list[bytes]:
    """What the ingest role's group reads from `metrics` (group offsets committed)."""
    consumer = kafka_clients.consumer(cfg, cfg.topic("metrics"), group_id=cfg.topic("sink"),
                                      auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        keys: list[bytes] = []
        deadline = time.monotonic() + 20
        while not keys and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                keys += [r.key for r in records if r.key is not None]
        await consumer.commit()
        return keys
    finally:
        await consumer.stop()


def test_roles_produce_and_consume_with_their_credentials(broker, admin_cfg) -> None:  # type: ignore[no-untyped-def]
    collect, ingest = _as(broker, admin_cfg, "collect"), _as(broker, admin_cfg, "ingest")
    sent = asyncio.run(publish_async([_sample("vm-sasl-1")], Settings(kafka=collect)))
    assert sent == 1
    assert asyncio.run(_consume_as_sink(ingest)) == [b"vm-sasl-1"]
    # a group-less reader (the readers of compacted topics) with the same principal
    records = asyncio.run(read_to_end(ingest, ingest.topic("metrics")))
    assert [r.key for r in records] == [b"vm-sasl-1"]


def test_wrong_password_is_refused_with_a_readable_reason(broker, admin_cfg) -> None:  # type: ignore[no-untyped-def]
    wrong = _as(broker, admin_cfg, "ingest").model_copy(
        update={"password": SecretStr("not-the-password")})

    async def start() -> None:
        producer = kafka_clients.producer(wrong)
        await producer.start()
        await producer.stop()

    with pytest.raises(BackendUnavailable) as refused:
        asyncio.run(start())
    reason = str(refused.value)
    assert "refused the credentials" in reason and "novacron-ingest" in reason
    assert "SCRAM-SHA-256" in reason and "not-the-password" not in reason
    # the CLI readers fail the same way (a consumer and an admin client behind them)
    with pytest.raises(BackendUnavailable, match="refused the credentials"):
        asyncio.run(read_to_end(wrong, wrong.topic("metrics")))


def test_a_role_cannot_write_or_read_topics_it_does_not_own(broker, admin_cfg) -> None:  # type: ignore[no-untyped-def]
    ingest, learn = _as(broker, admin_cfg, "ingest"), _as(broker, admin_cfg, "learn")
    action = Action(action_id="act-forged", action_type="scale_up", resource_id="web-1",
                    runbook="scale-up", runbook_hash="0" * 64)
    # the sink reads every topic but writes only dlq and audit-heads: no forged action
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(publish_async([action], Settings(kafka=ingest)))
    # learn writes decisions, never what the gate alone may approve
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(publish_async([action], Settings(kafka=learn)))
    # and it cannot read the executor's journal
    with pytest.raises(NonRetryableError, match="novacron-learn .*may not read .*executor-journal"):
        asyncio.run(read_to_end(learn, learn.topic("executor-journal")))
    records = asyncio.run(read_to_end(admin_cfg, admin_cfg.topic("actions")))
    assert not [r for r in records if r.key == b"act-forged"]


COUNT = {
    "metadata": {"id": "count-once", "name": "Count", "type": "test", "version": 1.0,
                 "selectable": True},
    "parameters": {"log": {"type": "string", "overridable": True}},
    "steps": [{"id": "count", "action_type": "command", "timeout": 30, "action": [
        "python", "-c", "import sys; open(sys.argv[1], 'a').write('ran' + chr(10))", "${log}"]}],
}


def _outcomes(cfg: KafkaConfig, action_id: str) -> list[str]:
    records = asyncio.run(read_to_end(cfg, cfg.topic("outcomes")))
    found = [CODEC.decode(r.value, Outcome) for r in records if r.value is not None]
    return [o.status for o in found if o.action_id == action_id and o.scope == "action"]


def test_execute_worker_runs_an_action_as_its_own_principal(broker, admin_cfg, tmp_path: Path  # type: ignore[no-untyped-def]
                                                            ) -> None:
    library = tmp_path / "runbooks"
    library.mkdir()
    (library / "count-once.yaml").write_text(yaml.safe_dump(COUNT))
    execute = _as(broker, admin_cfg, "execute")
    assert execute.password is not None
    env = {"NOVACRON_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
           "NOVACRON_KAFKA__SASL_MECHANISM": "SCRAM-SHA-256",
           "NOVACRON_KAFKA__USERNAME": kafka_user("execute"),
           "NOVACRON_KAFKA__PASSWORD_FILE": str(broker.cfg.run_dir / "secrets" /
                                                f"{kafka_user('execute')}.password"),
           "NOVACRON_EXECUTOR__LIBRARY_DIRS": f'["{library}"]'}
    worker = WorkerProcess("execute", execute, tmp_path / "work", extra_env=env).start()
    try:
        log = tmp_path / "effects.log"
        action = approved(Library([library]), "run_runbook",
                          {"runbook": "count-once", "log": str(log)}, action_id="act-sasl-1")
        govern = _as(broker, admin_cfg, "govern")  # the gate's principal writes actions
        asyncio.run(publish_async([action], Settings(kafka=govern)))
        operator = _as(broker, admin_cfg, "operator")
        wait_until(lambda: "succeeded" in _outcomes(operator, "act-sasl-1"), timeout=40,
                   what=f"the action's outcome; worker log:\n{worker.log_tail()}")
        assert log.read_text().splitlines() == ["ran"]
        # the worker's group commits as the execute principal (Faust commits every few seconds)
        wait_until(lambda: _committed(admin_cfg, "execute") > 0, timeout=15,
                   what="the execute group's committed offset")
    finally:
        worker.stop()


def _committed(cfg: KafkaConfig, role: str) -> int:
    async def offsets() -> int:
        admin = kafka_clients.admin(cfg)
        await admin.start()
        try:
            group = f"{cfg.topic_prefix.rstrip('.')}-{role}"
            found = await admin.list_consumer_group_offsets(group)
            return sum(m.offset for tp, m in found.items()
                       if isinstance(tp, TopicPartition) and tp.topic == cfg.topic("actions"))
        finally:
            await admin.close()
    return asyncio.run(offsets())
