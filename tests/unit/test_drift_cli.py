"""CLI: drift scan / ignore / list and baseline set / accept / sync / import-tfstate (no broker)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from schemas import DesiredState
from streams.cli import baseline as baseline_cli
from streams.cli import drift as drift_cli
from streams.publish import MemoryRecordTopic

FIXTURES = Path(__file__).parents[1] / "fixtures" / "terraform"
runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NOVACRON_DATA_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


@pytest.fixture(autouse=True)
def ignores_topic(monkeypatch: pytest.MonkeyPatch) -> MemoryRecordTopic:
    """The drift-ignores topic in memory (tests/integration/test_drift_ignores.py: the broker)."""
    topic = MemoryRecordTopic()
    monkeypatch.setattr(drift_cli, "_ignores_topic", lambda: topic)
    return topic


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def read_events(path: Path) -> list[DesiredState]:
    return [DesiredState.model_validate_json(line) for line in path.read_text().splitlines()]


# --- drift scan ------------------------------------------------------------------------------


def test_scan_clean_exits_zero(tmp_path: Path) -> None:
    a = write(tmp_path / "a.json", {"size": 2, "id": "x1", "tags": {"env": "prod"}})
    b = write(tmp_path / "b.json", {"size": 2.0, "id": "x2", "tags": {"env": "prod"}})
    result = runner.invoke(drift_cli.app, ["scan", "--baseline", str(a), "--current", str(b)])
    assert result.exit_code == 0, result.output
    assert "0 of 1 resources drifted" in result.output


def test_scan_drift_exits_one_and_shows_severity(tmp_path: Path) -> None:
    a = write(tmp_path / "a.json", {"size": 2, "public_access": False, "name": "n"})
    b = write(tmp_path / "b.json", {"size": 2, "public_access": True, "name": "n"})
    result = runner.invoke(drift_cli.app, ["scan", "-b", str(a), "-c", str(b), "-t", "novacron_vm"])
    assert result.exit_code == 1
    assert "CRITICAL" in result.output and "/public_access" in result.output


def test_scan_json_between_terraform_state_and_plan() -> None:
    v = FIXTURES / "v1.0"
    result = runner.invoke(
        drift_cli.app,
        ["scan", "-b", str(v / "terraform.tfstate"), "-c", str(v / "show-plan.json"), "--json"],
    )
    assert result.exit_code == 1
    found = {f["resource_id"]: f for f in json.loads(result.output)}
    assert set(found) == {
        "aws_instance.app[0]",
        "aws_instance.app[1]",
        "module.net.aws_security_group.web",
    }
    assert found["aws_instance.app[0]"]["changed_fields"] == ["/instance_type"]
    assert found["module.net.aws_security_group.web"]["severity"] == "CRITICAL"


def test_scan_uses_ignore_rules_from_files_and_the_topic(tmp_path: Path) -> None:
    a = write(tmp_path / "a.json", {"size": 2, "owner": "ana"})
    b = write(tmp_path / "b.json", {"size": 2, "owner": "bob"})
    scan = ["scan", "-b", str(a), "-c", str(b)]
    assert runner.invoke(drift_cli.app, scan).exit_code == 1
    rules = tmp_path / "rules.yaml"
    rules.write_text("ignores:\n  - {path: /owner, reason: handover}\n")
    assert runner.invoke(drift_cli.app, [*scan, "--ignores", str(rules)]).exit_code == 0
    added = runner.invoke(
        drift_cli.app, ["ignore", "add", "/owner", "--reason", "handover", "--ttl", "7d"]
    )
    assert added.exit_code == 0, added.output
    assert runner.invoke(drift_cli.app, scan).exit_code == 1  # files only, unless asked
    assert runner.invoke(drift_cli.app, [*scan, "--live-ignores"]).exit_code == 0


def test_scan_reports_unreadable_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    result = runner.invoke(drift_cli.app, ["scan", "-b", str(bad), "-c", str(bad)])
    assert result.exit_code == 2 and "not valid" in result.output


# --- drift ignore ----------------------------------------------------------------------------


def test_ignore_add_list_remove(ignores_topic: MemoryRecordTopic) -> None:
    add = runner.invoke(
        drift_cli.app,
        [
            "ignore",
            "add",
            "/ingress/*/description",
            "-t",
            "aws_*",
            "-r",
            "console edits",
            "--expires",
            "2020-01-01T00:00:00Z",
        ],
    )
    assert add.exit_code == 0, add.output
    rule_id = add.output.split()[1].rstrip(":")
    assert ignores_topic.records[-1][0] == rule_id.encode()  # keyed by rule id: compaction
    listed = runner.invoke(drift_cli.app, ["ignore", "list"])
    assert rule_id in listed.output and "expired" in listed.output
    removed = runner.invoke(drift_cli.app, ["ignore", "remove", rule_id[:6]])
    assert removed.exit_code == 0
    assert ignores_topic.records[-1] == (rule_id.encode(), None)  # a tombstone
    assert "0 ignore rules" in runner.invoke(drift_cli.app, ["ignore", "list"]).output
    again = runner.invoke(drift_cli.app, ["ignore", "remove", rule_id])
    assert again.exit_code == 2


def test_ignore_add_publishes_every_rule_of_a_file(tmp_path: Path,
                                                   ignores_topic: MemoryRecordTopic) -> None:
    file = tmp_path / "ign.yaml"
    file.write_text("ignores:\n  - {path: /tags/*, reason: bot}\n"
                    "  - {path: /etag, resource_type: aws_s3_bucket, reason: computed}\n")
    added = runner.invoke(drift_cli.app, ["ignore", "add", "--file", str(file)])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(drift_cli.app, ["ignore", "list", "--json"])
    assert {r["path"] for r in json.loads(listed.output)} == {"/tags/*", "/etag"}
    both = runner.invoke(drift_cli.app, ["ignore", "add", "/x", "-r", "y", "--file", str(file)])
    assert both.exit_code == 2 and len(ignores_topic.records) == 2


def test_ignore_add_rejects_bad_input(tmp_path: Path, ignores_topic: MemoryRecordTopic) -> None:
    bad_path = runner.invoke(drift_cli.app, ["ignore", "add", "no-slash", "-r", "x"])
    bad_ttl = runner.invoke(drift_cli.app, ["ignore", "add", "/a", "-r", "x", "--ttl", "soon"])
    no_reason = runner.invoke(drift_cli.app, ["ignore", "add", "/a"])
    empty = tmp_path / "empty.yaml"
    empty.write_text("ignores: []\n")
    no_rules = runner.invoke(drift_cli.app, ["ignore", "add", "--file", str(empty)])
    assert [r.exit_code for r in (bad_path, bad_ttl, no_reason, no_rules)] == [2, 2, 2, 2]
    assert ignores_topic.records == []


# --- drift list ------------------------------------------------------------------------------


def test_list_command_prints_open_findings(monkeypatch: pytest.MonkeyPatch) -> None:
    captured: list[str] = []

    class FakeReader:
        where = "a fake reader"
        closed = False

        def close(self) -> None:
            FakeReader.closed = True

        def query(self, sql: str) -> list[dict[str, Any]]:
            captured.append(sql)
            return [
                {
                    "resource_id": "vm-1",
                    "resource_type": "novacron_vm",
                    "severity": "HIGH",
                    "drift_ratio": 0.3,
                    "changed_fields": ["/a", "/b"],
                    "event_time": "t",
                    "baseline_revision": "abc",
                }
            ]

    monkeypatch.setattr(drift_cli, "open_history", lambda settings, url: FakeReader())
    result = runner.invoke(drift_cli.app, ["list", "-s", "high", "-t", "novacron_vm"])
    assert result.exit_code == 0, result.output
    assert FakeReader.closed
    assert "vm-1" in result.output and "HIGH" in result.output
    assert "severity IN ('HIGH')" in captured[0] and "resource_type = 'novacron_vm'" in captured[0]
    bad = runner.invoke(drift_cli.app, ["list", "-s", "urgent"])
    assert bad.exit_code == 2


# --- baseline --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1.0", "v1.9"])
def test_import_tfstate_writes_events(tmp_path: Path, version: str) -> None:
    out = tmp_path / "events.jsonl"
    result = runner.invoke(
        baseline_cli.app,
        ["import-tfstate", str(FIXTURES / version / "terraform.tfstate"), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    events = read_events(out)
    assert len(events) == 8 and {e.origin for e in events} == {"terraform"}


def test_import_tfstate_rejects_non_terraform(tmp_path: Path) -> None:
    f = write(tmp_path / "x.json", {"hello": 1})
    result = runner.invoke(baseline_cli.app, ["import-tfstate", str(f), "--out", "-"])
    assert result.exit_code == 2 and "not Terraform" in result.output


def test_set_and_accept(tmp_path: Path) -> None:
    cfg = tmp_path / "vm.yaml"
    cfg.write_text("cpus: 4\nmemory_gb: 16\n")
    out = tmp_path / "set.jsonl"
    ok = runner.invoke(
        baseline_cli.app, ["set", "vm-1", "-t", "novacron_vm", "-c", str(cfg), "--out", str(out)]
    )
    assert ok.exit_code == 0, ok.output
    (event,) = read_events(out)
    assert (event.resource_id, event.origin, event.config) == (
        "vm-1",
        "api",
        {"cpus": 4, "memory_gb": 16},
    )
    runner.invoke(
        baseline_cli.app,
        [
            "accept",
            "vm-1",
            "-t",
            "novacron_vm",
            "-c",
            str(cfg),
            "--finding",
            "f-1",
            "--out",
            str(out),
        ],
    )
    (accepted,) = read_events(out)
    assert accepted.origin == "accepted-drift" and accepted.revision == "accepted:f-1"


def test_sync_from_a_git_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "baselines").mkdir(parents=True)
    (repo / "baselines" / "vm.yaml").write_text(
        "resource_id: vm-1\nresource_type: novacron_vm\nconfig: {cpus: 2}\n"
    )
    cmd = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*cmd, "add", "."], check=True)
    subprocess.run([*cmd, "commit", "-qm", "init"], check=True)
    head = subprocess.run(
        [*cmd, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    out = tmp_path / "git.jsonl"
    result = runner.invoke(
        baseline_cli.app, ["sync", "--git", str(repo), "--subdir", "baselines", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    (event,) = read_events(out)
    assert event.revision == head and event.origin == "git"
    missing = runner.invoke(
        baseline_cli.app, ["sync", "--git", str(tmp_path / "nope"), "--out", "-"]
    )
    assert missing.exit_code == 2
