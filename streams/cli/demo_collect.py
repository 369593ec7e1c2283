"""The demo's collector part: node_exporter → Prometheus → remote-write → NovaCron samples for
the local machine, next to the simulated services. Skipped (and said so) without the binaries."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from rich.console import Console

from streams.settings import Settings

__all__ = ["CollectorDemo", "report", "start"]

INTERVAL = "2s"


@dataclass
class CollectorDemo:
    """The exporter and Prometheus processes the demo started, and the machine's resource id."""

    resource_id: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        """Stop the processes this demo started (by their own handles)."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


def _wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def start(settings: Settings, collect_url: str, console: Console) -> CollectorDemo | None:
    """Start node_exporter and Prometheus remote-writing to the collect role, or explain why not."""
    prometheus = shutil.which("prometheus")
    node_exporter = shutil.which("prometheus-node-exporter")
    if not prometheus or not node_exporter:
        console.print(
            "[yellow]collector demo skipped: Prometheus or node_exporter is not installed "
            "(deploy/local/install.sh installs both from Debian); the simulated services run "
            "as usual[/]"
        )
        return None
    work = settings.data_dir / "demo-prometheus"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    demo = CollectorDemo(resource_id=socket.gethostname()[:200] or "localhost")
    node_port, prom_port = _free_port(), _free_port()
    node = _spawn(
        [
            node_exporter,
            f"--web.listen-address=127.0.0.1:{node_port}",
            "--collector.disable-defaults",
            "--collector.cpu",
            "--collector.meminfo",
            "--collector.netdev",
        ],
        work / "node_exporter.log",
    )
    demo.procs.append(node)
    config = {
        "global": {"scrape_interval": INTERVAL},
        "scrape_configs": [
            {
                "job_name": "node",
                "static_configs": [{"targets": [f"127.0.0.1:{node_port}"]}],
                "relabel_configs": [{"target_label": "instance", "replacement": demo.resource_id}],
            }
        ],
        "remote_write": [
            {
                "url": f"{collect_url}/api/v1/write",
                "queue_config": {"batch_send_deadline": "1s"},
                "metadata_config": {"send": False},
            }
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    prom = _spawn(
        [
            prometheus,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        work / "prometheus.log",
    )
    demo.procs.append(prom)
    if not _wait(f"http://127.0.0.1:{node_port}/metrics", node) or not _wait(
        f"http://127.0.0.1:{prom_port}/-/ready", prom
    ):
        console.print(
            f"[yellow]collector demo skipped: Prometheus did not start (logs in {work})[/]"
        )
        demo.stop()
        return None
    console.print(
        f"started node_exporter and Prometheus (scraping every {INTERVAL}, remote-writing to "
        f"{collect_url}/api/v1/write) for this machine as resource [bold]{demo.resource_id}[/]"
    )
    return demo


def report(backend: object, db: str, demo: CollectorDemo | None, console: Console) -> None:
    """The latest samples of the local machine that came through Prometheus."""
    from streams.cli.history import rows_table

    if demo is None:
        console.print("no collector samples: the collector demo did not run (see above)")
        return
    rid = demo.resource_id.replace("'", "")
    rows = backend.query(  # type: ignore[attr-defined]
        f"SELECT formatDateTime(event_time, '%T') AS time, resource_id, "  # noqa: S608
        "round(cpu_usage, 1) AS cpu_pct, round(memory_usage, 1) AS memory_pct, "
        "round(extra['network_bytes_per_second']) AS net_bytes_s "
        f"FROM {db}.metric_samples FINAL WHERE source = 'prometheus' AND resource_id = '{rid}' "
        "ORDER BY event_time DESC LIMIT 5"
    )
    title = "this machine via node_exporter → Prometheus remote-write → NovaCron"
    console.print(rows_table(rows, title) if rows else f"{title}: no samples yet")
