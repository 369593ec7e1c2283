"""Issue 11, finding 1 on a real broker: decisions that smuggle another runbook or an endpoint get
a deny verdict and run nothing; a forged action past the gate is rejected by the executor; the
attacker's listener receives nothing, while an honest decision in the same run acts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from runbooks.loader import Library
from runbooks.resolve import Resolver
from schemas import Action, Decision, Event, Insight
from streams.publish import publish_async
from streams.settings import KafkaConfig, Settings
from tests.integration.conftest import wait_until
from tests.unit.effector_support import bare_repo, commits, read
from tests.unit.test_runbooks_support import local_server

pytestmark = pytest.mark.kafka


def send(cfg: KafkaConfig, *events: Event) -> None:
    asyncio.run(publish_async(list(events), Settings(kafka=cfg)))


def ids(events: list[Any]) -> str:
    return ", ".join(f"'{e.event_id}'" for e in events)


def test_smuggled_runbooks_and_endpoints_never_run(worker_factory, kafka_cfg,  # type: ignore[no-untyped-def]
                                                   tmp_path: Path) -> None:
    repo = bare_repo(tmp_path, {f"services/{s}.yaml": {"service": s, "replicas": 2}
                                for s in ("api", "web")})
    with local_server() as (evil, attacker):
        ingest = worker_factory("ingest")
        govern = worker_factory("govern")
        execute = worker_factory(
            "execute",
            NOVACRON_EXECUTOR__DEFAULTS=json.dumps({"argocd_server": "https://argocd.invalid",
                                                    "notify_webhook": "https://hooks.invalid/x",
                                                    "config_repo": str(repo)}))
        send(kafka_cfg, Insight(resource_id="web", kind="anomaly", metric="cpu_usage", score=0.97))
        wait_until(lambda: httpx.get(f"{govern.url}/gate", params={"resource": "web"}, timeout=5
                                     ).json()["in_incident"], timeout=30, what="the incident flag")

        shrink = Decision(resource_id="web", decision_type="scale_up", confidence=0.9,
                          params={"runbook": "scale-down", "delta": 5})
        argocd = Decision(resource_id="web", decision_type="apply_recommendation",
                          params={"runbook": "argocd-sync", "argocd_server": evil + "/"})
        argocd_direct = Decision(resource_id="web", decision_type="run_runbook",
                                 params={"runbook": "argocd-sync", "argocd_server": evil + "/"})
        webhook = Decision(resource_id="web", decision_type="apply_recommendation",
                           params={"notify_webhook": evil + "/hook"})
        quota = Decision(resource_id="web", decision_type="scale_up", params={"delta": "1000"})
        honest = Decision(resource_id="api", decision_type="scale_up", confidence=0.9,
                          params={"delta": 2})
        attacks = [shrink, argocd, argocd_direct, webhook, quota]
        send(kafka_cfg, *attacks, honest)

        everything = [*attacks, honest]
        verdicts = wait_until(lambda: {
            r["decision_id"]: r for r in ingest.sql(
                "SELECT decision_id, outcome, reasons FROM novacron.policy_verdicts FINAL "
                f"WHERE decision_id IN ({ids(everything)})")} if ingest.scalar(
            "SELECT uniqExact(decision_id) FROM novacron.policy_verdicts "
            f"WHERE decision_id IN ({ids(everything)})") == len(everything) else None,
            timeout=90, what="a verdict per decision")
        assert {verdicts[d.event_id]["outcome"] for d in attacks} == {"deny"}
        reason = {d.event_id: " ".join(verdicts[d.event_id]["reasons"]) for d in attacks}
        assert "scale_up runs runbook scale-up (configuration); runbook 'scale-down' is " \
               "refused" in reason[shrink.event_id]
        assert "apply_recommendation runs runbook apply-recommendation" in reason[argocd.event_id]
        assert "argocd_server is of kind endpoint" in reason[argocd_direct.event_id]
        assert "no parameter 'notify_webhook'" in reason[webhook.event_id]
        assert "delta must be an integer, not a string ('1000')" in reason[quota.event_id]
        assert verdicts[honest.event_id]["outcome"] == "allow"

        # a forged action past the gate: the honest argocd-sync variables plus the attacker's
        # server, with the right runbook hash; the executor re-resolves and refuses it
        lib = Library()
        approved = Resolver(lib.get).resolve("run_runbook", {"runbook": "argocd-sync"})
        forged = Action(action_id="forged-argocd", resource_id="web", action_type="run_runbook",
                        runbook="argocd-sync", runbook_hash=approved.runbook_hash,
                        params={**approved.variables, "argocd_server": evil + "/"})
        send(kafka_cfg, forged)

        outcomes = wait_until(lambda: {r["action_id"]: r for r in ingest.sql(
            "SELECT action_id, argMax(status, event_time) AS final, "
            "argMax(error, event_time) AS why FROM novacron.outcomes FINAL "
            "WHERE scope = 'action' AND status != 'started' GROUP BY action_id")}
            if ingest.scalar("SELECT uniqExact(action_id) FROM novacron.outcomes WHERE scope = "
                             "'action' AND status != 'started'") >= 2 else None,
            timeout=90, what="outcomes of the honest and the forged action")
        assert outcomes["forged-argocd"]["final"] == "failed"
        assert outcomes["forged-argocd"]["why"] == (
            "rejected: runbook argocd-sync: variables differ from what resolution gives here "
            "(argocd_server)")
        actions = ingest.sql("SELECT action_id, decision_id, runbook, runbook_hash, params "
                             "FROM novacron.actions FINAL")
        assert [a["decision_id"] for a in actions if a["decision_id"]] == [honest.event_id]
        [act] = [a for a in actions if a["decision_id"] == honest.event_id]
        assert (act["runbook"], orjson.loads(act["params"])) == (
            "scale-up", {"delta": 2, "max_replicas": 20, "config_branch": "main"})
        assert act["runbook_hash"] == lib.get("scale-up").content_hash
        assert outcomes[act["action_id"]]["final"] == "succeeded"
        # only the honest decision changed the config repository
        assert (read(repo, "services/api.yaml")["replicas"],
                read(repo, "services/web.yaml")["replicas"]) == (4, 2)
        assert len(commits(repo)) == 2
        assert attacker.requests == []
        assert execute.proc is not None and execute.proc.poll() is None
