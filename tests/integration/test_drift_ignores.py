"""Drift ignore rules live on the `drift-ignores` topic: the CLI writes them from any machine,
running govern workers apply them, and a restarted worker still has them."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from schemas import ConfigChange, DesiredState, DriftFinding
from tests.integration.conftest import wait_until
from tests.integration.records import cli, committed, events, send_events

pytestmark = pytest.mark.kafka
BASE: dict[str, Any] = {"name": "web", "ingress": [
    {"port": 443, "cidr": "10.0.0.0/8", "description": "https from the office"}]}


def noted(note: str) -> ConfigChange:
    """The baseline with only a rule description edited (in the console)."""
    return ConfigChange(resource_id="sg-web", resource_type="aws_security_group",
                        change_source="console", config={**BASE, "ingress": [
                            {**BASE["ingress"][0], "description": note}]})


def _rules(url: str) -> float | None:
    found = re.search(r"^novacron_drift_ignore_rules (\S+)$",
                      httpx.get(f"{url}/metrics", timeout=10).text, re.M)
    return float(found.group(1)) if found else None


def _judged(cfg, change: ConfigChange) -> list[DriftFinding] | None:  # type: ignore[no-untyped-def]
    """The findings of a change once the drift agent has handled it, else None."""
    at = send_events(cfg, change)[0]

    def handled() -> bool:  # committed after the findings are sent: nothing is still in flight
        return committed(cfg, "govern", "config", at[0]) > at[1]

    wait_until(handled, what=f"the drift agent to handle {change.event_id}")
    return [f for f in events(cfg, DriftFinding) if f.causation_id == change.event_id]


def test_ignore_rules_reach_running_workers_and_survive_a_restart(worker_factory, kafka_cfg
                                                                  ) -> None:  # type: ignore[no-untyped-def]
    send_events(kafka_cfg, DesiredState(resource_id="sg-web", resource_type="aws_security_group",
                                        config=BASE))
    govern = worker_factory("govern", NOVACRON_HOST__SESSION_TIMEOUT_MS="6000")
    added = cli(kafka_cfg, "drift", "ignore", "add", "/ingress/*/description", "-t",
                "aws_security_group", "-r", "people annotate rules in the console")
    assert added.returncode == 0, added.stdout + added.stderr
    rule_id = added.stdout.split()[1].rstrip(":")
    wait_until(lambda: _rules(govern.url) == 1.0, what="the worker to apply the rule")
    assert _judged(kafka_cfg, noted("ana's note")) == []

    govern.kill()
    govern.start()
    assert _judged(kafka_cfg, noted("bob's note")) == []  # the rule came back with the worker
    listed = json.loads(cli(kafka_cfg, "drift", "ignore", "list", "--json").stdout)
    assert [(r["id"], r["reason"]) for r in listed] == [
        (rule_id, "people annotate rules in the console")]

    removed = cli(kafka_cfg, "drift", "ignore", "remove", rule_id)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    wait_until(lambda: _rules(govern.url) == 0.0, what="the worker to drop the rule")
    found = _judged(kafka_cfg, noted("carol's note"))
    assert found is not None and [f.status for f in found] == ["open"]
    # ingress is compared as a set: the edited rule is one element removed and one added
    assert set(found[0].changed_fields) == {"/ingress/0"}
