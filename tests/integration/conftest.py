"""Real-broker fixtures: the local Kafka 4.x broker, per-test topic prefixes, workers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from agents.access import hash_token
from streams.acls import acls, apply_acls, kafka_user
from streams.kafka_local import SASL_PORT, KafkaLocal, LocalKafkaConfig
from streams.settings import KafkaConfig
from streams.topics import create_topics

pytestmark = pytest.mark.kafka

VIEWER_TOKEN = "test-viewer-token"
"""Bearer token of a `viewer` (may read the history through /sql) in every test worker."""
ADMIN_TOKEN = "test-admin-token"
"""Bearer token of an `admin` in every test worker."""
GUEST_TOKEN = "test-guest-token"
"""A known token whose role (`guest`) the access policies allow nothing."""
API_TOKENS = json.dumps({
    hash_token(VIEWER_TOKEN): {"user": "vera", "role": "viewer"},
    hash_token(ADMIN_TOKEN): {"user": "ada", "role": "admin"},
    hash_token(GUEST_TOKEN): {"user": "gus", "role": "guest"},
})


SASL = os.environ.get("NOVACRON_TEST_KAFKA_SASL") == "1"
"""Run the real-broker tests on the local SCRAM broker: the test itself is the admin, every
worker connects as its role's user with only that role's ACLs (docs/threat-model.md)."""


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """The broker of NOVACRON_TEST_KAFKA, or the project's local broker (started if needed)."""
    given = os.environ.get("NOVACRON_TEST_KAFKA")
    if given:
        yield given
        return
    local = KafkaLocal(LocalKafkaConfig(port=SASL_PORT, sasl=True) if SASL else LocalKafkaConfig())
    started = local.pid() is None
    bootstrap = local.start()
    yield bootstrap
    if started:
        local.stop()


@pytest.fixture
def kafka_cfg(kafka_bootstrap: str) -> Iterator[KafkaConfig]:
    """A fresh topic prefix per test (its own topics and consumer groups), topics created;
    the test's topics are deleted afterwards so the broker does not accumulate them."""
    cfg = KafkaConfig(
        bootstrap=kafka_bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:10]}.", partitions=4
    )
    if SASL:  # the admin creates the topics and grants every role its own
        admin = KafkaLocal(LocalKafkaConfig(port=SASL_PORT, sasl=True)).client_config()
        cfg = admin.model_copy(update={"topic_prefix": cfg.topic_prefix, "partitions": 4})
        asyncio.run(create_topics(cfg))
        asyncio.run(apply_acls(cfg, acls(cfg)))
        yield cfg
        asyncio.run(_delete_topics(cfg))
        return
    asyncio.run(create_topics(cfg))
    yield cfg
    asyncio.run(_delete_topics(cfg))


async def _delete_topics(cfg: KafkaConfig) -> None:
    from streams.kafka_clients import admin as admin_client

    admin = admin_client(cfg)
    await admin.start()
    try:
        prefixes = (cfg.topic_prefix, cfg.topic_prefix.rstrip(".") + "-")  # ours and Faust's own
        mine = [t for t in await admin.list_topics() if t.startswith(prefixes)]
        if mine:
            await admin.delete_topics(mine)
    except Exception as exc:  # cleanup only: a failure here must not fail the test
        print(f"could not delete topics of {cfg.topic_prefix}: {exc}")
    finally:
        await admin.close()


def kafka_env(cfg: KafkaConfig, role: str = "operator") -> dict[str, str]:
    """NOVACRON_KAFKA__* of a process on the test's broker; with SASL, as the role's own user
    (the CLI: `operator`) with its password file, never the admin's."""
    env = {"NOVACRON_KAFKA__BOOTSTRAP": cfg.bootstrap,
           "NOVACRON_KAFKA__TOPIC_PREFIX": cfg.topic_prefix}
    if cfg.username:
        assert cfg.password_file is not None
        user = kafka_user(role)
        env.update({
            "NOVACRON_KAFKA__SECURITY_PROTOCOL": cfg.security_protocol,
            "NOVACRON_KAFKA__SASL_MECHANISM": cfg.sasl_mechanism,
            "NOVACRON_KAFKA__USERNAME": user,
            "NOVACRON_KAFKA__PASSWORD_FILE": str(cfg.password_file.parent / f"{user}.password"),
        })
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class WorkerProcess:
    """A `novacron worker --role ROLE` child process with its own data folder and web port."""

    role: str
    kafka: KafkaConfig
    workdir: Path
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "NOVACRON_KAFKA__BOOTSTRAP": self.kafka.bootstrap,
                "NOVACRON_KAFKA__TOPIC_PREFIX": self.kafka.topic_prefix,
                "NOVACRON_WEB__PORT": str(self.port),
                "NOVACRON_DATA_DIR": str(self.workdir / "var"),
                "NOVACRON_CLICKHOUSE__PATH": str(self.workdir / "var" / "chdb"),
                "NOVACRON_SINK__BATCH_SECONDS": "0.5",
                "NOVACRON_API__TOKENS": API_TOKENS,
            }
        )
        env.update(kafka_env(self.kafka, self.role))
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60) -> WorkerProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / f"{self.role}.log", "ab")  # noqa: SIM115 - child owns it
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streams.cli.main",
                "worker",
                "--role",
                self.role,
                "--web-port",
                str(self.port),
            ],
            env=self.env(),
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"worker not healthy: {self.log_tail()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, n: int = 40) -> str:
        path = self.workdir / f"{self.role}.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""
        )

    def sql_response(
        self, query: str, token: str | None = VIEWER_TOKEN, fmt: str | None = None
    ) -> httpx.Response:
        """GET /sql (with a bearer token unless None); waits while the endpoint is still loading
        its access policies (503)."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        params = {"query": query, **({"format": fmt} if fmt is not None else {})}
        deadline = time.monotonic() + 60
        while True:
            resp = httpx.get(f"{self.url}/sql", params=params, headers=headers, timeout=60)
            if resp.status_code != 503 or time.monotonic() > deadline:
                return resp
            time.sleep(0.3)

    def sql(self, query: str) -> list[dict[str, object]]:
        import orjson

        resp = self.sql_response(query)
        assert resp.status_code == 200, resp.text
        return [orjson.loads(line) for line in resp.content.splitlines() if line.strip()]

    def scalar(self, query: str) -> int:
        row = self.sql(query)[0]
        return int(next(iter(row.values())))  # type: ignore[call-overload]

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def worker_factory(kafka_cfg: KafkaConfig, tmp_path: Path) -> Iterator[object]:
    """Start worker processes for the test's topic prefix; all are stopped afterwards."""
    started: list[WorkerProcess] = []

    def start(role: str, **env: str) -> WorkerProcess:
        w = WorkerProcess(role, kafka_cfg, tmp_path / "work", extra_env=env).start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


def wait_until(predicate, timeout: float = 60, interval: float = 0.5, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Poll `predicate` until it returns a truthy value; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last value: {last!r})")
