"""`git` steps that roll a named commit of a configured config repository back, and verify it.

    action: revert_commit | verify_revert
    parameters:
      repositories: {config: ${config_repo}}   # name → URL or path: the runbook's own table of
                                               # endpoint parameters (executor.defaults)
      repository: ${repository}                # a name of that table (an enum parameter)
      commit: ${commit}                        # 7–40 hex characters: a commit id, never a ref
      branch: main
      step: revert                             # verify_revert: the step whose revert to check

Event data picks a repository only by name, among the names the runbook maps; the URL or path
comes from the executor's configuration. `revert_commit` runs `git revert --no-edit --no-commit`
(an argument vector, never a shell) on a fresh clone of the branch, refuses a commit that is
unknown, not on the branch, a merge or a root commit, commits with the action's trailers and
pushes. The post-condition (both actions): the revert commit is on the remote branch after a
fresh fetch and its changes are exactly the inverse of the reverted commit's — the `git patch-id`
of the commit's diff read backwards equals the revert's (zero context lines, so later commits
next to the reverted lines do not matter).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from runbooks.interpolate import as_text
from runbooks.runtime import StepContext
from runbooks.steps.gitbatch import run_git_commit
from runbooks.steps.gitcli import Workcopy, clone, trailers
from runbooks.steps.gitrepo import GIT_ACTIONS, PostConditionFailed, identity, run_git_change
from schemas.errors import NonRetryableError, RetryableError

__all__ = ["COMMIT", "NAMED_ACTIONS", "REPOSITORY_NAME", "run_git", "run_revert_commit",
           "run_verify_revert"]

COMMIT = re.compile(r"[0-9a-f]{7,40}")
"""What a commit to revert may look like: an (abbreviated) lowercase commit id, nothing else."""
REPOSITORY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""A configured repository's name."""
_BRANCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}")


class _Target:
    """The repository (by configured name), branch and commit of the step, checked."""

    def __init__(self, ctx: StepContext) -> None:
        sid = ctx.step.id
        self.name = str(ctx.param("repository") or "")
        table = ctx.step.parameters.get("repositories")
        if not isinstance(table, Mapping) or not table:
            raise NonRetryableError(f"step {sid}: parameters.repositories must map repository "
                                    "names to endpoint parameters")
        if not REPOSITORY_NAME.fullmatch(self.name) or self.name not in table:
            raise NonRetryableError(
                f"step {sid}: repository {self.name[:60]!r} is not configured "
                f"(configured: {', '.join(sorted(map(str, table)))})")
        self.url = as_text(ctx.interp.value(table[self.name]))  # only the chosen entry is filled
        if not self.url:
            raise NonRetryableError(f"step {sid}: repository {self.name} has no URL or path")
        self.branch = str(ctx.param("branch") or "main")
        if not _BRANCH.fullmatch(self.branch) or ".." in self.branch:
            raise NonRetryableError(f"step {sid}: {self.branch!r} is not a branch name")
        self.commit = str(ctx.param("commit") or "")
        if not COMMIT.fullmatch(self.commit):
            raise NonRetryableError(f"step {sid}: commit {self.commit[:60]!r} is not a commit id "
                                    "(7 to 40 lowercase hex characters)")


def _keys(ctx: StepContext, step_id: str | None = None) -> dict[str, str]:
    keys = identity(ctx)
    return {**keys, "NovaCron-Step": step_id} if step_id else keys


async def _resolve(ctx: StepContext, work: Workcopy, t: _Target) -> str:
    """The full id of the commit to revert; refused unless it is an ordinary commit of the
    branch."""
    sid, short = ctx.step.id, t.commit
    code, out = await work.run("rev-parse", "--verify", "--quiet", "--end-of-options",
                               f"{short}^{{commit}}", check=False)
    sha = out.strip()
    if code != 0 or not sha.startswith(short):
        raise NonRetryableError(f"step {sid}: commit {short} is unknown in repository {t.name} "
                                "(or the abbreviation is ambiguous)")
    code, _ = await work.run("merge-base", "--is-ancestor", sha, f"origin/{t.branch}", check=False)
    if code != 0:
        raise NonRetryableError(f"step {sid}: commit {short} is not on {t.branch} of "
                                f"repository {t.name}")
    parents = (await work.run("rev-list", "--parents", "-n", "1", sha))[1].split()[1:]
    if len(parents) != 1:
        what = "a merge" if parents else "the root commit"
        raise NonRetryableError(f"step {sid}: commit {short} is {what}; only an ordinary commit "
                                "is reverted")
    return sha


async def _patch_id(work: Workcopy, old: str, new: str) -> str:
    """`git patch-id --stable` of the changes from `old` to `new` (no context lines)."""
    _, diff = await work.run("diff", "-U0", "--no-color", "--no-ext-diff", "--no-renames",
                             old, new, "--")
    if not diff.strip():
        return ""
    _, out = await work.run("patch-id", "--stable", stdin=diff.encode())
    return out.split()[0] if out.split() else ""


async def _verified(ctx: StepContext, work: Workcopy, t: _Target, sha: str, reverted: str,
                    **flags: bool) -> dict[str, Any]:
    on_remote, head = await work.is_on_remote(sha)
    out = {"effector": "git", "git_action": "revert_commit", "repository": t.name,
           "branch": t.branch, "commit": sha, "reverted": reverted, "remote_head": head, **flags}
    if not on_remote:
        raise PostConditionFailed(f"step {ctx.step.id}: revert {sha[:12]} is not on {t.branch} "
                                  f"(remote head {head[:12]})")
    undo, done = await _patch_id(work, reverted, f"{reverted}^"), await _patch_id(
        work, f"{sha}^", sha)
    if not undo or undo != done:
        raise PostConditionFailed(
            f"step {ctx.step.id}: {sha[:12]} does not undo {reverted[:12]} exactly (patch-id "
            f"{done[:12] or 'empty'} ≠ {undo[:12] or 'empty'} of the inverse)")
    return {**out, "patch_id": done, "verified": True}


async def _made(work: Workcopy, keys: dict[str, str]) -> tuple[str, str] | None:
    """(revert commit, the commit it reverts) made with these trailers, if on the branch."""
    sha = await work.find(keys)
    if sha is None:
        return None
    reverted = trailers((await work.run("log", "-1", "--format=%B", sha))[1]).get(
        "NovaCron-Reverts", "")
    return (sha, reverted) if re.fullmatch(r"[0-9a-f]{40}", reverted) else None


async def run_revert_commit(ctx: StepContext) -> dict[str, Any]:
    """Revert the named commit on the branch, push it and verify it on the remote."""
    t = _Target(ctx)
    git = ctx.config.effectors.git
    async with clone(git, t.url, t.branch, ctx.redactor) as work:
        keys = _keys(ctx)
        done = await _made(work, keys)
        if done is not None:  # redelivered or resumed: the revert is there already
            return await _verified(ctx, work, t, *done, already=True)
        sha = await _resolve(ctx, work, t)
        subject = f"Revert {sha[:12]}: roll back a deploy of {t.name} (action {ctx.action_id})"
        message = "\n".join([subject, "", *(f"{k}: {v}" for k, v in keys.items()),
                             f"NovaCron-Reverts: {sha}", ""])
        for _ in range(git.push_attempts):
            await _revert_once(ctx, work, t, sha, message)
            new = await work.head()
            if await work.push(f"HEAD:refs/heads/{t.branch}"):
                return await _verified(ctx, work, t, new, sha)
            await work.reset_to_remote()  # the branch moved: revert again on its new head
    raise RetryableError(f"step {ctx.step.id}: {t.branch} kept moving; "
                         f"{git.push_attempts} pushes were refused")


async def _revert_once(ctx: StepContext, work: Workcopy, t: _Target, sha: str,
                       message: str) -> None:
    code, _ = await work.run("revert", "--no-edit", "--no-commit", sha, check=False)
    if code != 0:
        await work.run("revert", "--abort", check=False)
        raise NonRetryableError(f"step {ctx.step.id}: {sha[:12]} does not revert cleanly on "
                                f"{t.branch} (later commits changed the same lines)")
    code, _ = await work.run("diff", "--cached", "--quiet", check=False)
    if code == 0:
        raise NonRetryableError(f"step {ctx.step.id}: reverting {sha[:12]} changes nothing on "
                                f"{t.branch} (it was undone already)")
    await work.run("commit", "--quiet", "--no-verify", "--cleanup=verbatim", "-F", "-",
                   stdin=message.encode())


async def run_verify_revert(ctx: StepContext) -> dict[str, Any]:
    """Read back, from a fresh clone, the revert another step of this action made."""
    t = _Target(ctx)
    made_by = str(ctx.param("step") or "revert")
    async with clone(ctx.config.effectors.git, t.url, t.branch, ctx.redactor) as work:
        done = await _made(work, _keys(ctx, made_by))
        if done is None:
                raise PostConditionFailed(f"step {ctx.step.id}: no revert of step {made_by} on "
                                      f"{t.branch} of repository {t.name}")
        if not done[1].startswith(t.commit):
            raise NonRetryableError(f"step {ctx.step.id}: the revert on {t.branch} undoes "
                                    f"{done[1][:12]}, not {t.commit}")
        out = await _verified(ctx, work, t, *done)
        return {**out, "git_action": "verify_revert"}


NAMED_ACTIONS = {"revert_commit": run_revert_commit, "verify_revert": run_verify_revert}
"""git actions on a commit named by id in a repository named by its configured name."""


async def run_git(ctx: StepContext) -> dict[str, Any]:
    """The `git` step: commit or revert the step's own change, or revert / verify a commit named
    by id in a repository named by its configured name."""
    op = str(ctx.step.action or "commit")
    if op not in GIT_ACTIONS:
        raise NonRetryableError(f"step {ctx.step.id}: unknown git action {op!r}")
    if op in NAMED_ACTIONS:
        return await NAMED_ACTIONS[op](ctx)
    if op == "commit":
        return await run_git_commit(ctx)
    return await run_git_change(ctx, op)
