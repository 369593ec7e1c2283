"""`git` steps: edit a file in a config repository, commit with the action's ids, push, verify.

The GitOps-native effector: ArgoCD or Flux (or the simulator's reconciler) applies the repository.

    action: commit (default) | revert | revert_commit | verify_revert (runbooks/steps/gitrevert.py)
    parameters:
      repo:    ${config_repo}          # kind endpoint: URL or path, from executor.defaults
      branch:  main
      file:    services/${resource_id}.yaml   # each ${var} is one or more safe path segments
      create:  {service: ${resource_id}}      # the document when the file does not exist yet
      changes: [{op: add, path: /replicas, value: ${delta}, minimum: 1, maximum: 20}]
      message: scale ${resource_id} by ${delta}   # values must be plain tokens (ids, numbers)
      review:  false                  # true: push a review branch, wait for approval, merge

Commit steps waiting on one remote branch share a clone, a push and the verifying fetch, each
with its own commit (`runbooks.steps.gitbatch`); a `review` commit and a `revert` use a fresh
clone of their own. Each commit carries the trailers `NovaCron-Action-Id`,
`NovaCron-Correlation-Id` and `NovaCron-Step`. A step that finds its own commit already on the
branch does not commit again (redelivery, a crash after the push), so git steps are idempotent.
`revert` reverts the commit another step of the same action made (default: the step it
compensates); `revert_commit` rolls back a commit named by id (a deploy gone wrong), see
`runbooks.steps.gitrevert`.

Post-condition: the commit is on the remote branch after a fresh fetch, and the file at that
commit holds every changed value; otherwise the step fails with what it observed.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any, NamedTuple

import orjson
import yaml

from runbooks.interpolate import VAR, as_text
from runbooks.loader import LoadLimits, safe_yaml
from runbooks.runtime import StepContext, emit_event
from runbooks.steps.edits import EditError, apply_changes, get_at, render_changes
from runbooks.steps.gitcli import Workcopy, clone
from schemas import Approval, Outcome, utc_now
from schemas.errors import NonRetryableError, RetryableError

__all__ = ["GIT_ACTIONS", "BranchSpec", "Landed", "PostConditionFailed", "check_inside",
           "commit_message", "dump_file", "edit", "identity", "load_file", "post_condition",
           "render_message", "render_path", "run_git_change", "write_commit"]

GIT_ACTIONS = frozenset({"commit", "revert", "revert_commit", "verify_revert"})
"""What a git step can do (its `action`)."""
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+=-]{0,127}")
_TOKEN = re.compile(r"-?[A-Za-z0-9][A-Za-z0-9._:/@+=,-]{0,127}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,255}")
_BRANCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}")
_SUFFIXES = (".yaml", ".yml", ".json")


class PostConditionFailed(NonRetryableError):
    """The target, read back after the change, does not hold what the step did."""


def render_path(template: str, ctx: StepContext) -> str:
    """A repository-relative path; every `${var}` must be safe path segments (no `..`, no
    hidden names, no absolute paths), so event data cannot leave the file the runbook names."""
    def fill(m: re.Match[str]) -> str:
        value = as_text(ctx.interp.lookup(m.group(2), bool(m.group(1))))
        parts = value.split("/")
        if len(parts) > 8 or not all(_SEGMENT.fullmatch(p) for p in parts):
            raise NonRetryableError(f"step {ctx.step.id}: ${{{m.group(2)}}} = "
                                    f"{ctx.redactor.text(value)[:80]!r} is not a safe path")
        return value

    path = VAR.sub(fill, template)
    parts = path.split("/")
    if (not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts)
            or ".git" in parts or not path.endswith(_SUFFIXES)):
        raise NonRetryableError(f"step {ctx.step.id}: file {path!r} must be a relative "
                                f"{'/'.join(_SUFFIXES)} path inside the repository")
    return str(PurePosixPath(path))


def render_message(template: str, ctx: StepContext) -> str:
    """The commit subject: the runbook's text with each `${var}` a plain token (id, number)."""
    def fill(m: re.Match[str]) -> str:
        value = as_text(ctx.interp.lookup(m.group(2), bool(m.group(1))))
        if not _TOKEN.fullmatch(value):
            raise NonRetryableError(
                f"step {ctx.step.id}: ${{{m.group(2)}}} is not a plain token and cannot go into "
                "a commit message (ids and numbers only)")
        return value

    subject = VAR.sub(fill, template).strip().splitlines()
    return (subject[0] if subject else "")[:200] or f"novacron: {ctx.step.name or ctx.step.id}"


def _checked_id(value: str, what: str, ctx: StepContext) -> str:
    if not _ID.fullmatch(value):
        raise NonRetryableError(f"step {ctx.step.id}: {what} {value[:60]!r} is not a plain id; "
                                "refusing to write it into a commit message")
    return value


def identity(ctx: StepContext) -> dict[str, str]:
    return {
        "NovaCron-Action-Id": _checked_id(ctx.action_id, "action id", ctx),
        "NovaCron-Correlation-Id": _checked_id(str(ctx.parent.correlation_id), "correlation id",
                                               ctx),
        "NovaCron-Step": ctx.step.id,
    }


def commit_message(subject: str, keys: dict[str, str]) -> bytes:
    """The commit message: the subject, a blank line, the trailers."""
    trailer = "\n".join(f"{k}: {v}" for k, v in keys.items())
    return f"{subject}\n\n{trailer}\n".encode()


def load_file(raw: bytes | None, path: str, ctx: StepContext) -> Any:
    """A repository file's document (None: no file); NonRetryableError when it is too large or
    not valid YAML / JSON: a file the step cannot read is never overwritten."""
    if raw is None:
        return None
    limit = ctx.config.effectors.git.max_file_bytes
    if len(raw) > limit:
        raise NonRetryableError(f"step {ctx.step.id}: {path} is larger than {limit} bytes")
    try:
        if path.endswith(".json"):
            return orjson.loads(raw)
        return safe_yaml(raw.decode(), LoadLimits(max_bytes=limit))
    except Exception as exc:  # a broken file in the repo: never overwrite what we cannot read
        raise NonRetryableError(f"step {ctx.step.id}: {path} is not valid "
                                f"{path.rsplit('.', 1)[-1].upper()}: {exc}") from exc


def dump_file(doc: Any, path: str) -> bytes:
    """A document as the bytes of a repository file (JSON or YAML, by the path's suffix)."""
    if path.endswith(".json"):
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False,
                          allow_unicode=True).encode()


def edit(ctx: StepContext, path: str, changes: list[Any], raw: bytes | None
         ) -> tuple[Any, Any, dict[str, Any]]:
    """(the document before, after the step's changes, the values the changes set) for the
    file's current bytes (None: no file yet, the step's `create` document is the start)."""
    before = load_file(raw, path, ctx)
    if before is None:
        before = ctx.param("create")
        if before is None:
            raise NonRetryableError(f"step {ctx.step.id}: {path} does not exist on the branch "
                                    "and the step has no `create` document")
    try:
        after, expected = apply_changes(before, changes)
    except EditError as exc:
        raise NonRetryableError(f"step {ctx.step.id}: {path}: {exc}") from exc
    return before, after, expected


class BranchSpec:
    """The step's parameters, filled and checked."""

    def __init__(self, ctx: StepContext) -> None:
        self.repo = str(ctx.param("repo") or "")
        self.branch = str(ctx.param("branch") or "main")
        if not self.repo:
            raise NonRetryableError(f"step {ctx.step.id}: git needs parameters.repo")
        if not _BRANCH.fullmatch(self.branch) or ".." in self.branch:
            raise NonRetryableError(f"step {ctx.step.id}: {self.branch!r} is not a branch name")
        self.review = bool(ctx.param("review", False))


async def run_git_change(ctx: StepContext, op: str) -> dict[str, Any]:
    """Commit (or revert) this step's own change in the config repository and verify it on the
    remote (`op` is "commit" or "revert"; `runbooks.steps.gitrevert.run_git` dispatches)."""
    spec = BranchSpec(ctx)
    async with clone(ctx.config.effectors.git, spec.repo, spec.branch, ctx.redactor) as work:
        if op == "revert":
            return await _revert(ctx, work, spec)
        return await _commit(ctx, work, spec)


async def _commit(ctx: StepContext, work: Workcopy, spec: BranchSpec) -> dict[str, Any]:
    """A commit for review: on a review branch of its own, merged once a person approves
    (the commit steps without review go through `runbooks.steps.gitbatch`)."""
    path = render_path(str(ctx.step.parameters.get("file", "")), ctx)
    changes = render_changes(ctx.step.parameters.get("changes"), ctx.interp, f"step {ctx.step.id}")
    keys = identity(ctx)
    done = await work.find(keys)
    if done is not None:  # redelivered or resumed: the change is there already
        return await _verify(ctx, work, spec, done, path, None, already=True)
    subject = render_message(str(ctx.step.parameters.get("message") or ""), ctx)
    raw = await work.show("HEAD", path)
    before, after, expected = edit(ctx, path, changes, raw)
    if after == before and raw is not None:
        return await _verify(ctx, work, spec, await work.head(), path, expected, unchanged=True)
    await write_commit(work, path, dump_file(after, path), commit_message(subject, keys))
    return await _review(ctx, work, spec, await work.head(), path, expected)


def check_inside(work: Workcopy, path: str) -> None:
    """NonRetryableError when writing the file would leave the working copy (a symlink)."""
    target = work.root / path
    if target.is_symlink() or not target.resolve().is_relative_to(work.root.resolve()):
        raise NonRetryableError(f"{path} leaves the repository (a symlink)")


async def write_commit(work: Workcopy, path: str, data: bytes, message: bytes) -> None:
    """Write the file in the working copy and commit it (and nothing else) with the message."""
    check_inside(work, path)
    target = work.root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    await work.run("add", "--", path)
    await work.run("commit", "--quiet", "--no-verify", "--cleanup=verbatim", "-F", "-",
                   stdin=message)


class Landed(NamedTuple):
    """Where a step's change is: the commit that holds it, the file, the values it set."""

    branch: str
    sha: str
    path: str
    expected: dict[str, Any] | None
    flags: dict[str, Any]


def post_condition(ctx: StepContext, landed: Landed, doc: Any, on_remote: bool,
                   remote_head: str) -> dict[str, Any]:
    """The step's output once its commit is on the remote branch and the file there (`doc`)
    holds every value the change set; PostConditionFailed with what was observed otherwise."""
    sha, path = landed.sha, landed.path
    observed = {p: get_at(doc, p, None) for p in (landed.expected or {})}
    out = {"effector": "git", "git_action": "commit", "commit": sha, "branch": landed.branch,
           "file": path, "remote_head": remote_head, "observed": observed, **landed.flags}
    if not on_remote:
        raise PostConditionFailed(f"step {ctx.step.id}: commit {sha[:12]} is not on "
                                  f"{landed.branch} after the push (remote head "
                                  f"{remote_head[:12]})")
    wrong = {p: v for p, v in (landed.expected or {}).items() if observed.get(p) != v}
    if wrong:
        raise PostConditionFailed(
            f"step {ctx.step.id}: {path} at {sha[:12]} does not hold the change: expected "
            f"{ctx.redactor.value(wrong)}, observed {ctx.redactor.value(observed)}")
    return {**out, "verified": True}


async def _verify(ctx: StepContext, work: Workcopy, spec: BranchSpec, sha: str, path: str,
                  expected: dict[str, Any] | None, **flags: bool) -> dict[str, Any]:
    on_remote, head = await work.is_on_remote(sha)
    doc = load_file(await work.show(sha, path), path, ctx)
    return post_condition(ctx, Landed(spec.branch, sha, path, expected, dict(flags)), doc,
                          on_remote, head)


async def _revert(ctx: StepContext, work: Workcopy, spec: BranchSpec) -> dict[str, Any]:
    target_step = str(ctx.param("step") or ctx.step.id.removesuffix(".compensate"))
    keys = identity(ctx)
    done = await work.find(keys)
    if done is not None:
        return await _verify_revert(ctx, work, spec, done, None, already=True)
    made = await work.find({**keys, "NovaCron-Step": target_step})
    if made is None:  # nothing was committed: nothing to undo
        return {"reverted": None, "reason": f"no commit of step {target_step} on {spec.branch}"}
    subject = f"Revert {made[:12]}: undo step {target_step} of action {ctx.action_id}"
    for _ in range(ctx.config.effectors.git.push_attempts):
        code, _ = await work.run("revert", "--no-edit", "--no-commit", made, check=False)
        if code != 0:
            raise NonRetryableError(f"step {ctx.step.id}: {made[:12]} does not revert cleanly "
                                    f"on {spec.branch} (later commits changed the same lines)")
        await work.run("commit", "--quiet", "--no-verify", "--cleanup=verbatim", "-F", "-",
                       stdin=commit_message(subject, {**keys, "NovaCron-Reverts": made}))
        sha = await work.head()
        if await work.push(f"HEAD:refs/heads/{spec.branch}"):
            return await _verify_revert(ctx, work, spec, sha, made)
        await work.reset_to_remote()
    raise RetryableError(f"step {ctx.step.id}: {spec.branch} kept moving")


async def _verify_revert(ctx: StepContext, work: Workcopy, spec: BranchSpec, sha: str,
                         made: str | None, **flags: bool) -> dict[str, Any]:
    on_remote, head = await work.is_on_remote(sha)
    if not on_remote:
        raise PostConditionFailed(f"step {ctx.step.id}: revert {sha[:12]} is not on "
                                  f"{spec.branch} (remote head {head[:12]})")
    if made is not None:  # every file the reverted commit touched is as it was before it
        _, names = await work.run("diff", "--name-only", f"{made}^", made)
        for name in filter(None, names.splitlines()):
            if await work.show(sha, name) != await work.show(f"{made}^", name):
                raise PostConditionFailed(f"step {ctx.step.id}: {name} at {sha[:12]} is not "
                                          f"what it was before {made[:12]}")
    return {"commit": sha, "reverted": made, "branch": spec.branch, "remote_head": head,
            "verified": True, **flags}


async def _review(ctx: StepContext, work: Workcopy, spec: BranchSpec, sha: str, path: str,
                  expected: dict[str, Any]) -> dict[str, Any]:
    """Push a review branch, wait for a person's approval, then merge it into the branch."""
    if ctx.wait_for_approval is None:
        raise NonRetryableError(f"step {ctx.step.id}: review needs an approval channel")
    review = "novacron/review/" + re.sub(r"[^A-Za-z0-9._-]", "-", ctx.action_id)[:100]
    if not await work.push(f"+HEAD:refs/heads/{review}"):
        raise RetryableError(f"step {ctx.step.id}: could not push {review}")
    request_id = f"{ctx.action_id}:{ctx.step.id}"
    timeout = float(ctx.param("review_timeout", ctx.config.approval_timeout))
    await _ask(ctx, request_id, timeout, f"merge {review} ({sha[:12]}) into {spec.branch}")
    answer = await ctx.wait_for_approval(request_id, timeout)
    if answer != "approved":
        raise NonRetryableError(f"step {ctx.step.id}: review {request_id} {answer}")
    for _ in range(ctx.config.effectors.git.push_attempts):
        await work.run("merge", "--quiet", "--ff", "--no-edit", sha)
        merged = await work.head()
        if await work.push(f"HEAD:refs/heads/{spec.branch}"):
            return {**await _verify(ctx, work, spec, sha, path, expected), "merge": merged,
                    "review_branch": review}
        await work.reset_to_remote()
    raise RetryableError(f"step {ctx.step.id}: {spec.branch} kept moving")


async def _ask(ctx: StepContext, request_id: str, timeout: float, what: str) -> None:
    from datetime import timedelta

    await emit_event(ctx.emit, Approval.caused_by(
        ctx.parent, source=ctx.config.source, request_id=request_id, status="pending",
        reason=what, expires_at=utc_now() + timedelta(seconds=timeout),
        resource_id=str(getattr(ctx.parent, "resource_id", ""))))
    await emit_event(ctx.emit, Outcome.caused_by(
        ctx.parent, source=ctx.config.source, action_id=ctx.action_id, scope="step",
        step_id=ctx.step.id, status="waiting_approval", attempt=ctx.attempt,
        output={"request_id": request_id, "timeout_s": timeout}))
