"""The compose SASL broker, for real: the kafka-format script of docker-compose.sasl.yml and the
broker properties its environment renders to (the apache/kafka image's rules) run on the local
Kafka jars; then the admin creates topics and ACLs with the `acls` service's command, and a role
connects with its secret password. Only the host names and ports differ from compose."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import TopicAuthorizationFailedError

from schemas import Action
from streams import kafka_clients
from streams.acls import PRINCIPAL_ROLES, kafka_user
from streams.kafka_local import LOG4J2, KafkaLocal, LocalKafkaConfig
from streams.publish import publish_async
from streams.reader import read_to_end
from streams.settings import KafkaConfig, Settings
from tests.unit.test_deploy_sasl import ADMIN_PASSWORD, compose_env, image_properties

pytestmark = pytest.mark.kafka


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ComposeBroker:
    """The compose `kafka-format` + `kafka` services, on loopback ports and a temporary folder."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.compose = tmp, compose_env()
        self.ports = {"INTERNAL": _free_port(), "EXTERNAL": _free_port(),
                      "CONTROLLER": _free_port()}
        real = LocalKafkaConfig()
        KafkaLocal(real).fetch()
        self.libs = real.libs
        self.data, self.secrets = tmp / "data", tmp / "secrets"
        self.secrets.mkdir()
        for role in PRINCIPAL_ROLES:
            (self.secrets / f"kafka-{role}").write_text(f"{role}-secret-password\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def _local(self, text: str) -> str:
        controller = f"127.0.0.1:{self.ports['CONTROLLER']}"
        return (text.replace("/var/lib/kafka/data", str(self.data))
                .replace("/run/secrets/", f"{self.secrets}/").replace("kafka:9093", controller)
                .replace("/tmp/format.properties", str(self.tmp / "format.properties")))

    def format(self) -> None:
        svc = self.compose["services"]["kafka-format"]
        storage = self.tmp / "kafka-storage.sh"
        storage.write_text(f'#!/bin/bash\nexec java -cp "{self.libs}/*" kafka.tools.StorageTool '
                           '"$@"\n')
        storage.chmod(0o755)
        script = self._local(svc["command"][0]).replace("/opt/kafka/bin/kafka-storage.sh",
                                                        str(storage))
        script = "\n".join(x for x in script.splitlines() if not x.startswith("chown "))
        env = {**os.environ, **{k: str(v) for k, v in svc["environment"].items()}}
        subprocess.run(["bash", "-c", script], env=env, check=True, timeout=60,
                       capture_output=True)

    def properties(self) -> dict[str, str]:
        props = image_properties(self.compose["services"]["kafka"]["environment"])
        ports = self.ports
        props["listeners"] = ",".join(f"{n}://127.0.0.1:{p}" for n, p in ports.items())
        props["advertised.listeners"] = ",".join(f"{n}://127.0.0.1:{ports[n]}"
                                                 for n in ("INTERNAL", "EXTERNAL"))
        props["controller.quorum.voters"] = f"1@127.0.0.1:{ports['CONTROLLER']}"
        props["log.dirs"] = str(self.data)
        return props

    def start(self) -> None:
        path = self.tmp / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in self.properties().items()))
        (self.tmp / "log4j2.properties").write_text(LOG4J2.format(log=self.tmp / "server.log"))
        self.proc = subprocess.Popen(
            ["java", "-Xmx512m", f"-Dlog4j2.configurationFile={self.tmp / 'log4j2.properties'}",
             "-cp", f"{self.libs}/*", "kafka.Kafka", str(path)],
            stdout=open(self.tmp / "stdout.log", "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115

    def client(self, user: str, password: str) -> KafkaConfig:
        return KafkaConfig(bootstrap=f"127.0.0.1:{self.ports['EXTERNAL']}",
                           security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256",
                           username=user, password=password)  # type: ignore[arg-type]

    def wait_ready(self, timeout: float = 60) -> None:
        admin = self.client("admin", ADMIN_PASSWORD)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log_tail()
            try:
                asyncio.run(_list_topics(admin))
                return
            except Exception:
                time.sleep(0.5)
        raise TimeoutError(self.log_tail())

    def log_tail(self) -> str:
        log = self.tmp / "stdout.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


async def _list_topics(cfg: KafkaConfig) -> list[str]:
    admin = kafka_clients.admin(cfg, request_timeout_ms=3000)
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()


def _cli(env: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("NOVACRON_")}
    full.update({k: str(v) for k, v in env.items()})
    return subprocess.run([sys.executable, "-m", "streams.cli.main", *args], env=full,
                          capture_output=True, text=True, timeout=120)


def test_the_compose_sasl_broker_authenticates_and_authorizes(tmp_path: Path) -> None:
    broker = ComposeBroker(tmp_path)
    broker.format()
    broker.start()
    try:
        broker.wait_ready()
        services = broker.compose["services"]
        bootstrap = {"NOVACRON_KAFKA__BOOTSTRAP": f"127.0.0.1:{broker.ports['EXTERNAL']}"}
        for name in ("topics", "acls"):  # the one-shot services, with their own environment
            run = _cli({**services[name]["environment"], **bootstrap}, *services[name]["command"])
            assert run.returncode == 0, run.stderr[-2000:]
        ingest = broker.client(kafka_user("ingest"), "ingest-secret-password")
        assert asyncio.run(read_to_end(ingest, ingest.topic("metrics"))) == []
        action = Action(action_id="act-compose", action_type="scale_up", resource_id="web-1",
                        runbook="scale-up", runbook_hash="0" * 64)
        with pytest.raises(TopicAuthorizationFailedError):
            asyncio.run(publish_async([action], Settings(kafka=ingest)))
        govern = broker.client(kafka_user("govern"), "govern-secret-password")
        assert asyncio.run(publish_async([action], Settings(kafka=govern))) == 1
        wrong = broker.client(kafka_user("govern"), "ingest-secret-password")
        with pytest.raises(Exception, match="refused the credentials"):
            asyncio.run(_list_topics(wrong))
    finally:
        broker.stop()
