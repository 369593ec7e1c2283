"""Issue 20: after a (short) demo nothing runs, and `novacron sql`, `audit report`, `audit chain`
and `audit verify` read its folder directly; with the ingest worker running on that folder (so it
is locked) the same commands go through its /sql with the token and give the same answers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from agents.access import hash_token
from sinks.backend import folder_locked
from tests.integration.conftest import API_TOKENS, VIEWER_TOKEN, WorkerProcess

pytestmark = pytest.mark.kafka


def _free_base_port(span: int = 4) -> int:
    """A port p with p..p+span-1 free (the demo's roles listen on web.port + their index)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base + span < 65535 and all(_free(base + i) for i in range(span)):
            return base
    raise RuntimeError("no free port range")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _env(kafka_cfg, workdir: Path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOVACRON_")}
    return {
        **env,
        "NOVACRON_KAFKA__BOOTSTRAP": kafka_cfg.bootstrap,
        "NOVACRON_KAFKA__TOPIC_PREFIX": kafka_cfg.topic_prefix,
        "NOVACRON_DATA_DIR": str(workdir / "var"),
        "NOVACRON_CLICKHOUSE__PATH": str(workdir / "var" / "chdb"),
        "NOVACRON_SINK__BATCH_SECONDS": "0.5",
        "COLUMNS": "250",
    }


def _run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.cli.main", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def _answers(env: dict[str, str], cwd: Path, cid: str) -> dict[str, object]:
    """What the four read commands answer (each must succeed)."""
    out: dict[str, object] = {}
    for name, args in {
        "sql": ("sql", "SELECT count() AS n, uniqExact(resource_id) AS r FROM metric_samples",
                "--format", "json"),
        "report": ("audit", "report", "--format", "json"),
        "chain": ("sql", "SELECT event_type FROM (SELECT 'MetricSample' AS event_type, "
                  f"event_id FROM metric_samples WHERE correlation_id = '{cid}') ORDER BY 1",
                  "--format", "json"),
        "chain_cmd": ("audit", "chain", cid),
        "verify": ("audit", "verify"),
    }.items():
        result = _run(env, cwd, *args)
        assert result.returncode == 0, f"{name}: {result.stdout}\n{result.stderr}"
        out[name] = json.loads(result.stdout) if "--format" in args else result.stdout
    return out


def test_the_demo_history_reads_the_same_with_and_without_a_worker(kafka_cfg, tmp_path):
    workdir = tmp_path / "demo"
    workdir.mkdir()
    env = {**_env(kafka_cfg, workdir), "NOVACRON_WEB__PORT": str(_free_base_port())}
    demo = _run(env, workdir, "demo", "--ticks", "20", "--tick-seconds", "0.05",
                "--services", "2", "--roles", "ingest,govern")
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    tail = " ".join(demo.stdout.split()[-40:])
    assert "The workers have stopped; the CLI reads the history in" in tail
    chdb = workdir / "var" / "chdb"
    assert not folder_locked(chdb)

    first = _run(env, workdir, "sql", "SELECT correlation_id FROM metric_samples LIMIT 1",
                 "--format", "json")
    assert first.returncode == 0, first.stderr
    cid = json.loads(first.stdout)[0]["correlation_id"]
    direct = _answers(env, workdir, cid)
    assert direct["sql"][0]["n"] > 0  # type: ignore[index]

    # the worker accepts the test tokens and the viewer token the demo left in var/secrets
    demo_token = (workdir / "var" / "secrets" / "sql.token").read_text().strip()
    tokens = {**json.loads(API_TOKENS), hash_token(demo_token): {"user": "d", "role": "viewer"}}
    worker = WorkerProcess("ingest", kafka_cfg, workdir, extra_env={
        "NOVACRON_CLICKHOUSE__PATH": str(chdb), "NOVACRON_API__TOKENS": json.dumps(tokens),
    }).start()
    try:
        assert folder_locked(chdb)
        via_sql = _answers(
            {**env, "NOVACRON_SQL_URL": worker.url, "NOVACRON_SQL_TOKEN": VIEWER_TOKEN},
            workdir, cid,
        )
        from_file = _run({**env, "NOVACRON_SQL_URL": worker.url}, workdir,
                         "sql", "SELECT count() AS n FROM metric_samples", "--format", "json")
    finally:
        worker.stop()
    assert via_sql == direct
    assert from_file.returncode == 0, from_file.stderr  # the token file was found by itself
    assert json.loads(from_file.stdout) == [{"n": direct["sql"][0]["n"]}]  # type: ignore[index]
