"""Builds every Kafka client (producer, consumer, admin client, Faust app) from `KafkaConfig`.

Each one gets its broker address, security protocol and credentials here, and only here:
tests/unit/test_kafka_clients.py fails if another module constructs a client itself, so a
deployment that turns SASL/TLS on (docs/threat-model.md) cannot leave one connection plaintext.
A broker that refuses the credentials raises `BackendUnavailable` naming the user and mechanism
(never the password) instead of aiokafka's bare connection error.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.helpers import create_ssl_context

from schemas.errors import BackendUnavailable
from streams.settings import KafkaConfig

if TYPE_CHECKING:
    import faust

__all__ = ["KafkaUnavailable", "admin", "broker_credentials", "consumer", "describe", "faust_app",
           "producer", "security_kwargs", "ssl_context"]


class KafkaUnavailable(BackendUnavailable, KafkaConnectionError):
    """A client could not start: the broker is unreachable or refused the credentials.

    Both a BackendUnavailable (the project's retryable error) and aiokafka's connection error,
    so callers that already handle either keep working."""

    def __str__(self) -> str:
        return Exception.__str__(self)  # the reason alone, without aiokafka's class-name prefix


_AUTH_ERRORS = ("authentication", "sasl", "scram", "authorization")


def ssl_context(kafka: KafkaConfig) -> ssl.SSLContext | None:
    """The TLS context of SSL / SASL_SSL (CA, optional client certificate), else None."""
    if not kafka.security_protocol.endswith("SSL"):
        return None
    return create_ssl_context(
        cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None,
        certfile=str(kafka.ssl_certfile) if kafka.ssl_certfile else None,
        keyfile=str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None,
    )


def security_kwargs(kafka: KafkaConfig) -> dict[str, Any]:
    """The aiokafka keyword arguments of the address, protocol and credentials."""
    kw: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap,
        "security_protocol": kafka.security_protocol,
    }
    context = ssl_context(kafka)
    if context is not None:
        kw["ssl_context"] = context
    if kafka.security_protocol.startswith("SASL_"):
        assert kafka.password is not None  # KafkaConfig's validator requires it
        kw.update(sasl_mechanism=kafka.sasl_mechanism, sasl_plain_username=kafka.username,
                  sasl_plain_password=kafka.password.get_secret_value())
    return kw


def describe(kafka: KafkaConfig) -> str:
    """Who connects where, for error messages and logs (no secret)."""
    who = f" as {kafka.username} ({kafka.sasl_mechanism})" if kafka.username else ""
    return f"{kafka.bootstrap} over {kafka.security_protocol}{who}"


async def _start(client: Any, begin: Callable[[], Awaitable[None]],
                 end: Callable[[], Awaitable[None]]) -> None:
    """Start a client; a failure closes it and raises KafkaUnavailable with the reason."""
    try:
        await begin()
    except (KafkaError, OSError) as exc:
        await end()
        raise _refused(client._kafka, exc, await _probe(client._kafka)) from exc


async def _probe(kafka: KafkaConfig) -> str | None:
    """Why one connection to the first bootstrap server fails (None: it works). aiokafka's
    bootstrap error hides the cause, e.g. a refused SASL handshake, behind "Unable to bootstrap"."""
    host, _, port = kafka.bootstrap.split(",")[0].strip().rpartition(":")
    options = security_kwargs(kafka)
    del options["bootstrap_servers"]
    try:
        conn = await create_conn(host.strip("[]"), int(port), request_timeout_ms=5000, **options)
    except Exception as exc:  # any failure is the reason we report
        return str(exc) or type(exc).__name__
    conn.close()
    return None


def _refused(kafka: KafkaConfig, exc: BaseException, cause: str | None) -> KafkaUnavailable:
    if cause is not None and any(word in cause.lower() for word in _AUTH_ERRORS):
        return KafkaUnavailable(f"Kafka refused the credentials of {describe(kafka)}: {cause}")
    detail = cause or str(exc) or type(exc).__name__
    return KafkaUnavailable(f"cannot connect to Kafka at {describe(kafka)}: {detail}")


class _Producer(AIOKafkaProducer):
    """A producer whose failed start names the broker, protocol, user and reason."""

    _kafka: KafkaConfig

    async def start(self) -> None:
        await _start(self, super().start, self.stop)


class _Consumer(AIOKafkaConsumer):
    """A consumer whose failed start names the broker, protocol, user and reason."""

    _kafka: KafkaConfig

    async def start(self) -> None:
        await _start(self, super().start, self.stop)


class _Admin(AIOKafkaAdminClient):
    """An admin client whose failed start names the broker, protocol, user and reason."""

    _kafka: KafkaConfig

    async def start(self) -> None:
        await _start(self, super().start, self.close)


def producer(kafka: KafkaConfig, **options: Any) -> AIOKafkaProducer:
    """A producer on the configured broker (`options`: acks, linger_ms, transactional_id…)."""
    client = _Producer(**security_kwargs(kafka), **options)
    client._kafka = kafka
    return client


def consumer(kafka: KafkaConfig, *topics: str, **options: Any) -> AIOKafkaConsumer:
    """A consumer on the configured broker (`options`: group_id, isolation_level…)."""
    client = _Consumer(*topics, **security_kwargs(kafka), **options)
    client._kafka = kafka
    return client


def admin(kafka: KafkaConfig, **options: Any) -> AIOKafkaAdminClient:
    """An admin client on the configured broker."""
    client = _Admin(**security_kwargs(kafka), **options)
    client._kafka = kafka
    return client


def faust_app(kafka: KafkaConfig, app_id: str, **options: Any) -> faust.App:
    """A Faust app (one role's consumer group `app_id`) on the configured broker and security;
    its agents' consumer waits at most `kafka.fetch_max_wait_ms` per fetch."""
    from streams.faust_driver import App

    servers = kafka.bootstrap.split(",")
    return App(app_id, broker=f"kafka://{servers[0]}", broker_servers=servers,
               broker_credentials=broker_credentials(kafka),
               fetch_max_wait_ms=kafka.fetch_max_wait_ms, **options)


def broker_credentials(kafka: KafkaConfig) -> Any:
    """Faust's `broker_credentials` for the same protocol and user (None: PLAINTEXT)."""
    import faust

    context = ssl_context(kafka)
    if kafka.security_protocol.startswith("SASL_"):
        assert kafka.password is not None
        return faust.SASLCredentials(username=kafka.username,
                                     password=kafka.password.get_secret_value(),
                                     ssl_context=context, mechanism=kafka.sasl_mechanism)
    if context is not None:
        return faust.SSLCredentials(context)
    return None
