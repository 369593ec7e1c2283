"""`novacron eval`: score the anomaly detector with NAB and the forecaster against baselines."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from models.anomaly import AnomalyConfig, AnomalyDetector
from models.forecast_eval import (
    METHODS,
    SeriesResult,
    evaluate_series,
    is_real_series,
    summarise,
)
from models.nab.corpus import NabFile, evaluate_corpus, load_corpus, profiles_of
from schemas.errors import NonRetryableError

app = typer.Typer(help="Evaluate the online models on the Numenta Anomaly Benchmark (NAB) files.")
console = Console()

DATA_HELP = "NAB folder (with data/, labels/, config/), e.g. ../shared/data/nab"


def _load(data: Path, only: str | None) -> list[NabFile]:
    try:
        files = load_corpus(data, only)
    except NonRetryableError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    if not files:
        console.print(f"[red]error:[/red] no data/<category>/*.csv files under {data}")
        raise typer.Exit(2)
    return files


def _score_file(file: NabFile, config: AnomalyConfig) -> np.ndarray:
    detector = AnomalyDetector(config)
    return np.array([detector.score_learn({"value": float(v)}) for v in file.values])


@app.command("nab")
def nab(
    data: Path = typer.Option(..., "--data", help=DATA_HELP),
    only: str | None = typer.Option(None, help="Only files whose path contains this text."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the results as JSON."),
) -> None:
    """Stream every NAB file through the detector (one row at a time) and score it the NAB way.

    One corpus-wide threshold per profile is chosen by NAB's sweep; scores are normalised against
    the null detector (never fires) and the perfect detector.
    """
    files = _load(data, only)
    config = AnomalyConfig()
    scored = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("scoring", total=len(files))
        for file in files:
            progress.update(task, description=file.name)
            scored.append((file.labelled, _score_file(file, config)))
            progress.advance(task)
    result = evaluate_corpus(scored, profiles_of(data))
    table = Table(title="NAB raw score per file (at each profile's corpus threshold)")
    table.add_column("file", no_wrap=True, min_width=48)
    table.add_column("windows", justify="right")
    for name in result.profiles:
        table.add_column(name, justify="right")
    for i, (labelled, _) in enumerate(scored):
        row = [f"{result.profiles[p].files[i].score:.3f}" for p in result.profiles]
        table.add_row(labelled.name, str(len(labelled.windows)), *row)
    console.print(table)
    summary = Table(title=f"NAB normalised scores over {len(files)} files")
    for col in ("profile", "threshold", "raw", "null", "perfect", "normalised"):
        summary.add_column(col, justify="right")
    for p in result.profiles.values():
        summary.add_row(p.profile, f"{p.threshold:.4f}", f"{p.raw:.3f}", f"{p.null:.1f}",
                        f"{p.perfect:.1f}", f"[bold]{p.normalised:.2f}[/bold]")
    console.print(summary)
    if json_out:
        json_out.write_text(json.dumps(result.as_dict(), indent=2))


def _forecast_table(results: list[SeriesResult], horizon: int) -> Table:
    table = Table(title=f"Forecast error, horizon {horizon}: MAE (MAPE %)")
    table.add_column("series", no_wrap=True)
    table.add_column("rows", justify="right")
    for m in ("ours", "s-naive", "last"):
        table.add_column(m, justify="right")
    table.add_column("win")
    for r in results:
        cells = [f"{r.mae[m]:.4g} ({r.mape[m]:.0f})" for m in METHODS]
        short = r.name.split("/")[-1].removesuffix(".csv")
        table.add_row(short, str(r.rows), *cells, "yes" if r.beats_seasonal_naive else "no")
    return table


@app.command("forecast")
def forecast(
    data: Path = typer.Option(..., "--data", help=DATA_HELP),
    horizon: int = typer.Option(1, min=1, help="Steps ahead (rows) to forecast."),
    only: str | None = typer.Option(None, help="Only files whose path contains this text."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the results as JSON."),
) -> None:
    """MAE and MAPE of the forecaster vs seasonal-naive (same time yesterday) and last value.

    Runs on the real NAB series (CPU, network, disk, request counts, tweets, ad exchange); all
    methods are scored on the same rows (those that have a value 24 h earlier).
    """
    files = [f for f in _load(data, only) if is_real_series(f.name)]
    results = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("forecasting", total=len(files))
        for file in files:
            progress.update(task, description=file.name)
            results.append(evaluate_series(file, horizon))
            progress.advance(task)
    console.print(_forecast_table(results, horizon))
    summary = summarise(results)
    payload = {
        "horizon": horizon,
        "generated": datetime.now().astimezone().isoformat(timespec="seconds"),
        "summary": summary,
        "series": [{"name": r.name, "rows": r.rows, "mae": r.mae, "mape": r.mape} for r in results],
    }
    console.print_json(json.dumps(summary))
    if json_out:
        json_out.write_text(json.dumps(payload, indent=2))
