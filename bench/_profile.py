"""cProfile summaries of a bench workload on this tree and on a baseline tree, as text files."""

from __future__ import annotations

import io
import os
import pstats
import subprocess
import sys
import tempfile
from pathlib import Path

from _tree import ROOT, export_tree, resolve

RESULTS = Path(__file__).with_name("results")


def summary(prof: Path, title: str, top: int = 25) -> str:
    """The top functions by own time and by cumulative time, paths shortened to the tree."""
    out = io.StringIO()
    stats = pstats.Stats(str(prof), stream=out)
    stats.strip_dirs()
    out.write(f"{title}\n\n== by own time (tottime) ==\n")
    stats.sort_stats("tottime").print_stats(top)
    out.write("\n== by cumulative time ==\n")
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def profile_trees(script: Path, args: list[str], rev: str, name: str) -> list[Path]:
    """Run `script --profile-workload FILE ARGS` on both trees (the script profiles its measured
    loop into FILE); write the summaries to bench/results/NAME_profile_{baseline,current}.txt."""
    written = []
    with tempfile.TemporaryDirectory(prefix=f"novacron-{name}-profile-") as tmp:
        trees = {"baseline": export_tree(rev, Path(tmp)), "current": ROOT}
        for which, tree in trees.items():
            prof = Path(tmp) / f"{which}.prof"
            env = dict(os.environ, PYTHONPATH=str(tree))
            cmd = [sys.executable, str(script), "--profile-workload", str(prof), *args]
            proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True,
                                  check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"profile run failed in {tree}:\n{proc.stderr}")
            label = resolve(rev) if which == "baseline" else "this tree"
            title = f"{name}: cProfile of `{' '.join(args)}` on {which} ({label})"
            out = RESULTS / f"{name}_profile_{which}.txt"
            out.write_text(summary(prof, title))
            written.append(out)
    return written
