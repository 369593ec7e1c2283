"""The GitOps reconciler on the broker, following a real git repository (a bare repo as remote)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from streams.settings import KafkaConfig
from tests.integration.conftest import ADMIN_TOKEN, kafka_env, wait_until

pytestmark = pytest.mark.kafka

POLICY = """# METADATA
# title: Repo limits
# custom:
#   policy_type: resource_allocation
#   enforcement: block
package novacron.repo.limits

import rego.v1

default allow := true

deny contains msg if {{
	input.decision.params.delta > {limit}
	msg := sprintf("at most {limit} at once", [])
}}
"""
POLICY_TEST = """package novacron.repo.limits_test

import rego.v1

import data.novacron.repo.limits

test_small_is_fine if {{
	count(limits.deny) == 0 with input.decision as {{"params": {{"delta": 1}}}}
}}

test_big_is_denied if {{
	count(limits.deny) == 1 with input.decision as {{"params": {{"delta": {big}}}}}
}}
"""
RUNBOOK = """metadata: {{id: repo-hello, name: Hello from git, selectable: true}}
parameters:
  message: {{type: string, default: "{message}", overridable: true}}
steps:
  - id: say
    action_type: noop
    action: "say ${{message}}"
"""
BASELINE = "resource_id: repo-vm-1\nresource_type: novacron_vm\nconfig: {{cpu: {cpu}}}\n"
SECRET = "push-secret"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Repo:
    """A working clone of a bare repository that stands for the remote."""

    def __init__(self, root: Path) -> None:
        self.remote, self.work = root / "remote.git", root / "work"
        self.git("init", "--quiet", "--bare", "--initial-branch=main", str(self.remote), cwd=root)
        self.git("clone", "--quiet", str(self.remote), str(self.work), cwd=root)

    def git(self, *args: str, cwd: Path | None = None) -> str:
        env = os.environ | {"GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com",
                            "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.com"}
        out = subprocess.run(["git", *args], cwd=cwd or self.work, env=env, check=True,
                             capture_output=True, text=True)
        return out.stdout.strip()

    def commit(self, message: str, files: dict[str, str | None]) -> str:
        for path, text in files.items():
            target = self.work / path
            if text is None:
                self.git("rm", "--quiet", path)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            self.git("add", path)
        self.git("commit", "--quiet", "-m", message)
        self.git("push", "--quiet", "origin", "HEAD:main")
        return self.git("rev-parse", "HEAD")


def content(limit: int = 3, big: int = 9, message: str = "v1", cpu: int = 2
            ) -> dict[str, str | None]:
    return {"policies/limits.rego": POLICY.format(limit=limit),
            "policies/limits_test.rego": POLICY_TEST.format(big=big),
            "runbooks/hello.yaml": RUNBOOK.format(message=message),
            "baselines/vm.yaml": BASELINE.format(cpu=cpu)}


def gitops_env(repo: Repo, poll_seconds: float) -> dict[str, str]:
    return {"NOVACRON_GITOPS__ENABLED": "true", "NOVACRON_GITOPS__URL": str(repo.remote),
            "NOVACRON_GITOPS__POLL_SECONDS": str(poll_seconds),
            "NOVACRON_GITOPS__WEBHOOK_SECRET": SECRET}


def status(govern) -> dict:  # type: ignore[no-untyped-def,type-arg]
    [repo] = httpx.get(f"{govern.url}/gitops/status", timeout=10).json()["repositories"]
    return repo  # type: ignore[no-any-return]


def serving(govern, sha: str) -> bool:  # type: ignore[no-untyped-def]
    return status(govern)["serving"] == sha


def api(govern, method: str, path: str, body: dict | None = None) -> httpx.Response:  # type: ignore[no-untyped-def,type-arg]
    return httpx.request(method, f"{govern.url}/api{path}", json=body, headers=AUTH, timeout=30)


def found(govern, path: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """The object once the role's followed copy has it (folded within a host tick)."""
    return wait_until(lambda: (r := api(govern, "GET", path)).status_code == 200 and r.json(),
                      what=f"GET {path}")  # type: ignore[no-any-return]


def denied(govern, delta: int) -> bool:  # type: ignore[no-untyped-def]
    resp = api(govern, "POST", "/evaluate", {"input": {"decision": {"params": {"delta": delta}}},
                                             "policy_ids": ["novacron.repo.limits"]})
    assert resp.status_code == 200, resp.text
    return not resp.json()["allowed"]


def cli_status(kafka_cfg: KafkaConfig, repo: Repo) -> tuple[int, dict]:  # type: ignore[type-arg]
    env = os.environ | kafka_env(kafka_cfg) | {"NOVACRON_GITOPS__URL": str(repo.remote)}
    proc = subprocess.run([sys.executable, "-m", "streams.cli.main", "gitops", "status", "--json"],
                          env=env, capture_output=True, text=True, timeout=120)
    return proc.returncode, json.loads(proc.stdout)


def test_commits_add_change_reject_and_delete_within_a_poll(
        worker_factory, kafka_cfg, tmp_path) -> None:  # type: ignore[no-untyped-def]
    repo = Repo(tmp_path)
    first = repo.commit("limits, hello, vm-1", content())
    ingest = worker_factory("ingest")
    govern = worker_factory("govern", **gitops_env(repo, poll_seconds=2))

    wait_until(lambda: serving(govern, first), what="the first commit applied")
    wait_until(lambda: api(govern, "GET", "/policies/novacron.repo.limits").status_code == 200,
               what="the gate folded the repo policy")
    assert denied(govern, 5)
    assert found(govern, "/runbooks/repo-hello")["origin"] == "git"
    assert found(govern, "/baselines/repo-vm-1")["config"] == {"cpu": 2}

    second = repo.commit("raise the limit", content(limit=10, big=11, message="v2", cpu=4))
    wait_until(lambda: serving(govern, second), what="the change applied by polling")
    wait_until(lambda: not denied(govern, 5), what="the gate deciding with version 2")
    assert api(govern, "GET", "/policies/novacron.repo.limits").json()["version"] == 2
    wait_until(lambda: "v2" in found(govern, "/runbooks/repo-hello")["yaml"], what="runbook v2")
    wait_until(lambda: found(govern, "/baselines/repo-vm-1")["config"] == {"cpu": 4},
               what="the new baseline")

    code, report = cli_status(kafka_cfg, repo)
    assert (code, report["in_sync"], report["out_of_band"]) == (0, True, {}), report
    api(govern, "PUT", "/baselines/repo-vm-1", {"resource_type": "novacron_vm",
                                                "config": {"cpu": 64}})
    code, report = wait_until(lambda: (r := cli_status(kafka_cfg, repo))[1]["out_of_band"] and r,
                              what="the out-of-band change in gitops status")
    assert code == 1 and report["out_of_band"] == {"baseline/repo-vm-1": "changed"}

    bad = repo.commit("lower the limit, test not updated", content(limit=4, big=3))
    wait_until(lambda: status(govern)["last_sync"]["commit"] == bad, what="the bad commit seen")
    last = status(govern)["last_sync"]
    assert last["status"] == "rejected" and status(govern)["serving"] == second
    assert any("test_big_is_denied FAIL" in r for r in last["reasons"]), last["reasons"]
    assert not denied(govern, 5)  # version 2 keeps deciding
    assert api(govern, "GET", "/policies/novacron.repo.limits").json()["version"] == 2

    gone = repo.commit("retire them", dict.fromkeys(content()))
    wait_until(lambda: serving(govern, gone), what="the deletion applied")
    wait_until(lambda: not api(govern, "GET", "/policies/novacron.repo.limits").json()["enabled"],
               what="the policy disabled")
    wait_until(lambda: api(govern, "GET", "/runbooks/repo-hello").status_code == 404,
               what="the runbook withdrawn")
    wait_until(lambda: api(govern, "GET", "/baselines/repo-vm-1").status_code == 404,
               what="the baseline withdrawn")

    rows = wait_until(lambda: (r := ingest.sql(
        "SELECT commit, status, added, changed, pruned FROM git_syncs FINAL ORDER BY event_time"))
        and len(r) == 4 and r, what="every sync in git_syncs")
    assert [(r["commit"], r["status"]) for r in rows] == [
        (first, "applied"), (second, "applied"), (bad, "rejected"), (gone, "applied")]
    assert sorted(rows[0]["added"]) == ["baseline/repo-vm-1", "policy/novacron.repo.limits",
                                        "runbook/repo-hello"]
    assert len(rows[1]["changed"]) == 3 and len(rows[3]["pruned"]) == 3
    audited = wait_until(lambda: (r := ingest.sql(
        "SELECT subject_id, actor FROM audit_log WHERE kind = 'GitSync' ORDER BY seq"))
        and len(r) == 4 and r, what="every sync in the hash-chained audit log")
    assert [a["subject_id"] for a in audited] == [first, second, bad, gone]
    assert {a["actor"] for a in audited} == {"Ada <ada@example.com>"}


def _signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def test_a_push_webhook_applies_a_commit_at_once(worker_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    repo = Repo(tmp_path)
    first = repo.commit("limits", content())
    govern = worker_factory("govern", **gitops_env(repo, poll_seconds=3600))
    wait_until(lambda: serving(govern, first), what="the start-up poll")

    second = repo.commit("raise the limit", content(limit=10, big=11))
    push = json.dumps({"ref": "refs/heads/main", "after": second}).encode()
    hook = f"{govern.url}/gitops/webhook"
    assert httpx.post(hook, content=push, headers=_signed(push, "wrong")).status_code == 401
    assert httpx.post(hook, content=push, headers={}).status_code == 401
    other = json.dumps({"ref": "refs/heads/feature"}).encode()
    ignored = httpx.post(hook, content=other, headers=_signed(other))
    assert ignored.status_code == 202 and ignored.json()["status"] == "ignored"
    assert status(govern)["serving"] == first  # no poll is due for an hour: nothing moved
    assert httpx.post(hook, content=push, headers=_signed(push)).status_code == 202
    wait_until(lambda: serving(govern, second), what="the commit applied by the webhook")
    wait_until(lambda: not denied(govern, 5), what="the gate deciding with version 2")
