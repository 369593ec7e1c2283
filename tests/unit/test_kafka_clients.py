"""Kafka security settings and the client factory: validation, redaction, the keyword arguments
every client gets, and a scan that no module builds a Kafka client outside the factory."""

from __future__ import annotations

import ast
import asyncio
import datetime as dt
import ssl
from pathlib import Path

import faust
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr, ValidationError

from streams import kafka_clients
from streams.settings import KafkaConfig, Settings

ROOT = Path(__file__).resolve().parents[2]
FACTORY = ROOT / "streams" / "kafka_clients.py"
CLIENTS = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient", "AIOKafkaClient",
           "KafkaClient", "App", "SASLCredentials", "SSLCredentials", "create_conn",
           "AIOKafkaConnection"}
KEYWORDS = {"bootstrap_servers", "broker_credentials", "sasl_plain_password"}


def _violations(source: str, name: str) -> list[str]:
    """Calls that build a Kafka client or pass broker credentials (outside the factory)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called in CLIENTS:
            found.append(f"{name}:{node.lineno}: {called}(...)")
        found += [f"{name}:{node.lineno}: {k.arg}=" for k in node.keywords if k.arg in KEYWORDS]
    return found


def _sources() -> list[Path]:
    skip = {ROOT / "tests", ROOT / ".git"}
    return [p for p in ROOT.rglob("*.py")
            if p != FACTORY and not any(s in p.parents for s in skip) and ".venv" not in p.parts]


def test_no_kafka_client_is_built_outside_the_factory() -> None:
    files = _sources()
    assert len(files) > 100 and ROOT / "streams" / "ingest.py" in files
    found = [v for p in files for v in _violations(p.read_text(), str(p.relative_to(ROOT)))]
    assert found == [], "build Kafka clients with streams.kafka_clients:\n" + "\n".join(found)


def test_the_scan_sees_each_way_of_building_a_client() -> None:
    planted = """
from aiokafka import AIOKafkaProducer
import aiokafka, faust
a = AIOKafkaProducer(bootstrap_servers="x")
b = aiokafka.AIOKafkaConsumer("t")
c = faust.App("id", broker="kafka://x")
d = something(broker_credentials=None)
"""
    assert len(_violations(planted, "m")) == 5


# ------------------------------------------------------------------ KafkaConfig


def _secret(tmp_path: Path, text: str = "s3cret-pass\n") -> Path:
    path = tmp_path / "kafka.password"
    path.write_text(text)
    return path


def test_sasl_needs_a_user_and_a_password() -> None:
    with pytest.raises(ValidationError, match="needs a username and a password"):
        KafkaConfig(security_protocol="SASL_SSL")
    with pytest.raises(ValidationError, match="needs a username"):
        KafkaConfig(security_protocol="SASL_PLAINTEXT", username="novacron-ingest")


def test_settings_that_would_be_ignored_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="would not be used"):
        KafkaConfig(username="u", password=SecretStr("p"))  # PLAINTEXT: no SASL
    with pytest.raises(ValidationError, match="TLS would not be used"):
        KafkaConfig(ssl_cafile=_secret(tmp_path))
    with pytest.raises(ValidationError, match="clear text"):
        KafkaConfig(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", username="u",
                    password=SecretStr("p"))
    with pytest.raises(ValidationError, match="go together"):
        KafkaConfig(security_protocol="SSL", ssl_certfile=_secret(tmp_path))
    with pytest.raises(ValidationError, match="not found"):
        KafkaConfig(security_protocol="SSL", ssl_cafile=tmp_path / "missing.pem")
    with pytest.raises(ValidationError, match="not both"):
        KafkaConfig(security_protocol="SASL_SSL", username="u", password=SecretStr("p"),
                    password_file=_secret(tmp_path))
    with pytest.raises(ValidationError, match="not a valid|Input should be"):
        KafkaConfig(security_protocol="SASL_PLAIN")  # type: ignore[arg-type]


def test_password_file_is_read_once_and_never_shown(tmp_path: Path) -> None:
    path = _secret(tmp_path)
    cfg = KafkaConfig(security_protocol="SASL_SSL", username="novacron-ingest",
                      password_file=path)
    path.write_text("changed")  # read at construction: copies keep the value they were built with
    assert cfg.password is not None and cfg.password.get_secret_value() == "s3cret-pass"
    assert "s3cret" not in repr(cfg) and "s3cret" not in str(cfg.model_dump())
    assert "s3cret" not in kafka_clients.describe(cfg)
    with pytest.raises(ValidationError, match="is empty"):
        KafkaConfig(security_protocol="SASL_SSL", username="u",
                    password_file=_secret(tmp_path, "\n"))
    with pytest.raises(ValidationError, match="cannot read") as missing:
        KafkaConfig(security_protocol="SASL_SSL", username="u", password_file=tmp_path / "nope")
    assert "s3cret" not in str(missing.value)


def test_env_names_reach_the_kafka_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOVACRON_KAFKA__SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("NOVACRON_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("NOVACRON_KAFKA__USERNAME", "novacron-learn")
    monkeypatch.setenv("NOVACRON_KAFKA__PASSWORD_FILE", str(_secret(tmp_path)))
    kafka = Settings().kafka
    assert (kafka.security_protocol, kafka.sasl_mechanism, kafka.username) == (
        "SASL_PLAINTEXT", "SCRAM-SHA-512", "novacron-learn")
    assert kafka.password is not None and kafka.password.get_secret_value() == "s3cret-pass"


def test_every_security_field_has_a_docstring() -> None:
    source = (ROOT / "streams" / "settings.py").read_text()
    cls = next(n for n in ast.walk(ast.parse(source))
               if isinstance(n, ast.ClassDef) and n.name == "KafkaConfig")
    body = cls.body
    fields = [(n.target.id, body[i + 1]) for i, n in enumerate(body)
              if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]
    assert {name for name, _ in fields} == set(KafkaConfig.model_fields)
    for name, after in fields:
        documented = isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
        assert documented, f"KafkaConfig.{name} has no docstring"


# ------------------------------------------------------------------ the factory


def test_plaintext_clients_get_no_credentials() -> None:
    kw = kafka_clients.security_kwargs(KafkaConfig(bootstrap="k:9092"))
    assert kw == {"bootstrap_servers": "k:9092", "security_protocol": "PLAINTEXT"}
    assert kafka_clients.broker_credentials(KafkaConfig()) is None


def test_sasl_clients_get_the_mechanism_user_and_password() -> None:
    cfg = KafkaConfig(bootstrap="k:9093", security_protocol="SASL_PLAINTEXT", username="u",
                      password=SecretStr("p"), sasl_mechanism="SCRAM-SHA-512")
    kw = kafka_clients.security_kwargs(cfg)
    assert kw == {"bootstrap_servers": "k:9093", "security_protocol": "SASL_PLAINTEXT",
                  "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "u",
                  "sasl_plain_password": "p"}
    creds = kafka_clients.broker_credentials(cfg)
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.username, creds.password, creds.mechanism.value) == ("u", "p", "SCRAM-SHA-512")
    assert creds.protocol.value == "SASL_PLAINTEXT" and "p" not in repr(creds).split("=")[-1]


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "novacron-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    certfile, keyfile = tmp_path / "client.pem", tmp_path / "client.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return certfile, keyfile


def test_tls_clients_verify_the_broker_and_may_present_a_certificate(tmp_path: Path) -> None:
    certfile, keyfile = _self_signed(tmp_path)
    cfg = KafkaConfig(security_protocol="SASL_SSL", username="u", password=SecretStr("p"),
                      ssl_cafile=certfile, ssl_certfile=certfile, ssl_keyfile=keyfile)
    kw = kafka_clients.security_kwargs(cfg)
    context = kw["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    creds = kafka_clients.broker_credentials(cfg)
    assert creds.protocol.value == "SASL_SSL" and creds.ssl_context is not None
    mtls = kafka_clients.broker_credentials(
        KafkaConfig(security_protocol="SSL", ssl_cafile=certfile))
    assert isinstance(mtls, faust.SSLCredentials)


def test_factory_clients_carry_the_config() -> None:
    cfg = KafkaConfig(bootstrap="k:1", security_protocol="SASL_PLAINTEXT", username="u",
                      password=SecretStr("p"))

    async def build() -> tuple[str, str]:
        producer = kafka_clients.producer(cfg, acks="all")
        return producer.client._sasl_plain_username, producer.client._security_protocol

    assert asyncio.run(build()) == ("u", "SASL_PLAINTEXT")
    app = kafka_clients.faust_app(cfg, "novacron-test", autodiscover=False, web_enabled=False)
    assert app.conf.broker_credentials is not None
    assert [str(u) for u in app.conf.broker] == ["kafka://k:1"]


def test_faust_agents_fetch_with_the_configured_wait() -> None:
    # faust-streaming hard-codes fetch_max_wait_ms=1500 in its aiokafka driver: a stall of up to
    # 1.5 s per hop for the gate and the executor, unless the setting reaches their consumer
    async def build(cfg: KafkaConfig) -> int:
        app = kafka_clients.faust_app(cfg, "novacron-test", autodiscover=False,
                                      web_enabled=False)
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            return int(consumer._fetch_max_wait_ms)
        finally:
            await consumer.stop()

    assert asyncio.run(build(KafkaConfig())) == 100
    assert asyncio.run(build(KafkaConfig(fetch_max_wait_ms=30))) == 30
    assert Settings(kafka={"fetch_max_wait_ms": 1500}).kafka.fetch_max_wait_ms == 1500
