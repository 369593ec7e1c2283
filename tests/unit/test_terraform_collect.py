"""Terraform without Terraform: reading refresh-only plans, redacting secrets, the provider's
install files, ArgoCD status samples."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import typer

from agents.collectors.argocd import APP_TYPE, app_sample
from agents.collectors.terraform_plan import REDACTED, drift_changes, parse_stream, redact
from streams.cli.collect import parse_every
from streams.terraform.install import PROVIDER_VERSION, cli_config, launcher_script, mirror

STREAM = [
    '{"@level":"warn","type":"diagnostic","diagnostic":{"severity":"warning","summary":"Old"}}',
    '{"type":"resource_drift","change":{"resource":{"addr":"aws_s3_bucket.logs"},'
    '"action":"update"}}',
    "Terraform printed this for a person",
    "",
    '{"type":"change_summary","changes":{"add":0}}',
]


def test_the_stream_gives_diagnostics_and_drifted_addresses() -> None:
    report = parse_stream(STREAM)
    assert report.drifted == ["aws_s3_bucket.logs"] and report.errors == []
    assert [str(d) for d in report.diagnostics] == ["warning: Old"]
    assert report.unparsed == ["Terraform printed this for a person"]
    failed = parse_stream(['{"type":"diagnostic","diagnostic":{"severity":"error",'
                           '"summary":"Invalid provider","detail":"x","address":"a.b"}}'])
    assert [str(d) for d in failed.errors] == ["error (a.b): Invalid provider: x"]


def _shown(before: dict, after: dict | None, actions: list[str], **sens: object) -> dict:  # type: ignore[type-arg]
    return {"resource_drift": [{
        "address": "aws_db_instance.main", "mode": "managed", "type": "aws_db_instance",
        "provider_name": "registry.terraform.io/hashicorp/aws",
        "change": {"actions": actions, "before": before, "after": after, **sens}}]}


def test_a_drifted_resource_becomes_a_config_change_with_before_and_after() -> None:
    shown = _shown({"multi_az": True, "size": 10}, {"multi_az": False, "size": 10}, ["update"])
    [change] = drift_changes(shown)
    assert (change.resource_id, change.resource_type, change.provider, change.op) == (
        "aws_db_instance.main", "aws_db_instance", "aws", "update")
    assert change.before == {"multi_az": True, "size": 10}
    assert change.config == {"multi_az": False, "size": 10}
    assert change.change_source == "terraform"
    assert drift_changes(shown)[0].event_id == change.event_id  # the same drift, the same id


def test_a_deleted_resource_is_a_delete() -> None:
    [change] = drift_changes(_shown({"size": 10}, None, ["delete"]))
    assert change.op == "delete" and change.config == {} and change.before == {"size": 10}


def test_sensitive_values_never_leave() -> None:
    shown = _shown({"password": "old-secret", "tags": {"k": "v"}, "list": ["a", "b"]},
                   {"password": "new-secret", "tags": {"k": "w"}, "list": ["a", "c"]},
                   ["update"], before_sensitive={"password": True, "list": [False, True]},
                   after_sensitive={"password": True, "list": [False, True]})
    [change] = drift_changes(shown)
    dumped = change.model_dump_json()
    assert "secret" not in dumped and change.config["list"] == ["a", REDACTED]
    assert change.config["password"] == REDACTED and change.config["tags"] == {"k": "w"}
    only_secret = _shown({"password": "a"}, {"password": "b"}, ["update"],
                         before_sensitive={"password": True}, after_sensitive={"password": True})
    assert drift_changes(only_secret) == []  # nothing that may be shown changed
    assert redact({"a": [1, {"b": 2}]}, {"a": [False, {"b": True}]}) == {"a": [1, {"b": REDACTED}]}


def test_data_sources_in_drift_are_not_config_changes() -> None:
    shown = _shown({"a": 1}, {"a": 2}, ["update"])
    shown["resource_drift"][0]["mode"] = "data"
    assert drift_changes(shown) == []


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("1.5h", 5400),
                                               (None, None)])
def test_durations(text: str | None, seconds: float | None) -> None:
    assert parse_every(text) == seconds


@pytest.mark.parametrize("text", ["5", "0s", "-1m", "5 minutes"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_every(text)


def test_the_provider_files(tmp_path: Path) -> None:
    script = launcher_script(Path("/venv dir/bin/python"), Path("/src"))
    assert "exec '/venv dir/bin/python' -m streams.terraform.provider" in script
    assert "PYTHONPATH=/src" in script
    config = cli_config(tmp_path)
    assert f'"novacron/novacron" = "{tmp_path}"' in config
    assert 'include = ["registry.terraform.io/novacron/novacron"]' in config
    assert 'exclude = ["registry.terraform.io/novacron/novacron"]' in config
    exe = tmp_path / "terraform-provider-novacron"
    exe.write_text(script)
    package = mirror(exe, tmp_path)
    assert package.name.startswith(f"terraform-provider-novacron_{PROVIDER_VERSION}_")
    with zipfile.ZipFile(package) as zf:
        [info] = zf.infolist()
        assert info.filename == f"terraform-provider-novacron_v{PROVIDER_VERSION}"
        assert (info.external_attr >> 16) & 0o111 and zf.read(info) == script.encode()


def test_argocd_status_is_a_sample() -> None:
    app = {"metadata": {"name": "shop"},
           "status": {"sync": {"status": "OutOfSync", "revision": "abc"},
                      "health": {"status": "Degraded"}, "operationState": {"phase": "Failed"},
                      "history": [{"id": 3, "revision": "abc",
                                   "deployedAt": "2030-01-01T00:00:00Z"}]}}
    sample = app_sample(app, cluster="eu")
    assert (sample.resource_id, sample.resource_type, sample.cluster) == ("shop", APP_TYPE, "eu")
    assert sample.labels == {"sync_status": "OutOfSync", "health_status": "Degraded",
                             "revision": "abc", "operation_phase": "Failed"}
    assert sample.extra["degraded"] == 1.0 and sample.extra["synced"] == 0.0
    assert sample.extra["history_id"] == 3.0 and sample.extra["deployed_at"] == 1893456000.0
    bare = app_sample({"metadata": {"name": "new"}})
    assert bare.labels["sync_status"] == "Unknown" and "history_id" not in bare.extra
    assert json.loads(bare.model_dump_json())["resource_id"] == "new"


def test_the_documented_example_is_the_tested_one() -> None:
    root = Path(__file__).resolve().parents[2]
    hcl = (root / "docs" / "terraform" / "main.tf").read_text()
    assert hcl in (root / "docs" / "terraform.md").read_text()
