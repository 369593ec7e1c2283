"""The local single-node Apache Kafka 4.x broker (KRaft) from Maven Central jars.

Plaintext by default (the shared broker on 9092); `--sasl` starts a SASL/SCRAM broker with ACLs
on its own ports and data folder, its users (admin and one per role) created at format time.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streams.settings import KafkaConfig

__all__ = ["ADMIN_USER", "SASL_PORT", "KafkaLocal", "LocalKafkaConfig"]

REPO_ROOT = Path(__file__).resolve().parents[1]
POM = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
DEFAULT_VERSION = "4.1.1"
SASL_PORT = 9192
"""Client port of the SASL/SCRAM broker (controller: +1), beside the shared plaintext 9092."""
ADMIN_USER = "admin"
"""The SASL broker's super user: creates topics and ACLs (roles get only their ACLs)."""

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = info
"""

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{controller_port}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data}
num.partitions=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
message.max.bytes=4194304
log.retention.hours=168
"""


SASL_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{controller_port}
listeners=SASL_PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=SASL_PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_PLAINTEXT
listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-256
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-256
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=\
org.apache.kafka.common.security.scram.ScramLoginModule required \
username="{admin}" password="{password}";
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=\
org.apache.kafka.common.security.plain.PlainLoginModule required \
username="{admin}" password="{password}" user_{admin}="{password}";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:{admin}
allow.everyone.if.no.acl.found=false
"""
"""The listener lines of the SASL broker: SCRAM-SHA-256 for clients and between brokers,
PLAIN on the loopback controller listener (KRaft controllers cannot use SCRAM), StandardAuthorizer
with deny-by-default; only the admin is a super user."""


@dataclass(frozen=True)
class LocalKafkaConfig:
    """Where the local broker keeps its jars, data and PID, and which ports it listens on."""

    home: Path = Path(os.environ.get("NOVACRON_KAFKA_HOME", Path.home() / ".cache" / "novacron"))
    version: str = os.environ.get("NOVACRON_KAFKA_VERSION", DEFAULT_VERSION)
    host: str = "127.0.0.1"
    port: int = int(os.environ.get("NOVACRON_KAFKA_PORT", "9092"))
    heap: str = "768m"
    sasl: bool = False
    """SASL_PLAINTEXT/SCRAM-SHA-256 with ACLs instead of PLAINTEXT (use another port)."""

    @property
    def controller_port(self) -> int:
        return self.port + 1

    @property
    def libs(self) -> Path:
        return self.home / f"kafka-{self.version}" / "libs"

    @property
    def run_dir(self) -> Path:
        return self.home / f"kafka-run-{self.port}"


class KafkaLocal:
    """Fetches the jars with Maven, formats KRaft storage, starts and stops the broker by PID."""

    def __init__(self, config: LocalKafkaConfig | None = None) -> None:
        self.cfg = config or LocalKafkaConfig()
        self.pid_file = self.cfg.run_dir / "kafka.pid"
        self.log_file = self.cfg.run_dir / "server.log"

    @property
    def bootstrap(self) -> str:
        return f"{self.cfg.host}:{self.cfg.port}"

    def fetch(self) -> Path:
        """Download the broker jars from Maven Central into the cache (once)."""
        marker = self.cfg.libs / ".complete"
        if marker.exists():
            return self.cfg.libs
        self.cfg.libs.mkdir(parents=True, exist_ok=True)
        cmd = [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-Dkafka.version={self.cfg.version}",
            f"-DoutputDirectory={self.cfg.libs}",
            "-DincludeScope=runtime",
        ]
        subprocess.run(cmd, check=True)
        marker.touch()
        return self.cfg.libs

    def _java(self, main: str, *args: str, background: bool = False) -> subprocess.Popen[bytes]:
        cmd = [
            "java",
            f"-Xmx{self.cfg.heap}",
            f"-Xms{self.cfg.heap}",
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={self.cfg.run_dir / 'log4j2.properties'}",
            "-cp",
            f"{self.cfg.libs}/*",
            main,
            *args,
        ]
        out = open(self.cfg.run_dir / "stdout.log", "ab")  # noqa: SIM115 - owned by the child
        return subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=background
        )

    def _write_config(self) -> Path:
        run = self.cfg.run_dir
        run.mkdir(parents=True, exist_ok=True)
        (run / "log4j2.properties").write_text(LOG4J2.format(log=self.log_file))
        props = run / "server.properties"
        where = {"host": self.cfg.host, "port": self.cfg.port,
                 "controller_port": self.cfg.controller_port}
        text = SERVER_PROPERTIES.format(data=run / "data", **where)
        if self.cfg.sasl:
            ours = SASL_PROPERTIES.format(admin=ADMIN_USER, password=self.password(ADMIN_USER),
                                          **where)
            keys = {line.split("=", 1)[0] for line in ours.splitlines() if "=" in line}
            text = ours + "".join(line + "\n" for line in text.splitlines()
                                  if line.split("=", 1)[0] not in keys)
        props.touch(mode=0o600)  # it holds the admin password when SASL is on
        props.write_text(text)
        return props

    def users(self) -> list[str]:
        """The SCRAM users of the SASL broker: the admin and one per role (docs/threat-model.md)."""
        from streams.acls import PRINCIPAL_ROLES, kafka_user

        return [ADMIN_USER, *(kafka_user(role) for role in PRINCIPAL_ROLES)]

    def password(self, user: str) -> str:
        """A SASL user's password, generated once into the run folder's secrets (mode 0600)."""
        folder = self.cfg.run_dir / "secrets"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = folder / f"{user}.password"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(secrets.token_hex(16))
        return path.read_text().strip()

    def client_config(self, user: str = ADMIN_USER) -> KafkaConfig:
        """The KafkaConfig a client of this broker uses (as `user` when SASL is on)."""
        from streams.settings import KafkaConfig

        if not self.cfg.sasl:
            return KafkaConfig(bootstrap=self.bootstrap)
        return KafkaConfig(bootstrap=self.bootstrap, security_protocol="SASL_PLAINTEXT",
                           sasl_mechanism="SCRAM-SHA-256", username=user,
                           password_file=self.cfg.run_dir / "secrets" / f"{user}.password")

    def _format(self, props: Path, cluster_id: str | None = None) -> None:
        if (self.cfg.run_dir / "data" / "meta.properties").exists():
            return
        cluster_id = cluster_id or base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # "=" form: a urlsafe id may start with "-", which argparse would read as an option
        scram = [f"--add-scram=SCRAM-SHA-256=[name={user},password={self.password(user)}]"
                 for user in (self.users() if self.cfg.sasl else [])]
        proc = self._java(
            "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(props),
            *scram,
        )
        if proc.wait() != 0:
            raise RuntimeError(
                f"formatting KRaft storage failed; see {self.cfg.run_dir}/stdout.log"
            )

    def pid(self) -> int | None:
        """PID of the running broker, or None."""
        try:
            pid = int(self.pid_file.read_text())
            os.kill(pid, 0)
            return pid
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None

    def start(self, timeout: float = 90.0, fresh: bool = False) -> str:
        """Start the broker (no-op if running) and wait until it answers; return bootstrap."""
        if self.pid() is not None:
            return self.bootstrap
        self.fetch()
        if fresh:
            shutil.rmtree(self.cfg.run_dir / "data", ignore_errors=True)
        props = self._write_config()
        self._format(props)
        proc = self._java("kafka.Kafka", str(props), background=True)
        self.pid_file.write_text(str(proc.pid))
        self._wait_ready(proc, timeout)
        return self.bootstrap

    def _wait_ready(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"broker exited with {proc.returncode}; see {self.log_file}")
            if asyncio.run(_answers(self.client_config())):
                return
            time.sleep(0.5)
        raise TimeoutError(f"broker did not answer within {timeout:.0f}s; see {self.log_file}")

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker by its PID (SIGTERM, then SIGKILL); True if one was running."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> dict[str, object]:
        """Running state, PID, bootstrap address and whether it answers."""
        pid = self.pid()
        answers = pid is not None and asyncio.run(_answers(self.client_config()))
        return {
            "running": pid is not None,
            "pid": pid,
            "bootstrap": self.bootstrap,
            "sasl": self.cfg.sasl,
            "answers": answers,
            "version": self.cfg.version,
            "log": str(self.log_file),
        }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


async def _answers(kafka: KafkaConfig) -> bool:
    import logging

    from streams.kafka_clients import admin as admin_client

    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # "not ready yet" is expected here
    admin = admin_client(kafka, request_timeout_ms=3000)
    try:
        await admin.start()
        await admin.list_topics()
        return True
    except Exception:  # any failure means "not ready yet"
        return False
    finally:
        await admin.close()
        quiet.setLevel(level)


def main() -> None:
    """`python -m streams.kafka_local start|stop|status` (used by deploy/kafka/kafka.sh and CI)."""
    import sys

    sasl = "--sasl" in sys.argv  # the SCRAM broker on SASL_PORT (or NOVACRON_KAFKA_SASL_PORT)
    port = int(os.environ.get("NOVACRON_KAFKA_SASL_PORT", SASL_PORT)) if sasl else None
    kafka = KafkaLocal(LocalKafkaConfig(sasl=True, port=port) if port else None)
    command = sys.argv[1] if len(sys.argv) > 1 else "status"
    if command == "start":  # --fresh: drop the broker's data first (CI starts from empty topics)
        print(f"kafka {kafka.cfg.version} ready on {kafka.start(fresh='--fresh' in sys.argv)}")
    elif command == "stop":
        print("stopped" if kafka.stop() else "not running")
    elif command == "fetch":
        print(kafka.fetch())
    else:
        print(kafka.status())


if __name__ == "__main__":
    main()
