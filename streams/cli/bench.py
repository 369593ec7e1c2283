"""`novacron bench`: run the benchmarks of `bench/` (JSON results in bench/results/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer
from rich.console import Console

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
console = Console(stderr=True)


def bench(
    names: list[str] = typer.Argument(None, help="Benchmarks to run (default: all); see --list"),
    show: bool = typer.Option(False, "--list", help="List the benchmarks and exit"),
) -> None:
    """Run benchmarks; each measures a baseline in the same run, writes bench/results/NAME.json."""
    available = sorted(p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_"))
    if show:
        console.print("\n".join(available))
        return
    unknown = sorted(set(names or []) - set(available))
    if unknown:
        console.print(f"[red]unknown benchmark(s) {unknown}[/]; available: {', '.join(available)}")
        raise typer.Exit(2)
    failed = 0
    for name in names or available:
        console.rule(name)
        failed += subprocess.run([sys.executable, str(BENCH_DIR / f"{name}.py")]).returncode != 0
    raise typer.Exit(1 if failed else 0)


app = bench
