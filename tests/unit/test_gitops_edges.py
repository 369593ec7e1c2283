"""GitOps edges without Kafka: webhook signatures, the runbook registry's hash checks, reading a
repository (from text and from a real git mirror), status reports."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
from pathlib import Path

import orjson
import pytest

from agents.gitops import GitopsConfig, read_repository
from agents.gitops.objects import out_of_band
from agents.gitops.webhook import pushed_branch, verify_webhook
from agents.shared import SharedState
from runbooks.loader import Library
from runbooks.registry import RunbookStore, parse_record, runbook_record
from schemas import GitSync
from schemas.errors import RejectedError
from streams.cli.gitops import status_report
from streams.gitops_git import GitMirror

BOOK = "metadata: {id: scale-up, name: Mine}\nsteps:\n  - {id: a, action_type: noop}\n"


def _mac(key: bytes) -> str:
    return hmac.new(key, b"{}", hashlib.sha256).hexdigest()


@pytest.mark.parametrize(("headers", "ok"), [
    ({"X-Hub-Signature-256": "sha256=" + _mac(b"s3")}, True),
    ({"x-hub-signature-256": "sha256=" + _mac(b"s3")}, True),
    ({"X-Hub-Signature-256": "sha256=" + _mac(b"no")}, False),
    ({"X-Gitea-Signature": _mac(b"s3")}, True),
    ({"X-Gitlab-Token": "s3"}, True),
    ({"X-Gitlab-Token": "s4"}, False),
    ({}, False),
])
def test_webhook_signatures(headers: dict[str, str], ok: bool) -> None:
    assert verify_webhook("s3", headers, b"{}") is ok
    assert verify_webhook(None, headers, b"{}") is False  # no secret: nothing is accepted


def test_the_pushed_branch() -> None:
    assert pushed_branch(b'{"ref": "refs/heads/main"}') == "main"
    assert pushed_branch(b'{"ref": "refs/tags/v1"}') is None
    assert pushed_branch(b"not json") is None


def test_a_registry_runbook_serves_instead_of_the_shipped_one_until_withdrawn() -> None:
    library = Library()
    shipped = library.get("scale-up")
    store = RunbookStore(on_change=library.register)
    store.apply(*runbook_record(BOOK, author="ana", origin="api").encode())
    assert library.get("scale-up").metadata.name == "Mine" and library.registered("scale-up")
    store.apply(b"scale-up", None)
    assert library.get("scale-up") == shipped


@pytest.mark.parametrize(("mutate", "words"), [
    (lambda r: {**r, "yaml": r["yaml"].replace("Mine", "Theirs")}, "does not match its text"),
    (lambda r: {**r, "runbook_id": "other"}, "holds runbook scale-up"),
    (lambda r: {**r, "yaml": "metadata: {id: scale-up}\nsteps: []\n"}, "at least 1 item"),
])
def test_a_tampered_runbook_record_is_refused(mutate, words: str) -> None:  # type: ignore[no-untyped-def]
    record = orjson.loads(runbook_record(BOOK, author="ana", origin="api").encode()[1])
    value = orjson.dumps(mutate(record))
    with pytest.raises(RejectedError, match=words):
        parse_record(None, value)


def test_reading_collects_every_problem_with_its_file() -> None:
    content = read_repository({
        "policies/a.rego": "package novacron.a\nimport rego.v1\ndefault allow := true\n",
        "policies/b.rego": "package novacron.a\nimport rego.v1\ndefault allow := true\n",
        "policies/a_test.rego": "package novacron.a_test\n",
        "baselines/x.yaml": "a: &a [*a, *a]\nb: &b [*a, *a]\n",
        "baselines/y.json": "{not json",
        "ignores/i.yaml": "ignores: {path: x}\n",
        "exceptions/e.yaml": "exceptions:\n  - control_id: x\n",
        "docs/readme.yaml": "ignored: true\n",
    })
    text = "\n".join(content.problems)
    assert "policies/b.rego: policy/novacron.a is also declared in policies/a.rego" in text
    assert "baselines/y.json: not valid JSON" in text
    assert "ignores/i.yaml: expected a list under `ignores:`" in text
    assert "exceptions/e.yaml[0]: invalid exception" in text
    assert list(content.tests) == ["policies/a_test.rego"]
    assert [o.ref for o in content.objects.values()] == ["policy/novacron.a"]


def test_a_signature_file_travels_with_its_policy() -> None:
    content = read_repository({"policies/a.rego": "package novacron.a\n",
                               "policies/a.rego.sig": "ab" * 32 + "\n"})
    [obj] = content.objects.values()
    assert obj.payload.signature == "ab" * 32  # type: ignore[union-attr]


def _git(cwd: Path, *args: str) -> str:
    env = os.environ | {"GIT_AUTHOR_NAME": "Bo", "GIT_AUTHOR_EMAIL": "bo@example.com",
                        "GIT_COMMITTER_NAME": "Bo", "GIT_COMMITTER_EMAIL": "bo@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_the_mirror_reads_committed_config_files_only(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    _git(work, "init", "--quiet", "--initial-branch=prod")
    (work / "cfg" / "baselines").mkdir(parents=True)
    (work / "cfg" / "baselines" / "vm.yaml").write_text("resource_id: vm\nresource_type: t\n")
    (work / "cfg" / "baselines" / "big.yaml").write_text("x: " + "y" * 5000 + "\n")
    (work / "cfg" / "baselines" / "latin.yaml").write_bytes(b"x: \xe9\n")
    (work / "cfg" / "baselines" / "link.yaml").symlink_to("/etc/passwd")
    (work / "cfg" / "baselines" / "notes.md").write_text("not config")
    (work / "README.yaml").write_text("outside the folder: ignored\n")
    _git(work, "add", ".")
    _git(work, "commit", "--quiet", "-m", "first config")
    (work / "cfg" / "baselines" / "uncommitted.yaml").write_text("resource_id: u\n")
    config = GitopsConfig(url=str(work), branch="prod", path="cfg", max_file_bytes=1024)
    mirror = GitMirror(config, tmp_path / "var")
    head = mirror.fetch()
    assert head == _git(work, "rev-parse", "HEAD")
    found = mirror.read(head)
    assert (found.author, found.message) == ("Bo <bo@example.com>", "first config")
    assert sorted(found.files) == ["baselines/vm.yaml"]
    problems = "\n".join(found.problems)
    assert "baselines/big.yaml: 5004 bytes" in problems
    assert "baselines/latin.yaml: not UTF-8" in problems
    assert "baselines/link.yaml: not a regular file" in problems


def test_a_missing_branch_is_a_fetch_failure(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    _git(work, "init", "--quiet", "--initial-branch=main")
    with pytest.raises(Exception, match="git fetch failed"):
        GitMirror(GitopsConfig(url=str(work), branch="nope"), tmp_path / "var").fetch()


def test_status_reports_out_of_band_changes() -> None:
    assert out_of_band({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "9"}) == {
        "b": "changed", "c": "removed"}
    shared = SharedState()
    sync = GitSync(repo="config", commit="a" * 40, serving="a" * 40, status="applied",
                   manifest={"baseline/vm": "x"})
    report = status_report(sync, "b" * 40, shared)
    assert report["in_sync"] is False and report["out_of_band"] == {"baseline/vm": "removed"}
    assert status_report(None, None, shared)["synced"] is None
