"""A git working copy driven through the git CLI (argv only, never a shell), for `git` steps.

Every command runs with prompts off and the `ext::` transport disabled (a repository URL must not
be able to start a program). A working copy is used by one batch of steps at a time: a fresh
clone (`clone`), or the clone a branch's committer keeps between batches
(`runbooks.steps.gitbatch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from runbooks import children
from runbooks.effectors import GitConfig
from runbooks.interpolate import Redactor
from schemas.errors import BackendUnavailable, NonRetryableError

__all__ = ["GitError", "Workcopy", "clone", "clone_into", "trailers"]

_TRAILER = re.compile(r"^([A-Za-z0-9-]+): (.*)$")
_ENV_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SSH_AUTH_SOCK", "GIT_SSH_COMMAND")


class GitError(NonRetryableError):
    """A git command failed for a reason retrying cannot fix."""


def trailers(message: str) -> dict[str, str]:
    """`Key: value` lines of a commit message's last paragraph."""
    last = message.strip().split("\n\n")[-1]
    found = {}
    for line in last.splitlines():
        m = _TRAILER.match(line.strip())
        if m:
            found[m.group(1)] = m.group(2).strip()
    return found


class Workcopy:
    """One clone of a remote branch; `run` calls git inside it."""

    def __init__(self, config: GitConfig, root: Path, remote: str, branch: str,
                 redactor: Redactor) -> None:
        self.config, self.root, self.remote, self.branch = config, root, remote, branch
        self.redactor = redactor

    def _env(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}
        name, mail = self.config.author_name, self.config.author_email
        env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": mail,
                    "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": mail,
                    "GIT_CONFIG_NOSYSTEM": "1"})
        return env

    async def run(self, *args: str, stdin: bytes | None = None, check: bool = True,
                  cwd: Path | None = None) -> tuple[int, str]:
        """(exit code, stdout) of `git ARGS`; GitError (or BackendUnavailable) when check fails."""
        code, out = await self.run_bytes(*args, stdin=stdin, check=check, cwd=cwd)
        return code, out.decode(errors="replace")

    async def run_bytes(self, *args: str, stdin: bytes | None = None, check: bool = True,
                        cwd: Path | None = None) -> tuple[int, bytes]:
        """`run` with stdout as bytes (file contents, not text)."""
        argv = [self.config.binary, "-c", "protocol.ext.allow=never",
                "-c", "core.hooksPath=/dev/null", *args]
        proc = await children.start(
            *argv, cwd=cwd or self.root, env=self._env(),
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), self.config.timeout)
        except BaseException:
            await children.kill_group(proc)  # git's own children too (ssh, a remote helper)
            raise
        code = proc.returncode or 0
        if check and code != 0:
            text = self.redactor.text(err.decode(errors="replace").strip())[-1000:]
            what = f"git {args[0]} failed ({code}): {text}"
            if any(s in text for s in ("Could not read from remote", "unable to access",
                                       "Connection refused", "timed out")):
                raise BackendUnavailable(what)
            raise GitError(what)
        return code, out

    async def head(self, ref: str = "HEAD") -> str:
        return (await self.run("rev-parse", "--verify", f"{ref}^{{commit}}"))[1].strip()

    async def fetch(self) -> str:
        """Fetch the branch; the remote's head commit id."""
        await self.run("fetch", "--quiet", "origin",
                       f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}")
        return await self.head(f"origin/{self.branch}")

    async def reset_to_remote(self) -> None:
        await self.fetch()
        await self.reset_hard()

    async def reset_hard(self) -> None:
        """The working copy at `origin/<branch>` as last fetched (own commits not pushed are
        dropped)."""
        await self.run("reset", "--quiet", "--hard", f"origin/{self.branch}")

    async def find(self, keys: dict[str, str], ref: str | None = None) -> str | None:
        """The newest commit on the branch whose trailers hold every key: value given."""
        return (await self.find_all([keys], ref))[0]

    async def find_all(self, wanted: list[dict[str, str]], ref: str | None = None
                       ) -> list[str | None]:
        """For each set of trailers, the newest commit on the branch holding them all (one
        `git log`, its `--grep`s on each set's first trailer)."""
        if not wanted:
            return []
        greps = [f"--grep={k}: {v}" for k, v in (next(iter(keys.items())) for keys in wanted)]
        code, out = await self.run("log", "--format=%H%x1f%B%x1e", "--fixed-strings", *greps,
                                   ref or f"origin/{self.branch}", check=False)
        found: list[str | None] = [None] * len(wanted)
        for record in out.split("\x1e") if code == 0 else []:
            sha, _, body = record.strip().partition("\x1f")
            have = trailers(body)
            for i, keys in enumerate(wanted):
                if sha and found[i] is None and all(have.get(k) == v for k, v in keys.items()):
                    found[i] = sha
        return found

    async def is_on_remote(self, sha: str) -> tuple[bool, str]:
        """(whether the commit is on the remote branch now, the remote head)."""
        head = await self.fetch()
        if head == sha:
            return True, head
        code, _ = await self.run("merge-base", "--is-ancestor", sha, head, check=False)
        return code == 0, head

    async def commits(self, count: int, ref: str = "HEAD") -> list[str]:
        """The ids of the newest `count` commits of `ref`'s first-parent line, newest first."""
        _, out = await self.run("rev-list", "--first-parent", f"--max-count={count}", ref)
        return out.split()

    async def show(self, sha: str, path: str) -> bytes | None:
        """A file's bytes at a commit, or None when it does not exist there."""
        return (await self.show_many([(sha, path)]))[0]

    async def show_many(self, names: list[tuple[str, str]]) -> list[bytes | None]:
        """Files' bytes at commits ((commit, path) pairs; None: not there), all through one
        `cat-file --batch` process: each git process costs milliseconds of CPU."""
        lines = [f"{sha}:{path}" for sha, path in names]
        bad = next((name for name in lines if "\n" in name), None)
        if bad is not None:  # one object name per line on --batch's input
            raise GitError(f"cannot read {bad!r}: a newline in the name")
        if not lines:
            return []
        _, out = await self.run_bytes("cat-file", "--batch",
                                      stdin="".join(n + "\n" for n in lines).encode())
        found, at = [], 0
        for name in lines:
            content, at = _batch_entry(out, at, name)
            found.append(content)
        return found

    async def push(self, refspec: str) -> bool:
        """Push; False when the remote refused because the branch moved (fetch and retry)."""
        code, _ = await self.run("push", "--quiet", "--porcelain", "origin", refspec, check=False)
        if code == 0:
            return True
        await self.fetch()  # a rejected push: the caller re-applies on the new head
        return False


def _batch_entry(out: bytes, at: int, name: str) -> tuple[bytes | None, int]:
    """One answer of `cat-file --batch` at offset `at`: (the blob's bytes or None, next offset)."""
    end = out.find(b"\n", at)
    header = out[at:end if end >= 0 else len(out)]
    fields = header.split(b" ")
    if len(fields) == 3 and fields[1] == b"blob" and fields[2].isdigit():
        size = int(fields[2])
        return out[end + 1:end + 1 + size], end + 2 + size  # the content, then a newline
    if end >= 0 and header.endswith(b" missing"):
        return None, end + 1
    raise GitError(f"cannot read {name!r}: git cat-file says {header[:200]!r}")


async def clone_into(config: GitConfig, remote: str, branch: str, redactor: Redactor,
                     folder: Path) -> Workcopy:
    """A clone of `branch` at `folder`/wc; its `origin/<branch>` is the remote's head as of the
    clone (no fetch is needed right after)."""
    work = Workcopy(config, folder / "wc", remote, branch, redactor)
    await work.run("clone", "--quiet", "--no-tags", "--single-branch", "--branch", branch,
                   "--", remote, str(work.root), cwd=folder)
    return work


@contextlib.asynccontextmanager
async def clone(config: GitConfig, remote: str, branch: str, redactor: Redactor
                ) -> AsyncIterator[Workcopy]:
    """A fresh clone of `branch` in a private temporary folder, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="novacron-git-"))
    try:
        yield await clone_into(config, remote, branch, redactor, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
