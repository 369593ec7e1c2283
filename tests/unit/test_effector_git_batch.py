"""Group commit in the git effector, on real git with a bare repository as the remote: steps on
one branch share a push and each keeps its own commit; a change that cannot be made fails alone;
the kept clone follows a branch that someone else moved, forward or back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agents.executor import Executor, ExecutorConfig, InMemoryJournal
from runbooks.effectors import EffectorsConfig, GitConfig
from runbooks.loader import Library
from runbooks.runtime import EngineConfig
from runbooks.steps.gitcli import trailers
from schemas import Event, Outcome
from tests.unit.effector_support import bare_repo, commits, git, read
from tests.unit.test_runbooks_support import approved, book

LIB = Library()


def counting_pushes(remote: Path) -> Path:
    """A post-receive hook that writes a line per push it receives; the file it writes."""
    log = remote.parent / "pushes.log"
    hook = remote / "hooks" / "post-receive"
    hook.write_text(f"#!/bin/sh\necho push >> {log}\n")
    hook.chmod(0o755)
    return log


def executor(remote: Path, events: list[Event], git_config: GitConfig | None = None) -> Executor:
    engine = EngineConfig(effectors=EffectorsConfig(git=git_config or GitConfig()))
    config = ExecutorConfig(defaults={"config_repo": str(remote)}, engine=engine)
    return Executor(config, journal=InMemoryJournal(), emit=events.append, library=LIB)


def step_outputs(events: list[Event]) -> dict[str, Outcome]:
    return {e.action_id: e for e in events if isinstance(e, Outcome) and e.scope == "step"
            and e.step_id == "commit" and e.status in ("succeeded", "failed")}


async def run_all(ex: Executor, actions: list[Any]) -> list[Any]:
    return await asyncio.gather(*(ex.handle(a) for a in actions))


@pytest.mark.parametrize("git_config", [GitConfig(), GitConfig(keep_clone=False),
                                        GitConfig(max_batch=1)],
                         ids=["kept-clone", "fresh-clone", "one-per-push"])
def test_steps_on_one_branch_land_each_with_its_own_commit(tmp_path: Path,
                                                          git_config: GitConfig) -> None:
    remote = bare_repo(tmp_path, {f"services/web-{i}.yaml": {"service": f"web-{i}", "replicas": 2}
                                  for i in range(3)})
    pushes = counting_pushes(remote)
    actions = [approved(LIB, "scale_up", {"delta": 1 + i % 2}, resource_id=f"web-{i % 3}",
                        action_id=f"act-{i}") for i in range(8)]
    events: list[Event] = []
    results = asyncio.run(run_all(executor(remote, events, git_config), actions))

    assert [r.status for r in results] == ["succeeded"] * 8
    log = commits(remote)
    assert len(log) == 9  # the initial commit and one per action, none lost, none twice
    assert sorted(trailers(msg)["NovaCron-Action-Id"] for _, msg in log[:8]) == sorted(
        a.action_id for a in actions)
    # 2 + the deltas of the actions on each service (1, 2, 1 / 2, 1, 2 / 1, 2)
    assert [read(remote, f"services/web-{i}.yaml")["replicas"] for i in range(3)] == [6, 7, 5]
    outputs = step_outputs(events)
    for sha, msg in log[:8]:  # each step names its own commit, verified on the remote
        out = outputs[trailers(msg)["NovaCron-Action-Id"]].output
        assert out["commit"] == sha and out["verified"] is True
    sizes = [o.output["batch"] for o in outputs.values()]
    if git_config.max_batch == 1:
        assert set(sizes) == {1}
        assert len(pushes.read_text().splitlines()) == 8
    else:  # the first step pushes alone; the seven that queued meanwhile share the next push
        assert max(sizes) > 1
        assert len(pushes.read_text().splitlines()) < 8


def test_a_change_that_cannot_be_made_fails_alone_in_its_batch(tmp_path: Path) -> None:
    remote = bare_repo(tmp_path, {"services/web-1.yaml": {"service": "web-1", "replicas": 19},
                                  "services/web-2.yaml": "replicas: [unclosed\n"})
    actions = [approved(LIB, "scale_up", {"delta": 1}, resource_id="web-1", action_id="fits"),
               approved(LIB, "scale_up", {"delta": 1}, resource_id="web-1", action_id="over"),
               approved(LIB, "scale_up", {"delta": 1}, resource_id="web-2", action_id="broken"),
               approved(LIB, "scale_up", {"delta": 1}, resource_id="web-3", action_id="new")]
    events: list[Event] = []
    results = asyncio.run(run_all(executor(remote, events), actions))

    assert [r.status for r in results] == ["succeeded", "failed", "failed", "failed"]
    assert "would be 21, above the maximum 20" in (results[1].error or "")
    assert "services/web-2.yaml is not valid YAML" in (results[2].error or "")
    assert "does not exist on the branch and the step has no `create`" in (results[3].error or "")
    log = commits(remote)
    assert len(log) == 2 and trailers(log[0][1])["NovaCron-Action-Id"] == "fits"
    assert read(remote, "services/web-1.yaml")["replicas"] == 20
    assert git("show", "main:services/web-2.yaml", cwd=remote) == "replicas: [unclosed\n"


def push_from_elsewhere(tmp_path: Path, remote: Path, replicas: int) -> str:
    """Someone else commits web-1's replicas and pushes; the new head."""
    work = tmp_path / f"elsewhere-{replicas}"
    git("clone", "--quiet", str(remote), str(work))
    (work / "services" / "web-1.yaml").write_text(f"service: web-1\nreplicas: {replicas}\n")
    git("commit", "--quiet", "-am", f"set replicas to {replicas}", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    return git("rev-parse", "HEAD", cwd=work).strip()


def test_the_kept_clone_follows_the_branch_forward_and_back(tmp_path: Path) -> None:
    remote = bare_repo(tmp_path, {"services/web-1.yaml": {"service": "web-1", "replicas": 2}})
    seed = git("rev-parse", "main", cwd=remote).strip()
    events: list[Event] = []

    async def scenario() -> list[str]:
        ex = executor(remote, events)
        statuses = []
        for n, between in enumerate([None, 10, "reset"]):
            if between == "reset":  # an operator rolls the branch back to the first commit
                git("update-ref", "refs/heads/main", seed, cwd=remote)
            elif between is not None:
                push_from_elsewhere(tmp_path, remote, between)
            result = await ex.handle(approved(LIB, "scale_up", {"delta": 1},
                                              action_id=f"act-{n}"))
            statuses.append(result.status)
        return statuses

    assert asyncio.run(scenario()) == ["succeeded"] * 3
    # 2 → 3 (ours); 10 from elsewhere → 11 (ours, on top); rolled back to 2 → 3, and neither
    # the rolled-back commits nor ours before them come back
    log = commits(remote)
    assert read(remote, "services/web-1.yaml")["replicas"] == 3
    assert [sha for sha, _ in log][1:] == [seed] and "act-2" in log[0][1]


def quick_book() -> Any:
    """One commit step that gives up after 0.6 s and is not retried."""
    return book([
        {"id": "commit", "action_type": "git", "action": "commit", "critical": True,
         "timeout": 0.6, "retry": {"max_attempts": 1},
         "parameters": {"repo": "${config_repo}", "file": "services/${resource_id}.yaml",
                        "changes": [{"op": "add", "path": "/replicas", "value": 1}],
                        "message": "scale ${resource_id}"}},
    ], id="quick-scale", metadata={"id": "quick-scale", "selectable": True},
        parameters={"config_repo": {"type": "string", "kind": "endpoint"}})


def test_a_step_that_gives_up_while_waiting_leaves_the_batch_and_never_lands(
        tmp_path: Path) -> None:
    remote = bare_repo(tmp_path, {"services/web-1.yaml": {"service": "web-1", "replicas": 2}})
    hook = remote / "hooks" / "pre-receive"  # a slow server: each push takes a second
    hook.write_text("#!/bin/sh\nsleep 1\n")
    hook.chmod(0o755)
    lib = Library()
    lib.add(quick_book())
    events: list[Event] = []
    ex = Executor(ExecutorConfig(defaults={"config_repo": str(remote)}),
                  journal=InMemoryJournal(), emit=events.append, library=lib)

    async def scenario() -> list[Any]:
        first = asyncio.create_task(ex.handle(approved(
            lib, "scale_up", {"delta": 1}, resource_id="web-1", action_id="slow-but-patient")))
        await asyncio.sleep(0.3)  # its batch is pushing: the next step has to wait
        second = ex.handle(approved(lib, "run_runbook", {"runbook": "quick-scale"},
                                    resource_id="web-1", action_id="gives-up"))
        done = list(await asyncio.gather(first, second))
        await asyncio.sleep(2.5)  # time for a batch that wrongly kept the step to push it
        return done

    patient, quick = asyncio.run(scenario())
    assert patient.status == "succeeded", patient.error
    assert quick.status == "failed" and "no result within 0.6s" in (quick.error or "")
    log = commits(remote)
    assert len(log) == 2 and trailers(log[0][1])["NovaCron-Action-Id"] == "slow-but-patient"
    assert read(remote, "services/web-1.yaml")["replicas"] == 3


def test_a_file_that_is_a_symlink_in_the_repository_is_never_written_through(
        tmp_path: Path) -> None:
    remote = bare_repo(tmp_path, {"services/web-2.yaml": {"service": "web-2", "replicas": 2}})
    work = tmp_path / "author"
    git("clone", "--quiet", str(remote), str(work))
    # a link whose target text reads as YAML (`replicas: 2`): git stores that text as the blob
    (work / "services" / "web-1.yaml").symlink_to("replicas: 2")
    outside = tmp_path / "outside.yaml"
    outside.write_text("replicas: 2\n")
    (work / "services" / "web-3.yaml").symlink_to(outside)
    git("add", "services", cwd=work)
    git("commit", "--quiet", "-m", "links", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    events: list[Event] = []
    # the first step pushes alone; the other three wait and share the next batch
    results = asyncio.run(run_all(executor(remote, events), [
        approved(LIB, "scale_up", {"delta": 1}, resource_id="web-2", action_id="plain-1"),
        approved(LIB, "scale_up", {"delta": 1}, resource_id="web-1", action_id="link-in"),
        approved(LIB, "scale_up", {"delta": 1}, resource_id="web-3", action_id="link-out"),
        approved(LIB, "scale_up", {"delta": 1}, resource_id="web-2", action_id="plain-2")]))

    assert [r.status for r in results] == ["succeeded", "failed", "failed", "succeeded"]
    assert "services/web-1.yaml leaves the repository (a symlink)" in (results[1].error or "")
    assert outside.read_text() == "replicas: 2\n"
    log = commits(remote)  # the links failed alone: the plain file's batch-mate landed
    assert [trailers(m).get("NovaCron-Action-Id") for _, m in log[:2]] == ["plain-2", "plain-1"]
    assert len(log) == 4 and read(remote, "services/web-2.yaml")["replicas"] == 4


def test_a_new_file_and_a_change_to_it_land_in_one_batch(tmp_path: Path) -> None:
    """A step may create a file the branch does not have (its `create` document); the next
    change to that file in the same batch starts from the new file, and each commit holds its
    own file only."""
    folder = tmp_path / "library"
    folder.mkdir()
    text = (Path(LIB.folders[0]) / "scale-up.yaml").read_text()
    marker = "      file: services/${resource_id}.yaml\n"
    assert marker in text
    (folder / "scale-up.yaml").write_text(
        text.replace(marker, marker + "      create: {service: \"${resource_id}\", replicas: 1}\n"))
    library = Library([LIB.folders[0], folder])
    remote = bare_repo(tmp_path, {"services/web-1.yaml": {"service": "web-1", "replicas": 2}})
    # act-0 pushes alone; act-1 (the new file) and act-2 (a change to it) queue behind it
    actions = [approved(library, "scale_up", {"delta": d}, resource_id=r, action_id=f"act-{i}")
               for i, (r, d) in enumerate([("web-1", 1), ("web-9", 2), ("web-9", 3)])]
    events: list[Event] = []
    engine = EngineConfig(effectors=EffectorsConfig(git=GitConfig()))
    ex = Executor(ExecutorConfig(defaults={"config_repo": str(remote)}, engine=engine),
                  journal=InMemoryJournal(), emit=events.append, library=library)
    results = asyncio.run(run_all(ex, actions))

    assert [r.status for r in results] == ["succeeded"] * 3
    assert read(remote, "services/web-9.yaml") == {"service": "web-9", "replicas": 6}
    assert read(remote, "services/web-1.yaml") == {"service": "web-1", "replicas": 3}
    log = commits(remote)
    assert len(log) == 4
    for sha, msg in log[:3]:  # each commit changes its own service's file and nothing else
        service = {"act-0": "web-1", "act-1": "web-9", "act-2": "web-9"}[
            trailers(msg)["NovaCron-Action-Id"]]
        changed = git("show", "--name-only", "--format=", sha, cwd=remote).split()
        assert changed == [f"services/{service}.yaml"]
    outputs = step_outputs(events)
    assert outputs["act-1"].output["batch"] == outputs["act-2"].output["batch"] == 2
