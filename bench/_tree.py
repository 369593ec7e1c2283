"""Source trees of other revisions, for benchmarks that compare before and after in one run."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
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


def interleaved(script: str, baseline_rev: str, rounds: int, *args: str
                ) -> dict[str, list[dict[str, Any]]]:
    """`run_workload` of `baseline_rev`'s tree and of this one, alternately, `rounds` times each
    (so the machine's drift falls on both): the JSON objects per tree, "baseline" and "current"."""
    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "current": []}
    with tempfile.TemporaryDirectory(prefix="novacron-bench-") as tmp:
        trees = {"baseline": export_tree(baseline_rev, Path(tmp)), "current": ROOT}
        for _ in range(rounds):
            for name, tree in trees.items():
                runs[name].append(run_workload(script, tree, *args))
    return runs


def write_result(out: Path, result: dict[str, Any]) -> None:
    """Write a bench's result as JSON to `out` (its folder made if missing) and print it."""
    text = json.dumps(result, indent=2)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    print(text)


def comparison_args(parser: argparse.ArgumentParser, out: Path | None) -> None:
    """The options of a bench that runs this tree against a baseline revision (`interleaved`)."""
    parser.add_argument("--baseline-rev", default="HEAD", help="git revision of the baseline")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per tree")
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument("--workload", action="store_true", help=argparse.SUPPRESS)


def median_by_size(runs: dict[str, list[dict[str, float]]], sizes: list[int],
                   ndigits: int) -> dict[str, dict[str, float]]:
    """Per tree, the median over its rounds of each size's number (workloads keyed by size)."""
    return {name: {str(n): round(statistics.median(r[str(n)] for r in rs), ndigits)
                   for n in sizes} for name, rs in runs.items()}
