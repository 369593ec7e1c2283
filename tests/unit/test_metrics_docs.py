"""docs/metrics.md and deploy/prometheus agree with the code: every name documented, no alert on a
metric that does not exist, every seed name owned by the role the docs say."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from streams.seed_metrics import SEED_METRICS
from tests.metrics_docs import alert_rows, role_names, seed_rows

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
ROLES = ("ingest", "learn", "govern", "execute")


def _rules() -> list[dict[str, object]]:
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


def test_the_seed_table_names_each_metric_with_the_role_that_exports_it() -> None:
    exported = {spec.name: role for role, specs in SEED_METRICS.items() for spec in specs}
    assert seed_rows() == exported
    for name, role in exported.items():
        assert name in role_names(role)


def test_every_alert_is_documented_with_its_severity() -> None:
    alerts = {str(r["alert"]): r["labels"]["severity"] for r in _rules() if "alert" in r}  # type: ignore[index]
    assert alert_rows() == alerts


def test_alerts_only_use_documented_metrics() -> None:
    documented = set().union(*(role_names(r) for r in ROLES)) | {"up"}
    recorded = {str(r["record"]) for r in _rules() if "record" in r}
    for rule in _rules():
        for name in re.findall(r"[a-z_:]+(?=\{|\[| |\)|$)", str(rule["expr"]), re.M):
            if name.startswith(("novacron_", "process_", "novacron:")) or name == "up":
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                assert base in documented or name in recorded, f"{rule}: {name} is undocumented"
