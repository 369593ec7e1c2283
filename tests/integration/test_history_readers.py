"""Issue 20: `novacron demo --keep` (short) leaves its workers running, and `novacron sql`,
`audit report`, `audit chain` and `audit verify` go through the ingest worker's /sql (the folder
is locked) with the token the demo wrote; once the workers stopped, the same commands read the
folder directly and give the same answers."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sinks.backend import folder_locked
from tests.integration.conftest import wait_until

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
                "--services", "2", "--roles", "ingest,govern", "--keep")
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    pids = [int(p) for p in re.findall(r"kill ((?:\d+ ?)+)", demo.stdout)[-1].split()]
    chdb = workdir / "var" / "chdb"
    try:
        tail = " ".join(demo.stdout.split()[-60:])
        assert "The ingest worker holds" in tail and "so the CLI reads through its /sql" in tail
        assert folder_locked(chdb)
        first = _run(env, workdir, "sql", "SELECT correlation_id FROM metric_samples LIMIT 1",
                     "--format", "json")
        assert first.returncode == 0, first.stderr
        cid = json.loads(first.stdout)[0]["correlation_id"]
        # through /sql, with the viewer token the demo left in var/secrets (found by itself)
        via_sql = _answers(env, workdir, cid)
    finally:
        _stop(pids)
    wait_until(lambda: not folder_locked(chdb), timeout=60, what="the folder released")
    direct = _answers(env, workdir, cid)  # nothing runs: the CLI opens the folder itself
    assert direct["sql"][0]["n"] > 0  # type: ignore[index]
    assert via_sql == direct


def _stop(pids: list[int]) -> None:
    """Stop the workers the demo left running (only those: their PIDs came from its output)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for pid in pids:
        wait_until(lambda pid=pid: not _alive(pid), timeout=60, what=f"worker {pid} stopped")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a stopped child of the demo (which exited) is reaped by init; a zombie counts as gone
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return False
    return True
