"""Mutation testing of the rule modules (mutmut), module by module: killed / survived per module
in bench/results/mutation.json. `python bench/mutation.py [--module NAME ...] [--report-only]`."""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "mutation.json"

MODULES: dict[str, tuple[str, list[str]]] = {
    # name: (file, mutant name patterns). Only the functions that carry the rule are mutated
    # where a module also holds I/O loops no unit test drives (streams/ingest.py's consumer).
    "drift severity": ("agents/drift/severity.py", ["agents.drift.severity.*"]),
    "ingest limits": ("agents/ingest.py", ["agents.ingest.*"]),
    "ingest routing": ("streams/ingest.py", [
        f"streams.ingest.xǁSinkPipelineǁ{f}__*"
        for f in ("_process", "_unstorable", "_dead_letter", "_flush")]),
    "audit verify": ("sinks/audit.py", ["sinks.audit.*"]),
    "executor journal": ("runbooks/journal.py", ["runbooks.journal.*"]),
    "compliance evaluation": ("policies/compliance/evaluator.py",
                              ["policies.compliance.evaluator.x[_ǁ][!F]*"]),  # not FakeEvaluator
    "policy combine (gate)": ("policies/result.py", ["policies.result.*"]),
    "safety masks": ("models/dqn/safety.py", ["models.dqn.safety.*"]),
}

STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped",
          36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout",
          None: "not checked"}

REASONS_FILE = ROOT / "bench" / "mutation_survivors.json"
"""Why each remaining survivor is left: {mutant name: reason} (equivalent mutants mostly)."""


def run_module(name: str, children: int) -> float:
    """Run mutmut over one module's mutants; returns the wall time in seconds."""
    _, patterns = MODULES[name]
    env = {**os.environ, "HYPOTHESIS_PROFILE": "mutation", "PYTHONPATH": str(ROOT)}
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(children),
                    *patterns], cwd=ROOT, env=env, check=False,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def collect(name: str) -> dict[str, Any]:
    """Counts by status and the surviving mutants of one module, from mutmut's result files."""
    path, patterns = MODULES[name]
    meta = ROOT / "mutants" / (path + ".meta")
    if not meta.exists():
        return {"file": path, "total": 0, "note": "not run"}
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    mine = {k: v for k, v in codes.items() if any(fnmatch.fnmatchcase(k, p) for p in patterns)}
    counts = Counter(STATUS.get(v, "suspicious") for v in mine.values())
    total = len(mine)
    detected = counts["killed"] + counts["timeout"]
    reasons = json.loads(REASONS_FILE.read_text()) if REASONS_FILE.exists() else {}
    survivors = sorted(k for k, v in mine.items() if STATUS.get(v) in ("survived", "no tests"))
    return {
        "file": path, "total": total, "killed": counts["killed"], "timeout": counts["timeout"],
        "survived": counts["survived"], "no_tests": counts["no tests"],
        "not_checked": counts["not checked"],
        "killed_pct": round(100 * detected / total, 1) if total else None,
        "survivors": {k: reasons.get(k, "not yet explained") for k in survivors},
    }


README = ROOT / "bench" / "README.md"
_START, _END = "<!-- mutation table -->", "<!-- /mutation table -->"


def table(report: dict[str, Any]) -> str:
    """The Markdown table of bench/README.md: one row per module."""
    rows = ["| module | file | mutants | killed | timeout | survived | no tests | score |",
            "|---|---|---|---|---|---|---|---|"]
    for name, r in report["modules"].items():
        if not r.get("total"):
            rows.append(f"| {name} | `{r['file']}` | – | – | – | – | – | not run |")
            continue
        rows.append(f"| {name} | `{r['file']}` | {r['total']} | {r['killed']} | "
                    f"{r['timeout']} | {r['survived']} | {r['no_tests']} | "
                    f"**{r['killed_pct']} %** |")
    return "\n".join(rows)


def write_table(report: dict[str, Any]) -> None:
    """Replace the table between the markers in bench/README.md."""
    text = README.read_text()
    if _START not in text:
        return
    head, rest = text.split(_START, 1)
    tail = rest.split(_END, 1)[1]
    README.write_text(f"{head}{_START}\n{table(report)}\n{_END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--module", action="append", choices=sorted(MODULES),
                        help="run only this module (repeatable); default: all, one by one")
    parser.add_argument("--report-only", action="store_true",
                        help="rebuild the report from the last runs without running mutmut")
    parser.add_argument("--children", type=int, default=2, help="parallel mutants")
    args = parser.parse_args()
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"modules": {}}
    seconds: dict[str, float] = {k: v.get("seconds", 0.0) for k, v in old["modules"].items()}
    for name in args.module or list(MODULES):
        if not args.report_only:
            seconds[name] = round(run_module(name, args.children), 1)
    modules = {}
    for name in MODULES:
        row = collect(name)
        row["seconds"] = seconds.get(name)
        modules[name] = row
        print(f"{name:24} {row.get('killed_pct')}% of {row['total']} "
              f"(survived {row.get('survived')}, no tests {row.get('no_tests')})")
    report = {"tool": "mutmut 3.7.0", "score": "(killed + timeout) / total mutants",
              "hypothesis_profile": "mutation (derandomised, no shrinking)", "modules": modules}
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    write_table(report)


if __name__ == "__main__":
    main()
