"""Real Prometheus, node_exporter and Alertmanager (Debian binaries) on loopback for tests, plus a
small test exporter whose counters grow at known rates."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.conftest import free_port

BINARIES = {
    "prometheus": "prometheus",
    "node_exporter": "prometheus-node-exporter",
    "alertmanager": "prometheus-alertmanager",
}


def binary(name: str) -> str:
    """Path of a Debian binary; skip (with the way to install it) when it is missing."""
    path = shutil.which(BINARIES[name])
    if path is None:
        pytest.skip(
            f"{BINARIES[name]} is not installed: deploy/local/install.sh installs it "
            "(apt-get install prometheus prometheus-node-exporter prometheus-alertmanager)"
        )
    return path


@dataclass
class Process:
    """A child process with its log file; stopped by its own PID."""

    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        out = open(self.log, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def tail(self, n: int = 30) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join(lines[-n:])


def wait_http(url: str, proc: Process, timeout: float = 60) -> None:
    """Wait until `url` answers 200 (fail with the process log when it dies or times out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.proc is not None
        if proc.proc.poll() is not None:
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{proc.name} not ready at {url}:\n{proc.tail()}")


def node_exporter(workdir: Path) -> tuple[Process, int]:
    """node_exporter with the collectors the default rules read (cpu, meminfo, netdev)."""
    port = free_port()
    argv = [
        binary("node_exporter"),
        f"--web.listen-address=127.0.0.1:{port}",
        "--collector.disable-defaults",
        "--collector.cpu",
        "--collector.meminfo",
        "--collector.netdev",
    ]
    proc = Process("node_exporter", argv, workdir / "node_exporter.log").start()
    wait_http(f"http://127.0.0.1:{port}/metrics", proc)
    return proc, port


@dataclass
class AppExporter:
    """Serves an HTTP service's metrics: request counters by code growing at `ok_rate` and
    `error_rate` per second, a latency histogram with `histogram` observations per second per
    bucket (cumulative), and gauges the test can set (`gauges`)."""

    ok_rate: float = 40.0
    error_rate: float = 10.0
    histogram: dict[str, float] = field(
        default_factory=lambda: {"0.05": 50, "0.1": 80, "0.25": 90, "0.5": 100, "+Inf": 100}
    )
    gauges: dict[str, float] = field(default_factory=lambda: {"cost_per_hour": 1.25})
    port: int = field(default_factory=free_port)
    started: float = field(default_factory=time.time)
    _server: ThreadingHTTPServer | None = None

    P95_MS = 375.0
    """p95 of the histogram above: 0.25 + 0.25 × (95 − 90) / (100 − 90) seconds."""

    def exposition(self) -> bytes:
        t = time.time() - self.started
        lines = [
            "# TYPE http_requests_total counter",
            f'http_requests_total{{code="200"}} {1000 + self.ok_rate * t}',
            f'http_requests_total{{code="503"}} {self.error_rate * t}',
            "# TYPE http_request_duration_seconds histogram",
        ]
        lines += [
            f'http_request_duration_seconds_bucket{{le="{le}"}} {n * t}'
            for le, n in self.histogram.items()
        ]
        lines += [f"http_request_duration_seconds_count {self.histogram['+Inf'] * t}"]
        for series, value in self.gauges.items():  # keys may carry labels: name{a="b"}
            lines += [f"# TYPE {series.split('{')[0]} gauge", f"{series} {value}"]
        return ("\n".join(lines) + "\n").encode()

    def start(self) -> AppExporter:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = exporter.exposition()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def prometheus_config(
    *,
    node_port: int | None,
    exporter_port: int,
    write_url: str,
    interval: str = "1s",
    rules: Path | None = None,
    alertmanager_port: int | None = None,
) -> dict[str, object]:
    """A Prometheus config: scrape node_exporter (instance `local-node`) and the test exporter
    (instance `svc-test`), remote-write everything to NovaCron."""
    scrape = [
        {
            "job_name": "app",
            "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}],
            "relabel_configs": [{"target_label": "instance", "replacement": "svc-test"}],
        }
    ]
    if node_port is not None:
        scrape.append(
            {
                "job_name": "node",
                "static_configs": [{"targets": [f"127.0.0.1:{node_port}"]}],
                "relabel_configs": [{"target_label": "instance", "replacement": "local-node"}],
            }
        )
    config: dict[str, object] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": scrape,
        "remote_write": [
            {
                "url": write_url,
                "remote_timeout": "10s",
                "queue_config": {
                    "batch_send_deadline": "1s",
                    "min_backoff": "100ms",
                    "max_backoff": "1s",
                },
                "metadata_config": {"send": False},
            }
        ],
    }
    if rules is not None:
        config["rule_files"] = [str(rules)]
    if alertmanager_port is not None:
        config["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]
        }
    return config


def prometheus(workdir: Path, config: dict[str, object]) -> tuple[Process, int]:
    """Start Prometheus 2.42 with `config` (written to the work dir); wait until it is ready."""
    port = free_port()
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    argv = [
        binary("prometheus"),
        f"--config.file={path}",
        f"--storage.tsdb.path={workdir / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    proc = Process("prometheus", argv, workdir / "prometheus.log").start()
    wait_http(f"http://127.0.0.1:{port}/-/ready", proc)
    return proc, port


def alertmanager(workdir: Path, webhook_url: str) -> tuple[Process, int]:
    """Alertmanager posting every alert to `webhook_url`, repeating every 2 s while it fires."""
    port = free_port()
    config = {
        "route": {
            "receiver": "novacron",
            "group_by": ["alertname", "instance"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "2s",
        },
        "receivers": [
            {"name": "novacron", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}
        ],
    }
    path = workdir / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    argv = [
        binary("alertmanager"),
        f"--config.file={path}",
        f"--storage.path={workdir / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip port: a single instance
    ]
    proc = Process("alertmanager", argv, workdir / "alertmanager.log").start()
    wait_http(f"http://127.0.0.1:{port}/-/ready", proc)
    return proc, port
