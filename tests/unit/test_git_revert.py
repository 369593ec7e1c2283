"""The `gitops-revert` runbook on real git: a commit the executor made is reverted by id, pushed
and read back (patch-id of the inverse); unknown ids, merges, conflicts and unconfigured
repositories are refused with a reason and nothing is committed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents.executor import Executor, ExecutorConfig, InMemoryJournal
from runbooks.loader import Library
from runbooks.model import ValidationError
from runbooks.resolve import RefusedAction, Resolver
from runbooks.steps.checks import EFFECT_CHECKS
from runbooks.steps.gitcli import trailers
from schemas import Action, Event, Outcome
from tests.unit.effector_support import bare_repo, commits, git, read
from tests.unit.test_runbooks_support import approved, book

FILE = "services/web-1.yaml"
SERVICE = {"image": "v1", "owner": "team-a", "port": 8080, "protocol": "http", "region": "eu",
           "replicas": 2, "service": "web-1"}
"""Sorted keys: a change of `image` is four lines away from `replicas`."""


def executor(remote: Path, events: list[Event], library: Library | None = None) -> Executor:
    config = ExecutorConfig(defaults={"config_repo": str(remote)})
    return Executor(config, journal=InMemoryJournal(), emit=events.append, library=library)


def revert_action(commit: str, **params: Any) -> Action:
    return approved(Library(), "run_runbook",
                    {"runbook": "gitops-revert", "commit": commit, **params}, action_id="act-rb")


def revert(remote: Path, commit: str | Action, events: list[Event]) -> Any:
    action = revert_action(commit) if isinstance(commit, str) else commit
    return asyncio.run(executor(remote, events).handle(action))


def deployed(tmp_path: Path) -> tuple[Path, str]:
    """A config repository and the commit of an executor scale-up (replicas 2 → 5)."""
    remote = bare_repo(tmp_path, {FILE: SERVICE})
    result = asyncio.run(executor(remote, []).handle(
        approved(Library(), "scale_up", {"delta": 3}, action_id="act-deploy")))
    assert result.status == "succeeded", result.error
    return remote, commits(remote)[0][0]


def push_change(remote: Path, tmp_path: Path, change: dict[str, Any], name: str = "wc") -> str:
    """Someone else commits to the branch: `change` merged into the service file."""
    work = tmp_path / name
    git("clone", "--quiet", str(remote), str(work))
    doc = {**yaml.safe_load((work / FILE).read_text()), **change}
    (work / FILE).write_text(yaml.safe_dump(doc, sort_keys=False))
    git("commit", "--quiet", "-am", f"change {sorted(change)}", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    return git("rev-parse", "HEAD", cwd=work).strip()


def steps(events: list[Event]) -> dict[str, Outcome]:
    return {e.step_id or "": e for e in events if isinstance(e, Outcome) and e.scope == "step"
            and e.status not in ("started",)}


def test_a_commit_is_reverted_pushed_and_read_back(tmp_path: Path) -> None:
    remote, sha = deployed(tmp_path)
    other = push_change(remote, tmp_path, {"image": "v2"})  # a later commit, other lines
    events: list[Event] = []
    action = revert_action(sha[:10])
    result = revert(remote, action, events)
    assert result.status == "succeeded", result.error
    assert read(remote, FILE) == {**SERVICE, "image": "v2"}
    (new, message), (later, _), (made, _), _ = commits(remote)
    assert (later, made) == (other, sha)
    keys = trailers(message)
    assert keys["NovaCron-Reverts"] == sha and keys["NovaCron-Action-Id"] == "act-rb"
    assert message.startswith(f"Revert {sha[:12]}: roll back a deploy of config")
    out = steps(events)
    assert out["revert"].output["verified"] is True and out["revert"].output["commit"] == new
    assert out["revert"].output["git_action"] == "revert_commit"
    assert out["verify"].output["patch_id"] == out["revert"].output["patch_id"]
    assert out["verify"].output["reverted"] == sha

    again: list[Event] = []  # redelivered: found by its trailers, not committed twice
    redone = revert(remote, action, again)
    assert redone.status == "succeeded", redone.error
    assert len(commits(remote)) == 4 and steps(again)["revert"].output["already"] is True


@pytest.mark.parametrize(("commit", "why"), [
    ("deadbeef", "is unknown in repository config"),
    ("0" * 40, "is unknown in repository config"),
])
def test_an_unknown_commit_is_refused_and_nothing_is_committed(tmp_path: Path, commit: str,
                                                               why: str) -> None:
    remote, _ = deployed(tmp_path)
    before = commits(remote)
    result = revert(remote, commit, [])
    assert result.status == "failed" and why in (result.error or ""), result.error
    assert commits(remote) == before


def test_a_root_commit_a_merge_and_a_conflict_are_refused(tmp_path: Path) -> None:
    remote, sha = deployed(tmp_path)
    root = commits(remote)[-1][0]
    assert "is the root commit" in (revert(remote, root, []).error or "")

    work = tmp_path / "merge"
    git("clone", "--quiet", str(remote), str(work))
    git("checkout", "--quiet", "-b", "side", f"{sha}^", cwd=work)
    (work / "README.md").write_text("side\n")
    git("add", "README.md", cwd=work)
    git("commit", "--quiet", "-m", "side", cwd=work)
    git("checkout", "--quiet", "main", cwd=work)
    git("merge", "--quiet", "--no-ff", "-m", "merge side", "side", cwd=work)
    git("push", "--quiet", "origin", "main", cwd=work)
    merge = git("rev-parse", "HEAD", cwd=work).strip()
    assert "is a merge" in (revert(remote, merge, []).error or "")

    push_change(remote, tmp_path, {"replicas": 9}, "wc2")  # the same line changed later
    before = commits(remote)
    result = revert(remote, sha, [])
    assert result.status == "failed" and "does not revert cleanly" in (result.error or "")
    assert commits(remote) == before


@pytest.mark.parametrize(("params", "why"), [
    ({"commit": "HEAD~1"}, "parameter commit does not match the pattern"),
    ({"commit": "--exec=sh"}, "parameter commit does not match the pattern"),
    ({"commit": "ABCDEF12"}, "parameter commit does not match the pattern"),
    ({"commit": "abc12"}, "parameter commit does not match the pattern"),
    ({"commit": "abc1234", "repository": "prod"}, "parameter repository must be one of"),
    ({"commit": "abc1234", "config_repo": "/tmp/evil.git"}, "config_repo is of kind endpoint"),
])
def test_event_params_never_choose_a_ref_or_a_repository_path(params: dict[str, Any],
                                                              why: str) -> None:
    with pytest.raises(RefusedAction, match=why):
        Resolver(Library().get).resolve("run_runbook", {"runbook": "gitops-revert", **params})


def test_a_repository_name_the_step_does_not_map_is_refused(tmp_path: Path) -> None:
    remote, sha = deployed(tmp_path)
    lib = Library([])
    lib.add(book([{"id": "revert", "action_type": "git", "action": "revert_commit",
                   "parameters": {"repositories": {"config": "${config_repo}"},
                                  "repository": "${repository}", "commit": "${commit}"}}],
                 id="two-names", metadata={"id": "two-names", "selectable": True},
                 parameters={"config_repo": {"type": "string", "kind": "endpoint"},
                             "repository": {"type": "string", "enum": ["config", "infra"],
                                            "overridable": True},
                             "commit": {"type": "string", "pattern": "^[0-9a-f]{7,40}$",
                                        "overridable": True}}))
    action = approved(lib, "run_runbook", {"runbook": "two-names", "commit": sha,
                                           "repository": "infra"})
    result = asyncio.run(executor(remote, [], lib).handle(action))
    assert result.status == "failed"
    assert "repository 'infra' is not configured (configured: config)" in (result.error or "")
    assert commits(remote)[0][0] == sha


def test_revert_steps_are_validated_and_their_event_params_bounded() -> None:
    step = {"id": "r", "action_type": "git", "action": "revert_commit",
            "parameters": {"repository": "config", "commit": "abc1234"}}
    problems = EFFECT_CHECKS["git"](book([step]).steps[0])
    assert any("parameters.repositories" in p for p in problems), problems
    unbounded = {**step, "parameters": {"repositories": {"config": "/srv/config.git"},
                                        "repository": "config", "commit": "${commit}"}}
    with pytest.raises((ValidationError, ValueError), match="commit reaches git"):
        book([unbounded], parameters={"commit": {"type": "string", "overridable": True}})
    chosen = {**step, "parameters": {"repositories": {"config": "${url}"},
                                     "repository": "config", "commit": "abc1234"}}
    with pytest.raises((ValidationError, ValueError), match="url"):
        book([chosen], parameters={"url": {"type": "string", "overridable": True,
                                           "pattern": ".*"}})
