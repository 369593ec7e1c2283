"""Rollback after a deploy, on the broker: an ArgoCD deployment (seen by `collect argocd`) is
followed by slow samples on the service it deploys; the deploy watch proposes a rollback, it is
approved, the executor rolls the application back to its previous revision (read from its own
history), and deploy → breach → decision → verdict → approval → action → outcome is one chain."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from schemas import MetricSample
from streams.publish import publish_async
from streams.settings import KafkaConfig, Settings
from tests.integration.conftest import VIEWER_TOKEN, wait_until
from tests.unit.test_runbooks_support import argo_app, local_server

pytestmark = pytest.mark.kafka
ARGO_TOKEN = "argo-token"  # what the local ArgoCD server accepts


def cli(cfg: KafkaConfig, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, NOVACRON_KAFKA__BOOTSTRAP=cfg.bootstrap,
                NOVACRON_KAFKA__TOPIC_PREFIX=cfg.topic_prefix, **env)
    return subprocess.run([sys.executable, "-m", "streams.cli.main", *args], env=full,
                          capture_output=True, text=True, timeout=120)


def test_a_slow_service_after_an_argocd_deploy_is_rolled_back(worker_factory, kafka_cfg) -> None:  # type: ignore[no-untyped-def]
    with local_server() as (url, argo):
        app = argo.apps["shop"] = argo_app("shop")  # deployed: history 2 (aaa111)
        ingest = worker_factory("ingest")
        worker_factory("govern")
        worker_factory("learn", NOVACRON_DEPLOY_WATCH__LATENCY_SLO_MS="250",
                       NOVACRON_DEPLOY_WATCH__BREACH_SAMPLES="2",
                       NOVACRON_DEPLOY_WATCH__APPS=json.dumps({"shop": ["svc-shop"]}))
        worker_factory("execute", NOVACRON_EXECUTOR__DEFAULTS=json.dumps({"argocd_server": url}),
                       NOVACRON_SECRET_ARGOCD_TOKEN=ARGO_TOKEN)

        seen = cli(kafka_cfg, "collect", "argocd", "--server", url, "--app", "shop",
                   ARGOCD_TOKEN=ARGO_TOKEN)
        assert seen.returncode == 0, seen.stderr
        app["status"]["history"].append({"id": 3, "revision": "bbb222"})  # a new deployment
        app["status"]["sync"] = {"status": "Synced", "revision": "bbb222"}
        deployed = cli(kafka_cfg, "collect", "argocd", "--server", url, "--app", "shop",
                       ARGOCD_TOKEN=ARGO_TOKEN)
        assert deployed.returncode == 0 and "bbb222" in deployed.stderr, deployed.stderr

        def proposed() -> list[dict[str, object]]:
            slow = [MetricSample(resource_id="svc-shop", resource_type="service",
                                 network_latency_ms=900.0) for _ in range(2)]
            asyncio.run(publish_async(slow, Settings(kafka=kafka_cfg)))
            return ingest.sql("SELECT event_id, correlation_id, params FROM decisions FINAL "
                              "WHERE origin = 'gitops'")

        [decision] = wait_until(proposed, timeout=120, interval=2, what="the rollback proposal")
        assert json.loads(str(decision["params"])) == {"runbook": "argocd-rollback"}
        request, chain_id = str(decision["event_id"]), str(decision["correlation_id"])
        wait_until(lambda: ingest.sql(f"SELECT status FROM approvals FINAL WHERE request_id = "
                                      f"'{request}'"), timeout=60, what="the pending approval")
        approved = cli(kafka_cfg, "approve", request, "--by", "alice", "--reason", "bad deploy")
        assert approved.returncode == 0, approved.stdout + approved.stderr

        [action] = wait_until(lambda: ingest.sql(
            f"SELECT runbook FROM actions FINAL WHERE correlation_id = '{chain_id}'"),
            timeout=60, what="the approved action")
        assert action["runbook"] == "argocd-rollback"
        outcome = wait_until(lambda: ingest.sql(
            "SELECT status, error FROM outcomes FINAL WHERE scope = 'action' AND status != "
            f"'started' AND correlation_id = '{chain_id}'"), timeout=120, what="its outcome")
        assert [o["status"] for o in outcome] == ["succeeded"], outcome
        assert app["status"]["sync"]["revision"] == "aaa111"  # the revision before bbb222
        rollback = [r for r in argo.requests if r.path.endswith("/rollback")]
        assert [r.body["id"] for r in rollback] == [2]

    # the ingest worker holds the chDB folder: the CLI reads through its /sql
    chain = cli(kafka_cfg, "audit", "chain", chain_id, "--sql-url", ingest.url,
                NOVACRON_SQL_TOKEN=VIEWER_TOKEN,
                NOVACRON_CLICKHOUSE__PATH=str(ingest.workdir / "var" / "chdb"), COLUMNS="400")
    assert chain.returncode == 0, chain.stderr
    print(chain.stdout)
    for kind in ("MetricSample", "Insight", "Decision", "PolicyVerdict", "Approval", "Action",
                 "Outcome"):
        assert kind in chain.stdout, kind
