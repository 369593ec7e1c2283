"""The git side of the GitOps helper: a bare mirror of one branch, and the files of a commit.

Only the `git` binary with argv lists (never a shell), no credential prompts, a timeout on every
call. The mirror lives under `<data_dir>/gitops/` as a cache: losing it costs one full fetch.
Files are read with `git archive` from the mirror, so only committed content counts; symlinks,
oversized and non-UTF-8 files are refused with a reason instead of followed or guessed.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from agents.gitops import FOLDERS, GitopsConfig
from schemas.errors import BackendUnavailable, NonRetryableError

__all__ = ["CommitFiles", "GitMirror", "run_git"]

_SUFFIXES = (".rego", ".sig", ".yaml", ".yml", ".json")


def _command(args: list[str]) -> str:
    """The git subcommand of an argv (after `--git-dir DIR` / `-C DIR`), for messages."""
    rest = list(args)
    while rest and rest[0] in ("--git-dir", "-C"):
        rest = rest[2:]
    return rest[0] if rest else "git"


def run_git(args: list[str], timeout: float, cwd: Path | None = None) -> bytes:
    """Run `git ARGS`; BackendUnavailable when it fails (a network error is retried next poll)."""
    env = os.environ | {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True,  # noqa: S603,S607
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendUnavailable(f"git {_command(args)} failed: {exc}") from exc
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        why = detail[-1] if detail else f"exit code {proc.returncode}"
        raise BackendUnavailable(f"git {_command(args)} failed: {why}")
    return proc.stdout


@dataclass
class CommitFiles:
    """A commit's metadata and the text of its files under the five folders."""

    sha: str
    author: str = ""
    message: str = ""
    files: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class GitMirror:
    """A bare repository holding the followed branch of `config.url`."""

    def __init__(self, config: GitopsConfig, data_dir: Path) -> None:
        self.config = config
        self.dir = data_dir / "gitops" / f"{config.repo}.git"

    def _git(self, *args: str) -> bytes:
        return run_git(["--git-dir", str(self.dir), *args], self.config.git_timeout_seconds)

    def fetch(self) -> str:
        """Fetch the branch; its head commit's full sha."""
        if not self.config.url:
            raise NonRetryableError("gitops.url is not set: no repository to follow")
        if not (self.dir / "HEAD").exists():
            self.dir.parent.mkdir(parents=True, exist_ok=True)
            run_git(["init", "--quiet", "--bare", str(self.dir)], self.config.git_timeout_seconds)
        ref = f"refs/heads/{self.config.branch}"
        self._git("fetch", "--quiet", "--prune", "--no-tags", "--", self.config.url,
                  f"+{ref}:{ref}")
        return self._git("rev-parse", "--verify", f"{ref}^{{commit}}").decode().strip()

    def read(self, sha: str) -> CommitFiles:
        """Metadata and files of a fetched commit."""
        meta = self._git("log", "-1", "--format=%an <%ae>%x1f%s", sha).decode("utf-8", "replace")
        author, _, subject = meta.strip().partition("\x1f")
        found = CommitFiles(sha, author, subject)
        prefix = f"{self.config.path}/" if self.config.path else ""
        wanted = [f"{prefix}{f}" for f in FOLDERS if self._exists(sha, f"{prefix}{f}")]
        if wanted:
            tar = self._git("archive", "--format=tar", sha, "--", *wanted)
            self._extract(tar, prefix, found)
        return found

    def _exists(self, sha: str, path: str) -> bool:
        return bool(self._git("ls-tree", "--name-only", sha, "--", path).strip())

    def _extract(self, tar: bytes, prefix: str, found: CommitFiles) -> None:
        cfg = self.config
        with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as archive:
            members = [m for m in archive.getmembers() if not m.isdir()]
            if len(members) > cfg.max_files:
                found.problems.append(f"{len(members)} files under the config folders, more "
                                      f"than gitops.max_files ({cfg.max_files})")
                return
            for m in members:
                self._member(archive, m, m.name.removeprefix(prefix), found)

    def _member(self, archive: tarfile.TarFile, m: tarfile.TarInfo, path: str,
                found: CommitFiles) -> None:
        if not path.endswith(_SUFFIXES):
            return  # READMEs, images: not configuration
        if not m.isfile():
            found.problems.append(f"{path}: not a regular file (symlinks are not followed)")
        elif m.size > self.config.max_file_bytes:
            found.problems.append(f"{path}: {m.size} bytes, more than gitops.max_file_bytes")
        else:
            data = archive.extractfile(m)
            try:
                found.files[path] = data.read().decode("utf-8") if data else ""
            except UnicodeDecodeError:
                found.problems.append(f"{path}: not UTF-8 text")
