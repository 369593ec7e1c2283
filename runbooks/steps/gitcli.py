"""A git working copy driven through the git CLI (argv only, never a shell), for `git` steps.

Every command runs with prompts off and the `ext::` transport disabled (a repository URL must not
be able to start a program), in a fresh clone per step attempt, so concurrent actions never
share a working tree.
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

__all__ = ["GitError", "Workcopy", "clone", "trailers"]

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
        await self.run("reset", "--quiet", "--hard", f"origin/{self.branch}")

    async def find(self, keys: dict[str, str], ref: str | None = None) -> str | None:
        """The newest commit on the branch whose trailers hold every key: value given."""
        first = next(iter(keys.items()))
        code, out = await self.run(
            "log", "--format=%H%x1f%B%x1e", "--fixed-strings", f"--grep={first[0]}: {first[1]}",
            ref or f"origin/{self.branch}", check=False)
        for record in out.split("\x1e") if code == 0 else []:
            sha, _, body = record.strip().partition("\x1f")
            found = trailers(body)
            if sha and all(found.get(k) == v for k, v in keys.items()):
                return sha
        return None

    async def is_on_remote(self, sha: str) -> tuple[bool, str]:
        """(whether the commit is on the remote branch now, the remote head)."""
        head = await self.fetch()
        code, _ = await self.run("merge-base", "--is-ancestor", sha, head, check=False)
        return code == 0, head

    async def show(self, sha: str, path: str) -> bytes | None:
        """A file's bytes at a commit, or None when it does not exist there (one `cat-file
        --batch` process: an action reads files several times, and each git process costs a
        few milliseconds of CPU)."""
        name = f"{sha}:{path}"
        if "\n" in name:  # one object name per line on --batch's input
            raise GitError(f"cannot read {name!r}: a newline in the name")
        _, out = await self.run_bytes("cat-file", "--batch", stdin=name.encode() + b"\n")
        header, _, rest = out.partition(b"\n")
        fields = header.split(b" ")
        if len(fields) == 3 and fields[1] == b"blob" and fields[2].isdigit():
            return rest[:int(fields[2])]
        if header.endswith(b" missing"):
            return None
        raise GitError(f"cannot read {name!r}: git cat-file says {header[:200]!r}")

    async def push(self, refspec: str) -> bool:
        """Push; False when the remote refused because the branch moved (fetch and retry)."""
        code, _ = await self.run("push", "--quiet", "--porcelain", "origin", refspec, check=False)
        if code == 0:
            return True
        await self.fetch()  # a rejected push: the caller re-applies on the new head
        return False


@contextlib.asynccontextmanager
async def clone(config: GitConfig, remote: str, branch: str, redactor: Redactor
                ) -> AsyncIterator[Workcopy]:
    """A fresh clone of `branch` in a private temporary folder, removed afterwards; its
    `origin/<branch>` is the remote's head as of the clone (no fetch is needed right after)."""
    folder = Path(tempfile.mkdtemp(prefix="novacron-git-"))
    try:
        work = Workcopy(config, folder / "wc", remote, branch, redactor)
        await work.run("clone", "--quiet", "--no-tags", "--single-branch", "--branch", branch,
                       "--", remote, str(work.root), cwd=folder)
        yield work
    finally:
        shutil.rmtree(folder, ignore_errors=True)
