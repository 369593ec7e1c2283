"""The `novacron` Terraform provider with the real Terraform CLI against a govern worker.

init → plan → apply creates the five kinds of docs/terraform/main.tf; a change made out of band
with the `novacron` CLI shows in `terraform plan` and in `novacron collect terraform`; apply
restores it; import adopts an existing policy; destroy removes everything; invalid arguments are
Terraform diagnostics, not stack traces. The transcript of every command is printed (`-s`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from streams.settings import KafkaConfig, Settings
from streams.terraform.install import install_provider
from tests.integration.conftest import ADMIN_TOKEN, wait_until

pytestmark = pytest.mark.kafka

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "terraform" / "main.tf"
TERRAFORM = Settings().terraform_bin
LEGACY = """package novacron.legacy.freeze

import rego.v1

default allow := true

deny contains msg if {
	input.action == "scale_down"
	msg := "frozen"
}
"""
ADOPT = """
resource "novacron_policy" "legacy" {
  policy_id   = "novacron.legacy.freeze"
  name        = "legacy"
  policy_type = "action_safety"
  rego        = file("${path.module}/legacy.rego")
}
"""
INVALID = """
terraform {
  required_providers {
    novacron = { source = "novacron/novacron" }
  }
}
resource "novacron_policy" "bad" {
  policy_id   = "novacron.x.y"
  enforcement = "loud"
  rego        = "package novacron.other\\n"
}
resource "novacron_drift_ignore" "bad" {
  path       = "/tags/x"
  expires_at = "next tuesday"
}
resource "novacron_baseline" "bad" {
  resource_id   = "vm-9"
  resource_type = "vm"
  config        = "[1, 2]"
}
"""

needs_terraform = pytest.mark.skipif(
    not TERRAFORM.exists(),
    reason=f"no Terraform CLI at {TERRAFORM}: deploy/local/install.sh builds 1.5.7 (go install)")


class Session:
    """Runs commands in one working directory and keeps a transcript."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env

    def run(self, *argv: str, expect: int | tuple[int, ...] = 0) -> str:
        proc = subprocess.run(argv, cwd=self.folder, env=self.env, capture_output=True,
                              text=True, timeout=300)
        shown = " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv))
        print(f"\n$ {shown}\n{proc.stdout}{proc.stderr}")
        codes = (expect,) if isinstance(expect, int) else expect
        assert proc.returncode in codes, f"{shown} exited {proc.returncode}"
        assert "Traceback" not in proc.stdout + proc.stderr
        return proc.stdout + proc.stderr

    def tf(self, *args: str, expect: int | tuple[int, ...] = 0) -> str:
        return self.run(str(TERRAFORM), *args, "-no-color", expect=expect)

    def novacron(self, *args: str, expect: int = 0) -> str:
        return self.run(sys.executable, "-m", "streams.cli.main", *args, expect=expect)


@pytest.fixture
def session(worker_factory, kafka_cfg: KafkaConfig, tmp_path: Path) -> Session:  # type: ignore[no-untyped-def]
    installed = install_provider()
    govern = worker_factory("govern")
    api = f"{govern.url}/api"
    wait_until(lambda: httpx.get(f"{api}/health", timeout=5).status_code == 200,
               what="the control API")
    folder = tmp_path / "tf"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / "main.tf")
    env = os.environ | {
        "TF_CLI_CONFIG_FILE": str(installed.cli_config), "TF_IN_AUTOMATION": "1",
        "NOVACRON_API_URL": api, "NOVACRON_API_TOKEN": ADMIN_TOKEN,
        "NOVACRON_KAFKA__BOOTSTRAP": kafka_cfg.bootstrap,
        "NOVACRON_KAFKA__TOPIC_PREFIX": kafka_cfg.topic_prefix}
    return Session(folder, env)


def _get(s: Session, path: str) -> httpx.Response:
    return httpx.get(s.env["NOVACRON_API_URL"] + path, timeout=10,
                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})


@needs_terraform
def test_the_example_lives_through_plan_apply_drift_import_and_destroy(session: Session) -> None:
    s = session
    s.tf("init")
    assert "5 to add" in s.tf("plan", "-detailed-exitcode", expect=2)
    applied = s.tf("apply", "-auto-approve")
    assert "5 added" in applied and "compliance_score = 100" in applied
    assert _get(s, "/policies/novacron.teams.payments.scale_limit").json()["enabled"]
    assert _get(s, "/runbooks/payments-drain").json()["origin"] == "api"
    assert _get(s, "/ignores").json()["ignores"][0]["path"] == "/tags/build"
    assert _get(s, "/exceptions/aws-rds-multi-az:aws_db_instance.legacy").status_code == 200
    s.tf("plan", "-detailed-exitcode")  # exit code 0: nothing to change

    (s.folder / "oob.json").write_text(json.dumps(
        {"instance_class": "db.r6g.4xlarge", "storage_encrypted": True,
         "publicly_accessible": True}))
    s.novacron("baseline", "set", "aws_db_instance.payments", "--type", "aws_db_instance",
               "--config", "oob.json", "--author", "mallory")
    wait_until(lambda: _get(s, "/baselines/aws_db_instance.payments").json()["config"][
        "instance_class"] == "db.r6g.4xlarge", what="the out-of-band baseline folded")
    drift = s.tf("plan", "-detailed-exitcode", expect=2)
    assert "novacron_baseline.payments_db will be updated in-place" in drift
    assert '"db.r6g.4xlarge" -> "db.r6g.large"' in drift
    collected = s.novacron("collect", "terraform", "--dir", str(s.folder), "--out", "-")
    [change] = [json.loads(line) for line in collected.splitlines() if line.startswith("{")]
    assert change["resource_id"] == "novacron_baseline.payments_db"
    assert change["change_source"] == "terraform" and change["op"] == "update"
    assert "db.r6g.large" in change["before"]["config"]
    assert "db.r6g.4xlarge" in change["config"]["config"]

    assert "1 changed" in s.tf("apply", "-auto-approve")
    assert _get(s, "/baselines/aws_db_instance.payments").json()["config"][
        "instance_class"] == "db.r6g.large"
    s.tf("plan", "-detailed-exitcode")

    (s.folder / "legacy.rego").write_text(LEGACY)
    s.novacron("policy", "register", "legacy.rego", "--type", "action_safety",
               "--api", s.env["NOVACRON_API_URL"], "--token", ADMIN_TOKEN)
    with (s.folder / "main.tf").open("a") as f:
        f.write(ADOPT)
    s.tf("import", "novacron_policy.legacy", "novacron.legacy.freeze")
    s.tf("plan", "-detailed-exitcode")  # adopted as it is: nothing to change

    assert "6 destroyed" in s.tf("destroy", "-auto-approve")
    for policy in ("novacron.teams.payments.scale_limit", "novacron.legacy.freeze"):
        assert _get(s, f"/policies/{policy}").json()["enabled"] is False
    for path in ("/runbooks/payments-drain", "/baselines/aws_db_instance.payments",
                 "/exceptions/aws-rds-multi-az:aws_db_instance.legacy"):
        assert _get(s, path).status_code == 404, path
    assert _get(s, "/ignores").json()["ignores"] == []


@needs_terraform
def test_invalid_arguments_are_diagnostics(session: Session) -> None:
    s = session
    (s.folder / "main.tf").write_text(INVALID)
    s.tf("init")
    out = s.tf("plan", expect=1)
    for words in ("Error: Invalid enforcement 'loud'",
                  "policy_id must be the Rego module's package",
                  "Error: Invalid expires_at 'next tuesday'",
                  "Error: config must be a JSON object"):
        assert words in out, words
    (s.folder / "main.tf").write_text(INVALID.split('resource "novacron_policy"')[0] + """
resource "novacron_runbook" "broken" {
  runbook_id = "broken"
  yaml       = "metadata: {id: broken}\\nsteps: []\\n"
}
""")
    out = s.tf("apply", "-auto-approve", expect=1)
    assert "Error: Cannot create novacron_runbook: POST /runbooks: invalid runbook" in out
    # the loader names the field, never echoes the file
    assert "steps: must have at least 1 items" in out


IMPORTED = """
terraform {
  required_providers {
    novacron = { source = "novacron/novacron" }
  }
}
resource "novacron_runbook" "hello" {
  runbook_id = "ops-hello"
  yaml       = "metadata: {id: ops-hello, name: Hello}\\nsteps:\\n  - {id: a, action_type: noop}\\n"
}
resource "novacron_baseline" "vm" {
  resource_id   = "vm-7"
  resource_type = "novacron_vm"
  config        = jsonencode({ cpu = 2 })
}
resource "novacron_drift_ignore" "build" {
  path          = "/tags/build"
  resource_type = "novacron_vm"
  reason        = "set by CI"
}
resource "novacron_compliance_exception" "db" {
  control_id  = "aws-rds-multi-az"
  resource_id = "db-7"
  reason      = "single AZ until Q3"
  expires_at  = "2027-09-30T00:00:00Z"
}
"""


@needs_terraform
def test_every_resource_kind_can_be_imported(session: Session) -> None:
    s = session
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    api = s.env["NOVACRON_API_URL"]

    def send(method: str, path: str, body: dict) -> dict:  # type: ignore[type-arg]
        resp = httpx.request(method, api + path, json=body, headers=headers, timeout=10)
        assert resp.status_code in (200, 201), resp.text
        return resp.json()  # type: ignore[no-any-return]

    send("POST", "/runbooks", {"yaml": "metadata: {id: ops-hello, name: Hello}\nsteps:\n"
                                       "  - {id: a, action_type: noop}\n"})
    send("PUT", "/baselines/vm-7", {"resource_type": "novacron_vm", "config": {"cpu": 2}})
    rule = send("POST", "/ignores", {"path": "/tags/build", "resource_type": "novacron_vm",
                                     "reason": "set by CI"})
    send("POST", "/exceptions", {"control_id": "aws-rds-multi-az", "resource_id": "db-7",
                                 "reason": "single AZ until Q3",
                                 "expires_at": "2027-09-30T00:00:00Z"})
    (s.folder / "main.tf").write_text(IMPORTED)
    s.tf("init")
    for address, object_id in (("novacron_runbook.hello", "ops-hello"),
                               ("novacron_baseline.vm", "vm-7"),
                               ("novacron_drift_ignore.build", rule["rule_id"]),
                               ("novacron_compliance_exception.db", "aws-rds-multi-az:db-7")):
        assert "Import successful" in s.tf("import", address, object_id)
    s.tf("plan", "-detailed-exitcode")  # every one adopted as it is
    assert "Cannot import novacron_baseline" in s.tf("import", "novacron_baseline.vm", "nope",
                                                     expect=1)
