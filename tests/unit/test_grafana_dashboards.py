"""Grafana dashboards: valid dashboard JSON, and every panel's SQL runs on the real engine (chDB).

The ClickHouse data source plugin expands `$__timeFilter(col)` and friends on the Grafana server;
`expand_macros` produces the same text (grafana/clickhouse-datasource pkg/macros), so the SQL
tested here is the SQL the server receives. Queries go through the history reader factory
(`sinks.reader.open_reader`) on the folder with no writer open, i.e. the same read-only checks and
limits as `novacron sql` and /sql. chDB allows one data folder per process, so this module opens
one folder and closes it at module end.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas import (
    Action,
    Approval,
    ComplianceResult,
    ConfigChange,
    Decision,
    DriftFinding,
    Event,
    Insight,
    MetricSample,
    Outcome,
    PolicyVerdict,
)
from schemas.errors import RejectedError
from sinks.audit import AuditChain
from sinks.backend import ChdbBackend
from sinks.config import ClickHouseConfig
from sinks.ddl import TABLES, apply_ddl
from sinks.reader import HistoryReader, open_reader
from sinks.rows import format_datetime, to_row
from sinks.writer import BatchingSink
from tests.unit.test_sinks_examples import EXAMPLES, T0

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD_DIR = GRAFANA / "dashboards" / "novacron"
DB = "grafana_t"
START = T0 - timedelta(days=1)
END = max(datetime.now(UTC), T0) + timedelta(days=1)  # ingested_at is "now": cover it too
INTERVAL_S = 60
FAR_FUTURE = datetime(2099, 1, 1, tzinfo=UTC)


# ------------------------------------------------------------------ the plugin's macros

def _dt(t: datetime) -> str:
    return f"toDateTime({int(t.timestamp())})"


def _dt64(t: datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(t.timestamp() * 1000)})"


def _date(t: datetime) -> str:
    return f"toDate('{t:%Y-%m-%d}')"


def expand_macros(sql: str, start: datetime, end: datetime, interval_s: int, db: str) -> str:
    """What grafana-clickhouse-datasource sends for `sql`, plus the `${db}` dashboard variable."""

    def between(col: str, conv: Any) -> str:
        return f"{col} >= {conv(start)} AND {col} <= {conv(end)}"

    with_args = {
        "timeFilter": lambda c: between(c, _dt),
        "timeFilter_ms": lambda c: between(c, _dt64),
        "dateFilter": lambda c: between(c, _date),
        "timeInterval": lambda c: (
            f"toStartOfInterval(toDateTime({c}), INTERVAL {interval_s} second)"
        ),
        "timeInterval_ms": lambda c: (
            f"toStartOfInterval(toDateTime64({c}, 3), INTERVAL {interval_s * 1000} millisecond)"
        ),
    }
    plain = {
        "fromTime": _dt(start), "toTime": _dt(end), "fromTime_ms": _dt64(start),
        "toTime_ms": _dt64(end), "interval_s": str(interval_s),
    }

    def repl(m: re.Match[str]) -> str:
        name, arg = m.group(1), m.group(2)
        if arg is not None and name in with_args:
            return str(with_args[name](arg.strip()))
        if arg is None and name in plain:
            return plain[name]
        raise ValueError(f"unknown or misused macro $__{name}")

    out = re.sub(r"\$__(\w+)(?:\(([^()]*)\))?", repl, sql)
    out = out.replace("${db}", db)
    if "$" in out:
        raise ValueError(f"unexpanded template variable in: {out}")
    return out


def test_expand_macros_matches_the_plugin() -> None:
    t0, t1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 1, tzinfo=UTC)
    sql = (
        "SELECT $__timeInterval(ts) AS time FROM ${db}.t "
        "WHERE $__timeFilter(ts) AND $__interval_s > 0"
    )
    assert expand_macros(sql, t0, t1, 30, "d") == (
        "SELECT toStartOfInterval(toDateTime(ts), INTERVAL 30 second) AS time FROM d.t "
        "WHERE ts >= toDateTime(1767225600) AND ts <= toDateTime(1767229200) AND 30 > 0"
    )
    assert expand_macros("$__timeFilter_ms(ts)", t0, t1, 30, "d") == (
        "ts >= fromUnixTimestamp64Milli(1767225600000) "
        "AND ts <= fromUnixTimestamp64Milli(1767229200000)"
    )
    with pytest.raises(ValueError, match="unknown"):
        expand_macros("$__nope(ts)", t0, t1, 30, "d")
    with pytest.raises(ValueError, match="unexpanded"):
        expand_macros("SELECT $cluster", t0, t1, 30, "d")


# ------------------------------------------------------------------ the dashboard files

def _dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARD_DIR.glob("*.json"))}


DASHBOARDS = _dashboards()
TARGETS = [
    (name, panel, target)
    for name, dash in DASHBOARDS.items()
    for panel in dash["panels"]
    for target in panel["targets"]
]


def _datasource() -> dict[str, Any]:
    doc = yaml.safe_load((GRAFANA / "datasources" / "clickhouse.yaml").read_text())
    (ds,) = doc["datasources"]
    return ds


def test_the_dashboards_the_spec_asks_for_exist() -> None:
    titles = " ".join(d["title"] for d in DASHBOARDS.values()).lower()
    for topic in ("workflows", "self-optimisation", "decisions", "compliance", "drift", "pipeline"):
        assert topic in titles
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_is_a_valid_grafana_dashboard(name: str) -> None:
    dash = DASHBOARDS[name]
    assert dash["schemaVersion"] >= 36 and dash["title"]
    assert re.fullmatch(r"[\w-]{1,40}", dash["uid"])
    assert dash.get("id") is None  # provisioned dashboards must not pin a database id
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["db"]["query"] == "novacron"  # the default ClickHouseConfig.database
    ids = [p["id"] for p in dash["panels"]]
    assert len(set(ids)) == len(ids)
    cells: set[tuple[int, int]] = set()
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0
        xs, ys = range(g["x"], g["x"] + g["w"]), range(g["y"], g["y"] + g["h"])
        mine = {(x, y) for x in xs for y in ys}
        assert not mine & cells, f"panel {p['title']!r} overlaps another"
        cells |= mine


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_target_is_raw_sql_for_the_provisioned_datasource(name: str) -> None:
    ds = _datasource()
    want = {"type": ds["type"], "uid": ds["uid"]}
    for panel in DASHBOARDS[name]["panels"]:
        assert panel["datasource"] == want and panel["description"]
        for t in panel["targets"]:
            assert t["datasource"] == want and t["editorType"] == "sql"
            assert (t["queryType"], t["format"]) in {("timeseries", 0), ("table", 1)}
            assert "$__timeFilter(" in t["rawSql"], f"{panel['title']!r} ignores the time picker"


def test_pipeline_dashboard_counts_every_history_table() -> None:
    (pipeline,) = [d for d in DASHBOARDS.values() if "pipeline" in d["title"].lower()]
    by_title = {p["title"]: p["targets"][0]["rawSql"] for p in pipeline["panels"]}
    for title in ("Rows ingested per table", "Events per table"):
        for spec in TABLES.values():
            assert f"${{db}}.{spec.name} " in by_title[title], f"{title} misses {spec.name}"


# ------------------------------------------------------------------ the SQL on chDB

def _events() -> list[Event]:
    ex = EXAMPLES
    decision, action = ex["Decision"], ex["Action"]
    assert isinstance(action, Action)
    sample = ex["MetricSample"]
    at = {"event_time": T0 + timedelta(minutes=2)}
    extra: list[Event] = [
        MetricSample(event_time=T0 + timedelta(minutes=1), resource_id="vm-2", cluster="prod",
                     cpu_usage=40.0, memory_usage=50.0),
        ConfigChange(**at, resource_id="sg-web", resource_type="aws_security_group",
                     change_source="console", config={"ingress": []}),
        Insight.caused_by(sample, **at, resource_id="vm-1", kind="anomaly", value=0.97,
                          score=0.97, threshold=0.9),
        Insight.caused_by(sample, **at, resource_id="vm-1", kind="forecast", metric="cpu_usage",
                          value=75.0, lower=65.0, upper=85.0, horizon=3,
                          details={"quality": {"n": 40, "mae": 2.5, "mape": 4.0}}),
        Insight.caused_by(sample, **at, resource_id="vm-1", kind="recommendation",
                          metric="cpu_usage", value=65.0, confidence=0.8,
                          estimated_improvement=12.0, actions=["scale_down 1"],
                          details={"recommendation": "right_size", "reason": "idle"}),
        PolicyVerdict.caused_by(decision, **at, decision_id="d-2", resource_id="svc-b",
                                outcome="deny", allowed=False, violations=["max_vms"],
                                latency_ms=0.7),
        Approval.caused_by(decision, **at, request_id="d-2", status="pending",
                           expires_at=FAR_FUTURE),
        Approval.caused_by(decision, event_time=T0 + timedelta(minutes=5),
                           request_id=decision.event_id, status="approved", by="alice"),
        Outcome.caused_by(action, **at, action_id=action.action_id, scope="step",
                          step_id="scale", status="failed", attempt=2, duration_ms=40.0,
                          error="timeout talking to the API", action_type="scale_up"),
        Outcome.caused_by(action, **at, action_id="a-2", status="failed", duration_ms=90.0,
                          error="boom", action_type="restart", resource_id="svc-b"),
        Outcome.caused_by(action, **at, action_id="a-2", scope="step", step_id="sla",
                          status="sla_breached", action_type="restart"),
        Action.caused_by(decision, **at, action_id="a-2", resource_id="svc-b",
                         action_type="restart"),
        Decision.caused_by(sample, **at, resource_id="svc-b", decision_type="restart",
                           origin="drift", mode="shadow", confidence=0.5),
        ComplianceResult(**at, resource_id="aws_s3_bucket.logs", control_id="s3-encryption",
                         standards=["cis:2.1.2"], severity="HIGH", passed=True),
        DriftFinding(**at, resource_id="sg-web", resource_type="aws_security_group",
                     severity="CRITICAL", drift_ratio=0.5, changed_fields=["/ingress"],
                     status="remediated"),
    ]
    return [*ex.values(), *extra]


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HistoryReader]:
    path = tmp_path_factory.mktemp("chdb-grafana")
    cfg = ClickHouseConfig(path=path, database=DB)
    _write_history(cfg)
    # the writer is closed: the reader opens the folder itself, as `novacron sql` would
    reader = open_reader(cfg, sql_url="http://127.0.0.1:9")
    assert "read directly" in reader.where
    yield reader
    reader.close()


def _write_history(cfg: ClickHouseConfig) -> None:
    b = ChdbBackend(cfg.path)
    try:
        apply_ddl(b, cfg)
        sink = BatchingSink(b, DB, audit=AuditChain(), sleep=lambda s: None)
        events = _events()
        for i, e in enumerate(events):
            sink.add(e, e.topic, 0, i)
        sink.flush()
        # outside the time range, by event time and insert time: every panel must leave it out
        old = MetricSample(event_time=START - timedelta(days=30), resource_id="vm-old",
                           cpu_usage=99.0)
        b.insert_rows(f"{DB}.metric_samples",
                      [{**to_row(old), "ingested_at": format_datetime(old.event_time)}])
    finally:
        b.close()


def run_panel(backend: HistoryReader, sql: str) -> list[dict[str, Any]]:
    return backend.query(expand_macros(sql, START, END, INTERVAL_S, DB))


def _panel_sql(dashboard_word: str, title: str, ref: str = "A") -> str:
    for name, panel, target in TARGETS:
        if dashboard_word in name and panel["title"] == title and target["refId"] == ref:
            return str(target["rawSql"])
    raise KeyError(f"{dashboard_word}: no panel {title!r}")


@pytest.mark.parametrize(
    ("name", "panel", "target"), TARGETS,
    ids=[f"{n}:{p['title']}:{t['refId']}" for n, p, t in TARGETS],
)
def test_panel_sql_runs_on_chdb_and_returns_rows(backend, name, panel, target) -> None:
    rows = run_panel(backend, target["rawSql"])
    assert rows, f"{name}: {panel['title']!r} returned nothing over the inserted history"
    if target["queryType"] == "timeseries":
        # the plugin's time-series format needs a time column, sorted
        assert list(rows[0])[0] == "time"
        times = [r["time"] for r in rows]
        assert times == sorted(times)


def test_time_filter_leaves_out_rows_outside_the_range(backend) -> None:
    rows = run_panel(backend, _panel_sql("pipeline", "Events per table"))
    counts = {r["table_name"]: r["events"] for r in rows}
    assert set(counts) == {s.name for s in TABLES.values()}
    assert counts["metric_samples"] == 2  # the example, vm-2; not vm-old
    assert counts["dead_letters"] == 1
    ingested = run_panel(backend, _panel_sql("pipeline", "Rows ingested per table"))
    assert sum(r["ingested_rows"] for r in ingested if r["table_name"] == "metric_samples") == 2


def test_latest_state_panels_use_the_newest_event(backend) -> None:
    assert run_panel(backend, _panel_sql("decisions", "Pending approvals")) == [{"pending": 1}]
    rows = run_panel(backend, _panel_sql("decisions", "Approvals by final status"))
    by_status = {r["final_status"]: r for r in rows}
    assert by_status["approved"]["requests"] == 1 and by_status["pending"]["requests"] == 1
    assert by_status["approved"]["avg_seconds_to_decide"] == pytest.approx(300.0)
    assert run_panel(backend, _panel_sql("workflows", "Success rate")) == [{"success_pct": 50.0}]
    assert run_panel(backend, _panel_sql("drift", "Open drift")) == [{"open_resources": 1}]
    open_violations = run_panel(backend, _panel_sql("compliance", "Open violations"))
    assert open_violations == [{"open_violations": 1}]


def test_decision_log_joins_the_verdict(backend) -> None:
    log = run_panel(backend, _panel_sql("decisions", "Decision log"))
    verdicts = {r["decision_type"]: r["verdict"] for r in log}
    assert verdicts == {"scale_up": "allow", "restart": ""}  # svc-b's decision has no verdict


def test_panel_sql_is_read_only(backend) -> None:
    # the same guard the Grafana user and /sql get: a write would be refused, not run
    with pytest.raises(RejectedError):
        run_panel(backend, "SELECT 1 FROM ${db}.t WHERE $__timeFilter(event_time); DROP TABLE x")
