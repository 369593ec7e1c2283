"""The git working copy of `git` steps (runbooks/steps/gitcli.py) on a real local remote."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runbooks.effectors import GitConfig
from runbooks.interpolate import Redactor
from runbooks.steps.gitcli import GitError, clone
from tests.unit.effector_support import ENV, bare_repo, git

RAW = b"replicas: 3\n# \xff\xfe not UTF-8\n"


def _remote(tmp_path: Path) -> tuple[Path, str]:
    remote = bare_repo(tmp_path, {"services/web.yaml": {"replicas": 2}, "docs/a.txt": "a\n"})
    work = tmp_path / "seed"
    git("clone", "--quiet", str(remote), str(work))
    (work / "services" / "raw.yaml").write_bytes(RAW)
    git("add", "--all", cwd=work)
    git("commit", "--quiet", "-m", "raw bytes", cwd=work)
    git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=work)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, env=ENV, capture_output=True,
                          text=True, check=True).stdout.strip()
    return remote, head


async def test_a_fresh_clone_knows_the_remote_head_without_a_fetch(tmp_path: Path) -> None:
    remote, head = _remote(tmp_path)
    async with clone(GitConfig(), str(remote), "main", Redactor()) as work:
        assert await work.head("origin/main") == head


async def test_show_returns_a_file_s_exact_bytes_or_none(tmp_path: Path) -> None:
    remote, head = _remote(tmp_path)
    async with clone(GitConfig(), str(remote), "main", Redactor()) as work:
        assert await work.show(head, "services/raw.yaml") == RAW  # not decoded, not replaced
        assert await work.show("HEAD", "docs/a.txt") == b"a\n"
        assert await work.show("HEAD", "services/missing.yaml") is None
        assert await work.show("HEAD~1", "services/raw.yaml") is None  # not there yet
        assert await work.show("HEAD", "empty.yaml") is None


async def test_show_refuses_what_is_not_one_file(tmp_path: Path) -> None:
    remote, _ = _remote(tmp_path)
    async with clone(GitConfig(), str(remote), "main", Redactor()) as work:
        with pytest.raises(GitError, match="tree"):
            await work.show("HEAD", "services")  # a folder: never read as a document
        with pytest.raises(GitError, match="newline"):
            await work.show("HEAD", "docs/a.txt\nHEAD:services/web.yaml")
