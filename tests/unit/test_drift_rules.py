"""Ignore rules: per type and path, array elements, expiry with an injected clock, YAML files."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agents.drift import DriftConfig, DriftEngine, IgnoreRule, IgnoreSet, load_ignores, save_ignores
from agents.drift.rules import DEFAULT_IGNORES_FILE
from schemas.errors import RejectedError

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A settable clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


SG = {
    "name": "web",
    "ingress": [
        {"port": 443, "description": "https"},
        {"port": 22, "description": "ssh"},
    ],
    "tags": ["a", "b", "c", "d"],
}


def variant(**changes: object) -> dict:
    cfg = copy.deepcopy(SG)
    cfg.update(changes)  # type: ignore[arg-type]
    return cfg


def engine(rules: list[IgnoreRule], clock: Clock | None = None, **cfg: object) -> DriftEngine:
    config = DriftConfig(default_ignores=False, **cfg)  # type: ignore[arg-type]
    return DriftEngine(config, IgnoreSet(rules), clock or Clock(T0))


def test_array_element_field_ignored_by_wildcard() -> None:
    cur = variant(
        ingress=[{"port": 443, "description": "HTTPS!"}, {"port": 22, "description": "x"}]
    )
    assert engine([], list_rules=()).compare_configs("sg", SG, cur).changed_fields == [
        "/ingress/0/description",
        "/ingress/1/description",
    ]
    eng = engine([IgnoreRule(path="/ingress/*/description")], list_rules=())
    report = eng.compare_configs("sg", SG, cur)
    assert not report.drifted
    assert report.total_leaves == 7  # name, 2 ports, 4 tags: descriptions are not counted


def test_array_element_field_ignore_in_set_mode() -> None:
    # Reordered and re-described rules: as a set with descriptions ignored there is no drift.
    cur = variant(ingress=[{"port": 22, "description": "new"}, {"port": 443, "description": "x"}])
    rules = [IgnoreRule(path="/ingress/*/description")]
    assert not engine(rules).compare_configs("sg", SG, cur).drifted
    cur2 = variant(ingress=[{"port": 22, "description": "new"}, {"port": 8443, "description": "x"}])
    report = engine(rules).compare_configs("sg", SG, cur2)
    assert {(c.path, c.op) for c in report.changes} == {
        ("/ingress/0", "removed"),
        ("/ingress/1", "added"),
    }
    assert report.changes[0].old == {"port": 443}  # ignored field stripped from the shown value


def test_single_array_element_ignored_by_index() -> None:
    cur = variant(tags=["a", "b", "c", "CHANGED"])
    assert engine([IgnoreRule(path="/tags/3")]).compare_configs("sg", SG, cur).drifted is False
    cur2 = variant(tags=["a", "B", "c", "CHANGED"])
    assert engine([IgnoreRule(path="/tags/3")]).compare_configs("sg", SG, cur2).changed_fields == [
        "/tags/1"
    ]


def test_ignore_rules_apply_per_resource_type() -> None:
    cur = variant(name="other")
    eng = engine([IgnoreRule(path="/name", resource_type="aws_*")])
    assert not eng.compare_configs("aws_security_group", SG, cur).drifted
    assert eng.compare_configs("google_compute_firewall", SG, cur).drifted


def test_expired_rules_stop_applying() -> None:
    clock = Clock(T0)
    rule = IgnoreRule(path="/name", reason="migration", expires_at=T0 + timedelta(hours=1))
    eng = engine([rule], clock)
    cur = variant(name="renamed")
    assert not eng.compare_configs("sg", SG, cur).drifted
    clock.now = T0 + timedelta(hours=1)
    assert eng.compare_configs("sg", SG, cur).changed_fields == ["/name"]


def test_rules_added_at_runtime_take_effect() -> None:
    eng = engine([])
    cur = variant(name="renamed")
    assert eng.compare_configs("sg", SG, cur).drifted
    eng.ignores.add(IgnoreRule(path="/name"))
    assert not eng.compare_configs("sg", SG, cur).drifted
    eng.ignores.remove(IgnoreRule(path="/name").rule_id)
    assert eng.compare_configs("sg", SG, cur).drifted


def test_naive_expiry_is_utc_and_rule_ids_are_stable() -> None:
    rule = IgnoreRule(path="/a", expires_at=datetime(2026, 1, 1))  # noqa: DTZ001
    assert rule.expires_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert rule.rule_id == IgnoreRule(path="/a", reason="other").rule_id
    assert rule.rule_id != IgnoreRule(path="/a", resource_type="x").rule_id


def test_invalid_pattern_is_rejected() -> None:
    with pytest.raises(ValueError):
        IgnoreRule(path="tags/3")


def test_remove_unknown_or_ambiguous_id_is_rejected() -> None:
    rules = IgnoreSet([IgnoreRule(path="/a"), IgnoreRule(path="/b")])
    with pytest.raises(RejectedError):
        rules.remove("zzzz")
    with pytest.raises(RejectedError):
        rules.remove("")  # a prefix of every id: ambiguous
    assert len(rules.rules) == 2


def test_yaml_round_trip(tmp_path: Path) -> None:
    file = tmp_path / "var" / "ignores.yaml"
    rules = IgnoreSet(
        [
            IgnoreRule(path="/tags/3", reason="flaky", expires_at=T0, created_by="ana"),
            IgnoreRule(path="**/etag", resource_type="aws_*"),
        ]
    )
    save_ignores(rules, file)
    loaded = load_ignores(file)
    assert loaded.rules == rules.rules
    assert load_ignores(tmp_path / "missing.yaml").rules == []


def test_bad_yaml_rule_is_reported_with_the_file(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text("ignores:\n  - {path: /a, colour: red}\n")
    with pytest.raises(RejectedError, match="bad.yaml"):
        load_ignores(file)


def test_default_ignores_cover_computed_fields() -> None:
    rules = load_ignores(DEFAULT_IGNORES_FILE)
    eng = DriftEngine(DriftConfig(), IgnoreSet(), Clock(T0))
    assert len(rules.rules) >= 20
    base = {
        "id": "i-1",
        "arn": "arn:1",
        "size": 2,
        "metadata": {
            "uid": "u1",
            "resourceVersion": "5",
            "generation": 3,
            "managedFields": [{"manager": "kubectl"}],
            "name": "web",
        },
        "status": {"phase": "Running"},
        "nested": {"last_modified": "t1", "etag": "e1"},
        "created_at": "t0",
        "updated_at": "t1",
        "tags_all": {"x": "y"},
    }
    cur = {
        "id": "i-2",
        "arn": "arn:2",
        "size": 2,
        "metadata": {
            "uid": "u2",
            "resourceVersion": "9",
            "generation": 4,
            "managedFields": [],
            "name": "web",
        },
        "status": {"phase": "Pending"},
        "nested": {"last_modified": "t2", "etag": "e2"},
        "created_at": "t5",
        "updated_at": "t6",
        "tags_all": {"x": "z"},
    }
    report = eng.compare_configs("kubernetes_deployment", base, cur)
    assert not report.drifted
    assert report.total_leaves == 2  # size and metadata/name
