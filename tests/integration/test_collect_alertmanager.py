"""A Prometheus alerting rule fires, real Alertmanager posts to the collect role, the decision goes
through the policy gate (govern) to the executor (execute), the mapped runbook runs once although
Alertmanager repeats the notification, and the resolution is recorded on the action's chain."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from runbooks.loader import LIBRARY_DIR
from tests.integration.conftest import free_port, wait_until
from tests.integration.prom_stack import AppExporter, alertmanager, prometheus, prometheus_config

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

BACKLOG = 'queue_depth{queue="orders"}'
RULES = """
groups:
  - name: novacron-test
    rules:
      - alert: QueueBacklog
        expr: queue_depth > 5
        labels: {severity: page}
        annotations: {summary: "backlog of {{ $value }} messages"}
"""
RUNBOOK = """
metadata:
  id: drain-queue
  name: Drain a queue backlog
  type: operation
  version: 1.0
  selectable: true
parameters:
  queue:
    type: string
    max_length: 128
    pattern: "[A-Za-z0-9_.-]*"
    default: ""
    overridable: true
steps:
  - id: drain
    name: Ask the service to drain the queue
    action_type: http
    action: http://127.0.0.1:{port}/drain
    parameters:
      method: POST
      json: {{service: "${{resource_id}}", queue: "${{queue}}", action_id: "${{action_id}}"}}
    critical: true
  - id: verify
    name: The service reports the drain under way
    action_type: http
    action: http://127.0.0.1:{port}/drain
    parameters: {{method: GET, expected_status: 200}}
    dependencies: [drain]
    critical: true
"""


class Service:
    """The system the runbook acts on: POST /drain records the call and empties the queue a few
    seconds later (so Alertmanager repeats the notification meanwhile)."""

    def __init__(self, exporter: AppExporter, delay: float = 6.0) -> None:
        self.calls: list[dict[str, object]] = []
        self.port = free_port()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                service.calls.append(body)
                threading.Timer(delay, exporter.gauges.__setitem__, (BACKLOG, 0.0)).start()
                self._answer(202)

            def do_GET(self) -> None:  # noqa: N802
                self._answer(200 if service.calls else 404)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _metric(url: str, prefix: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return 0.0


def test_alert_runs_the_mapped_runbook_once_and_records_the_resolution(
    worker_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    exporter = AppExporter(gauges={BACKLOG: 0.0}).start()
    service = Service(exporter)
    library = tmp_path / "runbooks"
    library.mkdir()
    (library / "drain-queue.yaml").write_text(RUNBOOK.format(port=service.port))
    route = {
        "alertname": "QueueBacklog",
        "match": {"severity": "page"},
        "runbook": "drain-queue",
        "resource_labels": ["instance"],
        "variables": {"queue": {"label": "queue"}},
    }
    ingest = worker_factory("ingest")
    # the gate resolves the runbook as the executor will: both roles read the same library
    dirs = json.dumps([str(LIBRARY_DIR), str(library)])
    worker_factory("govern", NOVACRON_EXECUTOR__LIBRARY_DIRS=dirs)
    worker_factory("execute", NOVACRON_EXECUTOR__LIBRARY_DIRS=dirs)
    collect = worker_factory("collect", NOVACRON_COLLECT__ALERTS__ROUTES=json.dumps([route]))
    processes = []
    try:
        am, am_port = alertmanager(tmp_path, f"{collect.url}/api/v1/alerts")
        processes.append(am)
        rules = tmp_path / "rules.yml"
        rules.write_text(RULES)
        config = prometheus_config(
            node_port=None,
            exporter_port=exporter.port,
            write_url=f"{collect.url}/api/v1/write",
            rules=rules,
            alertmanager_port=am_port,
        )
        prom, _ = prometheus(tmp_path, config)
        processes.append(prom)
        exporter.gauges[BACKLOG] = 12.0  # the backlog builds up: the rule fires

        wait_until(lambda: service.calls, timeout=90, what="the runbook's drain call")
        repeat = 'novacron_alerts_total{result="repeat"}'
        wait_until(
            lambda: _metric(collect.url, repeat) >= 1,
            timeout=60,
            what="a repeated notification of the open alert",
        )

        resolved = "SELECT action_id FROM novacron.outcomes FINAL WHERE scope = 'alert'"
        rows = wait_until(lambda: ingest.sql(resolved), timeout=90, what="the resolution")
        time.sleep(3)  # anything a repeat could still have started would show by now
        assert len(service.calls) == 1, service.calls
        assert service.calls[0]["service"] == "svc-test" and service.calls[0]["queue"] == "orders"
        action_id = service.calls[0]["action_id"]
        assert [r["action_id"] for r in rows] == [action_id]

        decisions = ingest.sql(
            "SELECT event_id, origin, decision_type, params FROM novacron.decisions FINAL "
            "WHERE origin = 'alert'"
        )
        assert len(decisions) == 1 and decisions[0]["decision_type"] == "run_runbook"
        actions = ingest.sql("SELECT action_id, runbook FROM novacron.actions FINAL")
        assert [(a["action_id"], a["runbook"]) for a in actions] == [(action_id, "drain-queue")]
        final = ingest.sql(
            "SELECT status FROM novacron.outcomes FINAL "
            f"WHERE action_id = '{action_id}' AND scope = 'action' AND status = 'succeeded'"
        )
        assert final, "the runbook's action outcome"
        chain = ingest.sql(
            "SELECT correlation_id, status FROM novacron.outcomes FINAL "
            f"WHERE action_id = '{action_id}' AND scope = 'alert'"
        )
        assert chain == [{"correlation_id": decisions[0]["event_id"], "status": "resolved"}]
        assert _metric(collect.url, 'novacron_alerts_total{result="decided"}') == 1
        assert _metric(collect.url, 'novacron_alerts_total{result="resolved"}') >= 1
    finally:
        for proc in reversed(processes):
            proc.stop()
        service.stop()
        exporter.stop()
