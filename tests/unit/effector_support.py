"""Helpers for effector tests: bare git repositories as config-repository remotes."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

__test__ = False  # helpers only

ENV = {**os.environ, "GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.com",
       "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@example.com"}


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                          check=True)
    return done.stdout


def bare_repo(root: Path, files: dict[str, Any], branch: str = "main") -> Path:
    """A bare repository (the remote) with one commit holding `files` (dicts become YAML)."""
    remote = root / "config.git"
    git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(remote))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        git("init", "--quiet", f"--initial-branch={branch}", cwd=work)
        for name, content in files.items():
            path = work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
        git("add", "--all", cwd=work)
        git("commit", "--quiet", "-m", "initial", cwd=work)
        git("push", "--quiet", str(remote), f"HEAD:refs/heads/{branch}", cwd=work)
    return remote


def commits(remote: Path, branch: str = "main") -> list[tuple[str, str]]:
    """(sha, full message) of every commit on the branch, newest first."""
    out = git("log", "--format=%H%x1f%B%x1e", branch, cwd=remote)
    return [tuple(r.strip().split("\x1f", 1)) for r in out.split("\x1e") if r.strip()]  # type: ignore[misc]


def read(remote: Path, path: str, ref: str = "main") -> Any:
    """A YAML file's content at a ref of the remote."""
    return yaml.safe_load(git("show", f"{ref}:{path}", cwd=remote))
