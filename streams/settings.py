"""Typed configuration from `NOVACRON_*` environment variables or a config file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from agents.compliance import ComplianceConfig
from agents.control_api import ApiConfig
from agents.decision import DecisionConfig
from agents.drift.config import DriftConfig
from agents.executor import ExecutorConfig
from agents.gate import GateConfig
from agents.optimizer import OptimizerConfig
from policies.engine import EngineConfig as PolicyEngineConfig
from policies.registry import RegistryConfig
from schemas.codec import Codec
from schemas.edge import EdgeRules
from sinks.config import ClickHouseConfig, SinkConfig

__all__ = ["KafkaConfig", "Settings", "WebConfig"]


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

    def topic(self, logical: str) -> str:
        """Full topic name of a logical topic (`metrics` → `novacron.metrics`)."""
        return f"{self.topic_prefix}{logical}"


class WebConfig(BaseModel):
    """The worker's web port: /metrics, /health, read-only SQL and the control API."""

    host: str = "127.0.0.1"
    """Interface to bind."""
    port: int = Field(default=6066, ge=1, le=65535)
    """Port of the first role; other roles use port + their index unless set per process."""


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
    """Runbook execution: concurrency, allow-list, secrets (execute role)."""
    api: ApiConfig = Field(default_factory=ApiConfig)
    """The HTTP control API: hashed bearer tokens and their subjects (govern role)."""
    max_message_bytes: int = Field(default=1_048_576, ge=1024)
    """Largest accepted message value; larger ones are dead-lettered."""
    edge: EdgeRules = Field(default_factory=EdgeRules)
    """What every decoded record must respect (JSON limits, event-time window); every worker
    applies the same rules, so a record is refused (dead-lettered) everywhere or nowhere."""
    config_file: Path | None = None
    """Optional YAML/JSON config file (also via NOVACRON_CONFIG)."""

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
