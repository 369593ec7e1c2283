"""Group commit for `git` commit steps: the steps waiting on one remote branch share a clone, a
push and the verifying fetch; each keeps its own commit, trailers and post-condition.

A step alone costs about twenty git processes (clone, log, read, add, commit, push, fetch, read
back), and steps on one branch at once refused each other's pushes and started over. Here the
first step to find its branch idle starts a batch of every change then waiting (up to
`effectors.git.max_batch`); steps that arrive meanwhile wait for the next one. In a batch each
change is applied on top of the one before, in arrival order, and committed with its own
trailers; one push carries them all and one fetch verifies them all. A change that cannot be
made (a file the step cannot read, a bound it would break) fails alone; a clone, commit, push or
fetch that fails fails every step of the batch, and each retries by its own retry policy.

The branch's committer keeps its clone between batches (`effectors.git.keep_clone`): fetched
before each batch, reset only when the remote moved, removed when anything fails. A batch runs
as a task of its own, so a step that gives up (its timeout) never breaks the others' batch.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbooks.effectors import GitConfig
from runbooks.runtime import StepContext
from runbooks.steps.edits import render_changes
from runbooks.steps.gitcli import Workcopy, clone_into
from runbooks.steps.gitrepo import (
    BranchSpec,
    Landed,
    check_inside,
    commit_message,
    dump_file,
    edit,
    identity,
    load_file,
    post_condition,
    render_message,
    render_path,
    run_git_change,
    write_commit,
)
from schemas.errors import NovacronError, RetryableError

__all__ = ["Change", "Committer", "committer", "run_git_commit"]


@dataclass(eq=False)
class Change:
    """One commit step's change, filled and checked before it joins a batch."""

    ctx: StepContext
    path: str
    changes: list[Any]
    keys: dict[str, str]
    subject: str
    future: asyncio.Future[dict[str, Any]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())

    def settle(self, result: dict[str, Any] | BaseException) -> None:
        """Give the step its output or its error (unless it gave up waiting)."""
        if self.future.done():
            return
        if isinstance(result, BaseException):
            self.future.set_exception(result)
        else:
            self.future.set_result(result)


@dataclass(eq=False)
class _Made:
    """Where a change went in this attempt: found on the branch (`sha`), or at the position'th
    commit of the batch (0: the branch head the batch started from)."""

    change: Change
    expected: dict[str, Any] | None
    flags: dict[str, Any]
    sha: str = ""
    position: int = 0


async def run_git_commit(ctx: StepContext) -> dict[str, Any]:
    """The `git` step's `commit`: through the branch's committer, or alone for a review."""
    spec = BranchSpec(ctx)
    if spec.review:  # waits for a person: never holds up the branch's other steps
        return await run_git_change(ctx, "commit")
    change = Change(ctx, render_path(str(ctx.step.parameters.get("file", "")), ctx),
                    render_changes(ctx.step.parameters.get("changes"), ctx.interp,
                                   f"step {ctx.step.id}"),
                    identity(ctx), render_message(str(ctx.step.parameters.get("message") or ""),
                                                  ctx))
    return await committer(ctx.config.effectors.git, spec.repo, spec.branch).submit(change)


_COMMITTERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop,
                                       dict[tuple[str, str, int], Committer]] = (
    weakref.WeakKeyDictionary())


def committer(config: GitConfig, repo: str, branch: str) -> Committer:
    """The event loop's committer of a remote branch (one per git settings object)."""
    table = _COMMITTERS.setdefault(asyncio.get_running_loop(), {})
    key = (repo, branch, id(config))
    if key not in table:  # the committer keeps `config` alive, so its id is not reused
        table[key] = Committer(config, repo, branch)
    return table[key]


class Committer:
    """The steps waiting on one remote branch, the batch running, and the kept clone."""

    def __init__(self, config: GitConfig, repo: str, branch: str) -> None:
        self.config, self.repo, self.branch = config, repo, branch
        self.waiting: list[Change] = []
        self._task: asyncio.Task[None] | None = None
        self._work: Workcopy | None = None
        self._clean_at = ""
        """The commit the kept clone's files are known to match ("" unknown: reset first)."""
        self._finalizer: weakref.finalize | None = None

    async def submit(self, change: Change) -> dict[str, Any]:
        """Wait for the change's batch; the step's output, or its error."""
        self.waiting.append(change)
        if self._task is None:
            self._start()
        try:
            return await asyncio.shield(change.future)
        except asyncio.CancelledError:
            if change in self.waiting:
                self.waiting.remove(change)
            change.future.cancel()  # a batch running with it commits it; a retry finds it
            raise

    def _start(self) -> None:
        size = self.config.max_batch
        batch, self.waiting = self.waiting[:size], self.waiting[size:]
        self._task = asyncio.get_running_loop().create_task(self._run(batch))
        self._task.add_done_callback(lambda task: self._finished(task, batch))

    def _finished(self, task: asyncio.Task[None], batch: list[Change]) -> None:
        self._task = None
        stopped = task.cancelled()  # the loop is closing: no new batch, nobody left waiting
        if stopped or task.exception() is not None:
            left, self.waiting = (self.waiting, []) if stopped else ([], self.waiting)
            for change in [*batch, *left]:
                change.settle(RetryableError(f"step {change.ctx.step.id}: the git batch on "
                                             f"{self.branch} was stopped"))
        if self.waiting:
            self._start()

    async def _run(self, batch: list[Change]) -> None:
        try:
            work = await self._checkout(batch[0].ctx)
            self._clean_at = await _commit_all(work, batch, self.config)
        except Exception as exc:
            self._discard()
            for change in batch:
                change.settle(_for(change, exc))
        except BaseException:  # cancelled: the loop is closing
            self._discard()
            raise
        finally:
            if not self.config.keep_clone:
                self._discard()

    async def _checkout(self, lead: StepContext) -> Workcopy:
        """The clone to work in, at the remote's head: the kept one after a fetch, or a new one."""
        if self._work is not None:
            self._work.redactor = lead.redactor
            if await self._work.fetch() != self._clean_at:  # moved, or left unknown
                await self._work.reset_hard()
                await self._work.run("clean", "--quiet", "-ffdx")
            return self._work
        folder = Path(tempfile.mkdtemp(prefix="novacron-git-"))
        self._finalizer = weakref.finalize(self, shutil.rmtree, folder, True)
        self._work = await clone_into(self.config, self.repo, self.branch, lead.redactor, folder)
        return self._work

    def _discard(self) -> None:
        """Forget the kept clone (a failed batch may have left it anywhere) and remove it."""
        if self._finalizer is not None:
            self._finalizer()
        self._work, self._finalizer, self._clean_at = None, None, ""


def _for(change: Change, exc: Exception) -> Exception:
    """The batch's error as this step's own (its own redaction; a fresh object per step)."""
    if isinstance(exc, NovacronError):
        try:
            return type(exc)(change.ctx.redactor.text(str(exc)))
        except TypeError:  # an error type that takes more than its message
            return exc
    return exc


async def _commit_all(work: Workcopy, batch: list[Change], config: GitConfig) -> str:
    """Commit every change of the batch that can be made, push once, verify each; the commit
    the working copy is left at with no other change ("" when not known)."""
    for _ in range(config.push_attempts):
        live = [c for c in batch if not c.future.done()]
        if not live:
            return ""
        made, commits = await _apply(work, live)
        if not commits or await work.push(f"HEAD:refs/heads/{work.branch}"):
            return await _verify_all(work, made, commits)
        # the branch moved (the push fetched it): apply the changes again on its head
        await work.reset_hard()
    for change in batch:
        change.settle(RetryableError(f"step {change.ctx.step.id}: {work.branch} kept moving; "
                                     f"{config.push_attempts} pushes were refused"))
    return ""


async def _apply(work: Workcopy, live: list[Change]) -> tuple[list[_Made], int]:
    """Commit each change on top of the one before; (where each went, commits made)."""
    found = await work.find_all([c.keys for c in live])
    paths = sorted({c.path for c, sha in zip(live, found, strict=True) if sha is None})
    files = dict(zip(paths, await work.show_many([("HEAD", p) for p in paths]), strict=True))
    made: list[_Made] = []
    seen: dict[tuple[tuple[str, str], ...], _Made] = {}
    commits = 0
    for change, sha in zip(live, found, strict=True):
        same = seen.get(tuple(change.keys.items()))
        if sha is not None:  # redelivered or resumed: the change is on the branch already
            made.append(_Made(change, None, {"already": True}, sha=sha))
            continue
        if same is not None:  # the same step twice in one batch: its first commit
            made.append(_Made(change, None, {"already": True}, position=same.position))
            continue
        try:
            before, after, expected = edit(change.ctx, change.path, change.changes,
                                           files[change.path])
            check_inside(work, change.path)
        except NovacronError as exc:  # this change alone cannot be made
            change.settle(exc)
            continue
        if after == before and files[change.path] is not None:
            made.append(_Made(change, expected, {"unchanged": True}, position=commits))
            continue
        data = dump_file(after, change.path)
        await write_commit(work, change.path, data, commit_message(change.subject, change.keys))
        files[change.path] = data
        commits += 1
        made.append(_Made(change, expected, {}, position=commits))
        seen[tuple(change.keys.items())] = made[-1]
    return made, commits


async def _verify_all(work: Workcopy, made: list[_Made], commits: int) -> str:
    """Every change's post-condition after one fetch: the batch's head on the remote branch
    (each change's commit is in its history), each file at its commit holding the change."""
    line = await work.commits(commits + 1)  # newest first: line[commits] is the starting head
    for m in made:
        m.sha = m.sha or line[commits - m.position]
    on_remote, remote_head = await work.is_on_remote(line[0])
    docs = await work.show_many([(m.sha, m.change.path) for m in made])
    for m, raw in zip(made, docs, strict=True):
        ctx = m.change.ctx
        flags = {**m.flags, "batch": len(made)}
        try:
            doc = load_file(raw, m.change.path, ctx)
            m.change.settle(post_condition(
                ctx, Landed(work.branch, m.sha, m.change.path, m.expected, flags), doc,
                on_remote, remote_head))
        except NovacronError as exc:
            m.change.settle(exc)
    return line[0] if on_remote else ""
