"""Baselines from a git repository (path or URL) at a revision, via the `git` CLI (argv only)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from agents.drift.folder import baselines_from_folder
from schemas import DesiredState
from schemas.errors import NonRetryableError, RejectedError

__all__ = ["GitRunner", "GitSync", "SubprocessGit", "sync_git"]


class GitRunner(Protocol):
    """The I/O seam: run one git command, return stdout; raise NonRetryableError on failure."""

    def run(self, args: Sequence[str], cwd: Path | None = None) -> str: ...


class SubprocessGit:
    """Runs the real `git` binary with an argv list; never prompts for credentials."""

    def __init__(self, binary: str = "git", timeout_s: float = 300.0) -> None:
        self.binary = binary
        self.timeout_s = timeout_s

    def run(self, args: Sequence[str], cwd: Path | None = None) -> str:
        env = os.environ | {"GIT_TERMINAL_PROMPT": "0"}
        try:
            proc = subprocess.run(
                [self.binary, *args],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NonRetryableError(f"git {args[0]} failed: {exc}") from exc
        if proc.returncode != 0:
            raise NonRetryableError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout


@dataclass(frozen=True)
class GitSync:
    """What a sync produced."""

    commit: str
    """The full commit id the baselines were read at (recorded as `revision`)."""
    events: list[DesiredState]
    """One DesiredState per declared resource."""


def _checkout(git: GitRunner, source: str, rev: str | None, into: Path) -> str:
    if rev is not None and rev.startswith("-"):
        raise RejectedError(f"invalid revision {rev!r}")
    git.run(["clone", "--quiet", "--", source, str(into)])
    if rev is not None:
        try:
            git.run(["-C", str(into), "checkout", "--quiet", "--detach", rev])
        except NonRetryableError:
            # A branch other than the default exists only as a remote-tracking ref after clone.
            git.run(["-C", str(into), "checkout", "--quiet", "--detach", f"origin/{rev}"])
    return git.run(["-C", str(into), "rev-parse", "HEAD"]).strip()


def sync_git(
    source: str,
    rev: str | None = None,
    *,
    subdir: str = "",
    author: str = "gitops",
    git: GitRunner | None = None,
    workdir: Path | None = None,
) -> GitSync:
    """Clone `source` (a path or URL), check out `rev`, and read the baselines under `subdir`.

    Cloning (rather than reading a local path in place) means only committed files count and
    the recorded commit is exactly what was read.
    """
    runner = git or SubprocessGit()
    with tempfile.TemporaryDirectory(prefix="novacron-git-", dir=workdir) as tmp:
        checkout = Path(tmp) / "repo"
        commit = _checkout(runner, source, rev, checkout)
        folder = (checkout / subdir).resolve()
        if not folder.is_relative_to(checkout.resolve()) or not folder.is_dir():
            raise RejectedError(f"{subdir!r} is not a folder of the repository at {commit[:12]}")
        events = baselines_from_folder(folder, origin="git", revision=commit, author=author)
    return GitSync(commit, events)
