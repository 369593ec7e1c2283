"""Source trees of other revisions, for benchmarks that compare before and after in one run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def export_tree(rev: str, into: Path) -> Path:
    """The source tree of `rev`, unpacked with `git archive` (the checkout is not touched)."""
    archive = into / f"{rev.replace('/', '_')}.tar"
    with archive.open("wb") as fh:
        subprocess.run(["git", "archive", rev], cwd=ROOT, stdout=fh, check=True)
    tree = into / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def before_edge_rules() -> str:
    """The commit before `schemas/edge.py` (the edge rules) was added, or HEAD if it never was."""
    added = subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=%H", "--", "schemas/edge.py"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()
    return f"{added[-1]}~1" if added else "HEAD"


def resolve(rev: str) -> str:
    """The full commit id of `rev`."""
    return subprocess.run(["git", "rev-parse", rev], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


def run_workload(script: str, tree: Path, *args: str) -> dict[str, Any]:
    """Run `script --workload ARGS` in a fresh interpreter importing from `tree`; the JSON object
    it prints last."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    proc = subprocess.run([sys.executable, script, "--workload", *args], cwd=tree, env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"workload failed in {tree}:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))
