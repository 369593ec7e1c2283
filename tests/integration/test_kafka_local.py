"""The local broker's storage formatting with the real Kafka StorageTool."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest

from streams.kafka_local import KafkaLocal, LocalKafkaConfig

pytestmark = pytest.mark.kafka


def _dash_led_cluster_id() -> str:
    """A valid cluster id (url-safe base64 of a UUID) whose first character is "-"."""
    raw = bytearray(uuid.UUID(int=0x1234_5678_9ABC_DEF0_1234_5678_9ABC_DEF0).bytes)
    raw[0] = 0xF8  # top six bits 111110 -> "-" in the url-safe alphabet
    return base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


def test_cluster_id_starting_with_dash_formats(tmp_path: Path) -> None:
    # One random id in 64 starts with "-"; passed as a separate argument it read as an option
    # and CI failed at startup.
    real = LocalKafkaConfig()
    KafkaLocal(real).fetch()
    (tmp_path / f"kafka-{real.version}").symlink_to(real.libs.parent)
    kafka = KafkaLocal(LocalKafkaConfig(home=tmp_path, port=real.port + 100))
    cluster_id = _dash_led_cluster_id()
    assert cluster_id.startswith("-")

    kafka._format(kafka._write_config(), cluster_id)

    meta = (kafka.cfg.run_dir / "data" / "meta.properties").read_text()
    assert f"cluster.id={cluster_id}" in meta
