"""Typed configuration from `NOVACRON_*` environment variables or a config file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from agents.collectors.config import CollectorConfig
from agents.compliance import ComplianceConfig
from agents.control_api import ApiConfig
from agents.decision import DecisionConfig
from agents.drift.config import DriftConfig
from agents.executor import ExecutorConfig
from agents.gate import GateConfig
from agents.gitops.config import DeployWatchConfig, GitopsConfig
from agents.optimizer import OptimizerConfig
from agents.promotion import ShadowConfig
from models.slo import SLOConfig
from policies.engine import EngineConfig as PolicyEngineConfig
from policies.registry import RegistryConfig
from schemas.codec import Codec
from schemas.edge import EdgeRules
from sinks.config import AuditConfig, ClickHouseConfig, SinkConfig, SqlLimits
from streams.roles import ROLES

__all__ = ["CheckpointPolicy", "ExecutorKafkaConfig", "HostConfig", "KafkaConfig",
           "OnlineTrainingConfig", "Settings", "WebConfig"]


class KafkaConfig(BaseModel):
    """Where the broker is and how topics are named."""

    bootstrap: str = "localhost:9092"
    """Kafka bootstrap servers, comma-separated host:port."""
    topic_prefix: str = "novacron."
    """Prefix of every topic name (so several deployments can share a cluster)."""
    partitions: int = Field(default=4, ge=1)
    """Partitions of each topic created by `novacron topics create`."""
    replication_factor: int = Field(default=1, ge=1)
    """Replication factor of created topics (1 for the local single-node broker)."""
    security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = "PLAINTEXT"
    """How every client talks to the broker (`NOVACRON_KAFKA__SECURITY_PROTOCOL`): PLAINTEXT only
    for a local broker; deployments use SASL_SSL (or SASL_PLAINTEXT inside a private network)."""
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-256"
    """SASL mechanism of the SASL_* protocols; PLAIN is refused without TLS (clear password)."""
    username: str | None = None
    """SASL user, i.e. the ACL principal `User:<username>` (one per role: docs/threat-model.md)."""
    password: SecretStr | None = None
    """SASL password (`NOVACRON_KAFKA__PASSWORD`); prefer `password_file`. Never logged."""
    password_file: Path | None = None
    """File holding the SASL password (a mounted secret), read once when the config is built."""
    ssl_cafile: Path | None = None
    """CA bundle that signs the broker's certificate (SSL, SASL_SSL; default: the system's)."""
    ssl_certfile: Path | None = None
    """Client certificate (PEM) for mutual TLS; needs `ssl_keyfile`."""
    ssl_keyfile: Path | None = None
    """Private key (PEM) of `ssl_certfile`."""
    fetch_max_wait_ms: int = Field(default=100, ge=0, le=60_000)
    """Longest the broker holds a consumer's fetch while it has no new records, for the roles'
    consumers and their Faust agents (the gate, the executor; faust-streaming's own value is
    1500). A partition left out of an in-flight fetch (its records were still buffered) waits
    up to this long for its next records, so it bounds a stall per hop; lower costs idle
    fetch requests (about 1000 / this value per second per consumer)."""
    linger_ms: int = Field(default=0, ge=0, le=10_000)
    """How long the workers' producer waits to fill a batch before sending (`linger.ms`). A
    host sends a whole input batch's outputs before awaiting them, so they share requests
    anyway; a linger is added to every hop (a host waits for its acknowledgements before the
    next batch): 5 ms gave 40 % higher median telemetry → action latency at 1,000 samples/s
    and no less broker CPU (bench/README.md, `e2e_latency` 7 Dec, fourth session)."""

    @model_validator(mode="after")
    def _security_is_consistent(self) -> KafkaConfig:
        # fail closed: a setting that would be silently ignored is an error, not a downgrade
        sasl = self.security_protocol.startswith("SASL_")
        tls = self.security_protocol.endswith("SSL")
        if self.password_file is not None:  # read once, here: a rotated file needs a restart
            secret = _read_secret(self.password_file)
            if self.password is not None and self.password.get_secret_value() != secret:
                raise ValueError("kafka: set password or password_file, not both")
            self.password = SecretStr(secret)
        if sasl and not (self.username and self.password is not None):
            raise ValueError(f"kafka: security_protocol {self.security_protocol} needs a username "
                             "and a password (or password_file)")
        if not sasl and (self.username or self.password is not None):
            raise ValueError(f"kafka: a username/password is set but security_protocol is "
                             f"{self.security_protocol}: it would not be used (use SASL_SSL)")
        if sasl and not tls and self.sasl_mechanism == "PLAIN":
            raise ValueError("kafka: SASL PLAIN over SASL_PLAINTEXT sends the password in clear "
                             "text; use SCRAM-SHA-256/512 or SASL_SSL")
        files = [self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile]
        if not tls and any(f is not None for f in files):
            raise ValueError(f"kafka: ssl_* files are set but security_protocol is "
                             f"{self.security_protocol}: TLS would not be used (use SSL/SASL_SSL)")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("kafka: ssl_certfile and ssl_keyfile go together (mutual TLS)")
        missing = [str(f) for f in files if f is not None and not f.is_file()]
        if missing:
            raise ValueError(f"kafka: ssl files not found: {', '.join(missing)}")
        return self

    def topic(self, logical: str) -> str:
        """Full topic name of a logical topic (`metrics` → `novacron.metrics`)."""
        return f"{self.topic_prefix}{logical}"


def _read_secret(path: Path) -> str:
    """The content of a secret file without its trailing newline (never echoed in errors)."""
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"kafka: cannot read password_file {path}: {exc.strerror}") from None
    if not value:
        raise ValueError(f"kafka: password_file {path} is empty")
    return value


class WebConfig(BaseModel):
    """The worker's web port: /metrics, /health, read-only SQL and the control API."""

    host: str = "127.0.0.1"
    """Interface to bind."""
    port: int = Field(default=6066, ge=1, le=65535)
    """Port of the first role; other roles use port + their index unless set per process."""


class CheckpointPolicy(BaseModel):
    """When the host saves an agent's per-key state to the role's compacted state topic.

    A key is saved after `every_events` inputs touched it, once `max_age_seconds` passed since
    its last save with something unsaved, and (`on_output`) before the offsets of an input that
    made it emit an event are committed; always on partition revoke and on shutdown. Unset
    fields take the agent's own default from the wiring table.
    """

    every_events: int | None = Field(default=None, ge=1)
    """Save a key after this many inputs touched it (1: before every offset commit)."""
    max_age_seconds: float | None = Field(default=None, gt=0)
    """Save a key with unsaved inputs at least this often."""
    on_output: bool | None = None
    """Also save a key, before its input is committed, whenever handling that input emitted an
    event: what the outside world has seen (a decision and the cooldown it started) is never
    lost, while inputs that only update a window are saved by count and age."""
    max_per_batch: int | None = Field(default=None, ge=1)
    """At most this many keys saved by count or age per batch, the longest unsaved first; the
    rest follow in the next batches. Keys that reach the count together (every resource of a
    round-robin stream does) would otherwise all be saved in one batch: 100 optimizer snapshots
    are ~0.3 s of one batch's latency. Saves for outputs, revocations and shutdown are never
    deferred. None: no limit."""


class HostConfig(BaseModel):
    """The generic agent host of every role (`streams/host.py`)."""

    batch_size: int = Field(default=500, ge=1)
    """Most records handled (and their outputs emitted) per batch."""
    batch_wait_ms: int = Field(default=200, ge=0)
    """How long a fetch waits for records before handling a smaller batch."""
    inline_records: int = Field(default=100, ge=0)
    """Batches of at most this many records are handled on the event loop itself, larger ones in
    a worker thread so the loop keeps answering heartbeats, metrics and the control API while
    they run (0: every batch in a thread). Inline, a small batch skips the thread hand-off and
    the GIL contention between the two threads; a batch of 100 learn records is ~20–50 ms."""
    tick_seconds: float = Field(default=1.0, gt=0)
    """Period of agent ticks, age checkpoints and followed-topic polls (a rollback of the
    deployed model reaches a running worker within about this time)."""
    gauges_seconds: float = Field(default=15.0, gt=0)
    """Period of the gauges that walk every key in memory (e.g. forecast MAE per resource)."""
    checkpoints: dict[str, CheckpointPolicy] = Field(default_factory=dict)
    """Per-agent overrides of the checkpoint policy, by agent name (optimizer, decision, drift,
    compliance): `NOVACRON_HOST__CHECKPOINTS__OPTIMIZER__EVERY_EVENTS=1000`."""
    session_timeout_ms: int = Field(default=10_000, ge=1000)
    """How soon the group notices a dead worker and hands its partitions to another."""
    stop_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    """Longest a worker may take to stop after SIGTERM/SIGINT (drain, final checkpoints, closing
    ClickHouse). Past it the stacks of its threads go to the log and it exits with status 70;
    input whose offsets were not yet committed is read again on the next start."""


class ExecutorKafkaConfig(BaseModel):
    """How the execute role consumes `actions` (`NOVACRON_EXECUTOR_KAFKA__*`)."""

    concurrency: int = Field(default=8, ge=1)
    """Actions running at once in one worker (one action id never twice)."""
    retry_initial_seconds: float = Field(default=0.5, gt=0)
    """First wait before retrying an action after a Kafka (journal or outcome) error."""
    retry_max_seconds: float = Field(default=30.0, gt=0)
    """Longest wait between those retries."""
    approvals_cache: int = Field(default=100_000, ge=1)
    """Answered approval request ids remembered (an answer may arrive before its waiter)."""


class OnlineTrainingConfig(BaseModel):
    """Background DQN training from live outcomes in the learn role (streams/online.py)."""

    online_training: bool = False
    """Fine-tune the deployed model in the background from live outcomes; candidates run only
    after a shadow evaluation promotes them (versioned checkpoints, `model rollback`)."""
    publish_every: int = Field(default=2_000, ge=1)
    """Gradient steps between candidates: each is shadow-evaluated against the running model
    and promoted (a new checkpoint version) only if it meets the SLO budget at no higher cost."""
    shadow: ShadowConfig = Field(default_factory=ShadowConfig)
    """The shadow evaluation of candidates: the recent-demand window and the simulated world."""


class Settings(BaseSettings):
    """All configuration. Env: `NOVACRON_KAFKA__BOOTSTRAP=...`, or a file in `NOVACRON_CONFIG`."""

    model_config = SettingsConfigDict(
        env_prefix="NOVACRON_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Path("var")
    """Local state: chDB data, model checkpoints, logs, PID files."""
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    """Kafka connection and topic naming."""
    web: WebConfig = Field(default_factory=WebConfig)
    """Web port of the worker."""
    clickhouse: ClickHouseConfig = Field(default_factory=ClickHouseConfig)
    """History backend: embedded chDB (default, under data_dir) or a ClickHouse server."""
    sink: SinkConfig = Field(default_factory=SinkConfig)
    """Batching of the history sink."""
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    """Online learning: forecasts, anomaly detection, recommendations (learn role)."""
    decision: DecisionConfig = Field(default_factory=DecisionConfig)
    """The DQN decision engine: safety limits, confidence gate, shadow mode (learn role)."""
    slo: SLOConfig = Field(default_factory=SLOConfig)
    """The service-level objective autoscaling is judged by (`NOVACRON_SLO__LATENCY_MS`, …)."""
    decision_host: OnlineTrainingConfig = Field(default_factory=OnlineTrainingConfig)
    """Online training of the DQN in the learn role (`NOVACRON_DECISION_HOST__*`, as before)."""
    host: HostConfig = Field(default_factory=HostConfig)
    """The generic agent host: batches, ticks, checkpoint policies (`NOVACRON_HOST__*`)."""
    gate: GateConfig = Field(default_factory=GateConfig)
    """The policy gate: approvals and their expiry (govern role)."""
    policies: RegistryConfig = Field(default_factory=RegistryConfig)
    """Policy registry trust: ed25519 keys whose signatures are accepted, signatures required."""
    policy_engine: PolicyEngineConfig = Field(default_factory=PolicyEngineConfig)
    """Rego evaluation: result cache size and engine behaviour (govern role)."""
    policy_dir: Path | None = None
    """Extra folder of .rego policies loaded at start besides the shipped `policies/rego`."""
    drift: DriftConfig = Field(default_factory=DriftConfig)
    """Configuration drift: severity, ignores, list modes, auto-remediation (govern role)."""
    compliance: ComplianceConfig = Field(default_factory=ComplianceConfig)
    """Compliance: standards to check, auto-remediation severities (govern role)."""
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    """Runbook execution: runbook mapping, library, defaults, secrets (execute role)."""
    executor_kafka: ExecutorKafkaConfig = Field(default_factory=ExecutorKafkaConfig)
    """How the execute role consumes actions: concurrency, Kafka retries, approvals cache."""
    nice: dict[str, Annotated[int, Field(ge=0, le=19)]] = Field(
        default_factory=lambda: {"execute": 10})
    """CPU priority of a role's worker and of every program it starts, as `nice -n` gives it
    (0–19, larger is lower; a role not named runs at 0), e.g. `NOVACRON_NICE='{"execute": 0}'`.
    The execute role's effectors (git, terraform) are throughput work beside the latency of the
    decision path: where roles share a CPU scheduler they take what the other roles leave. It
    orders processes in one CPU cgroup only (one container, or one host without CPU cgroups)."""
    gitops: GitopsConfig = Field(default_factory=GitopsConfig)
    """The GitOps reconciler: repository, branch, folder, polling, webhook secret (govern role)."""
    deploy_watch: DeployWatchConfig = Field(default_factory=DeployWatchConfig)
    """Rollback proposals when an anomaly or SLO breach follows a deploy (learn role)."""
    terraform_bin: Path = Path.home() / ".cache" / "novacron" / "bin" / "terraform"
    """The Terraform CLI `collect terraform` and `terraform install-provider` use (1.5.7, MPL)."""
    api: ApiConfig = Field(default_factory=ApiConfig)
    """Hashed bearer tokens and their subjects: the control API (govern) and /sql (ingest)."""
    sql_limits: SqlLimits = Field(default_factory=SqlLimits)
    """Limits of every read query: /sql on the ingest worker and the CLI's history readers."""
    sql_url: str | None = None
    """Web address of the ingest worker whose /sql the CLI reads through when the chDB folder is
    held by it (env NOVACRON_SQL_URL, e.g. `http://127.0.0.1:6066`; default: web.host and the
    ingest role's port). The base address only: `/sql` is appended."""
    sql_token: SecretStr | None = None
    """Bearer token the CLI sends to /sql (env NOVACRON_SQL_TOKEN); it must be one of api.tokens."""
    sql_token_file: Path | None = None
    """File holding that token (env NOVACRON_SQL_TOKEN_FILE); default `<data_dir>/secrets/sql.token`
    when it exists (`novacron demo` writes one)."""
    audit: AuditConfig = Field(default_factory=AuditConfig)
    """Audit-chain anchoring: the signing key of chain heads and the keys verify trusts."""
    collect: CollectorConfig = Field(default_factory=CollectorConfig)
    """Prometheus remote-write and Alertmanager webhook receivers (collect role)."""
    max_message_bytes: int = Field(default=1_048_576, ge=1024)
    """Largest accepted message value; larger ones are dead-lettered."""
    edge: EdgeRules = Field(default_factory=EdgeRules)
    """What every decoded record must respect (JSON limits, event-time window); every worker
    applies the same rules, so a record is refused (dead-lettered) everywhere or nowhere."""
    config_file: Path | None = None
    """Optional YAML/JSON config file (also via NOVACRON_CONFIG)."""

    def ingest_url(self) -> str:
        """Base web address of the ingest worker (`sql_url`, or derived from `web`)."""
        if self.sql_url:
            return self.sql_url.rstrip("/")
        wildcard = self.web.host in ("0.0.0.0", "::", "")  # noqa: S104 - a bind-all address
        host = "127.0.0.1" if wildcard else self.web.host
        return f"http://{host}:{self.web.port}"

    def client_sql_token(self) -> str | None:
        """The /sql token for CLI readers: sql_token, else the token file's content."""
        if self.sql_token is not None:
            return self.sql_token.get_secret_value().strip() or None
        path = self.sql_token_file or self.data_dir / "secrets" / "sql.token"
        if path.is_file():
            return path.read_text(encoding="utf-8").strip() or None
        return None

    @field_validator("nice")
    @classmethod
    def _nice_names_roles(cls, value: dict[str, int]) -> dict[str, int]:
        if unknown := sorted(set(value) - set(ROLES)):
            raise ValueError(f"nice names no role {unknown}; the roles: {', '.join(ROLES)}")
        return value

    @model_validator(mode="after")
    def _edge_age_follows_retention(self) -> Settings:
        # An event older than the history's TTL is dropped by ClickHouse on insert: the edge
        # must refuse it (dead letter) rather than accept it and lose it.
        ttl = self.clickhouse.ttl_days
        age = self.edge.max_age_days
        if age is None:
            self.edge = self.edge.model_copy(update={"max_age_days": float(ttl)})
        elif age > ttl:
            raise ValueError(
                f"edge.max_age_days ({age:g}) is above clickhouse.ttl_days ({ttl}): events that "
                "old would be accepted and then dropped by the history's TTL"
            )
        return self

    def codec(self) -> Codec:
        """The wire codec with this deployment's size limit and edge rules (one per process)."""
        return Codec(self.max_message_bytes, rules=self.edge)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls), file_secret_settings)


class _FileSource(PydanticBaseSettingsSource):
    """Reads the YAML/JSON file named by NOVACRON_CONFIG (lowest priority after env)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        import os

        import yaml

        path = os.environ.get("NOVACRON_CONFIG")
        if not path:
            return {}
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: the config file must hold a mapping")
        return data
