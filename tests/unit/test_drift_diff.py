"""Diff engine: canonical hashing, JSON pointers, list modes, leaf ratios and severity bands."""

from __future__ import annotations

import pytest

from agents.drift import (
    DriftConfig,
    DriftEngine,
    ListRule,
    Matcher,
    canonical_hash,
    format_pointer,
    normalise,
    parse_pointer,
)
from agents.drift.severity import SeverityBands, classify


def engine(**overrides: object) -> DriftEngine:
    cfg = DriftConfig(default_ignores=False, **overrides)  # type: ignore[arg-type]
    return DriftEngine(cfg)


def flat(n: int, changed: int = 0) -> dict[str, int]:
    return {f"f{i:03d}": (i + 1000 if i < changed else i) for i in range(n)}


# --- canonical form --------------------------------------------------------------------------


def test_canonical_hash_ignores_key_order_and_integral_floats() -> None:
    assert canonical_hash({"a": 1, "b": [1.0, 2]}) == canonical_hash({"b": [1, 2.0], "a": 1.0})
    assert canonical_hash({"a": 1.5}) != canonical_hash({"a": 1})


def test_empty_values_are_equivalent_by_default_and_distinct_when_strict() -> None:
    empties = [
        {"x": 1},
        {"x": 1, "a": None},
        {"x": 1, "a": ""},
        {"x": 1, "a": []},
        {"x": 1, "a": {}},
    ]
    assert len({canonical_hash(e) for e in empties}) == 1
    assert len({canonical_hash(e, empty_equivalent=False) for e in empties}) == 5


def test_bools_never_equal_numbers() -> None:
    assert normalise({"a": True}) == {"a": True}
    report = engine().compare_configs("t", {"a": True}, {"a": 1})
    assert [c.path for c in report.changes] == ["/a"]


# --- pointers and patterns -------------------------------------------------------------------


def test_pointer_escaping_round_trips_rfc6901_examples() -> None:
    assert format_pointer(["a/b", "m~n", 0]) == "/a~1b/m~0n/0"
    assert parse_pointer("/a~1b/m~0n/0") == ("a/b", "m~n", "0")
    assert parse_pointer("") == ()
    assert parse_pointer("/~01") == ("~1",)  # ~01 is "~1", not "/"
    with pytest.raises(ValueError):
        parse_pointer("no-slash")


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/ingress/*/description", ["ingress", "3", "description"], True),
        ("/ingress/*/description", ["ingress", "3", "port"], False),
        ("/tags/3", ["tags", "3"], True),
        ("/tags/3", ["tags", "2"], False),
        ("**/arn", ["a", "b", "arn"], True),
        ("**/arn", ["arn"], True),
        ("/status", ["status", "conditions", "0", "type"], True),
        ("/metadata/**", ["metadata"], True),
        ("/a/**/z", ["a", "b", "c", "z"], True),
        ("/a/**/z", ["a", "z"], True),
        ("**/*_at", ["spec", "created_at"], True),
        ("/a~1b", ["a/b"], True),
    ],
)
def test_matcher_patterns(pattern: str, path: list[str], expected: bool) -> None:
    assert Matcher([pattern]).match(path) is expected


def test_matcher_case_insensitive_for_sensitive_paths() -> None:
    assert Matcher(["**/*password*"], case_sensitive=False).match(["db", "MasterPassword"])
    assert not Matcher(["**/*password*"]).match(["db", "MasterPassword"])


# --- diff ------------------------------------------------------------------------------------


def test_changes_carry_paths_ops_and_values() -> None:
    base = {"name": "web", "tags": {"a/b": "1", "gone": "x"}, "ports": [80, 443]}
    cur = {"name": "web", "tags": {"a/b": "2", "new": "y"}, "ports": [80, 443, 8080]}
    report = engine().compare_configs("t", base, cur)
    got = {(c.path, c.op, c.old, c.new) for c in report.changes}
    assert got == {
        ("/tags/a~1b", "changed", "1", "2"),
        ("/tags/gone", "removed", "x", None),
        ("/tags/new", "added", None, "y"),
        ("/ports/2", "added", None, 8080),
    }
    # union of leaves: name, a/b, gone, new, ports/0..2 = 7; drifted = 4
    assert (report.total_leaves, report.drifted_leaves) == (7, 4)


def test_clean_config_takes_fast_path_with_equal_hashes() -> None:
    report = engine().compare_configs("t", {"a": 1, "b": [1, 2]}, {"b": [1.0, 2], "a": 1.0})
    assert not report.drifted
    assert report.baseline_hash == report.current_hash


def test_index_mode_reports_reordering_as_drift() -> None:
    report = engine(list_rules=()).compare_configs("t", {"l": ["a", "b"]}, {"l": ["b", "a"]})
    assert report.changed_fields == ["/l/0", "/l/1"]


def test_set_mode_ignores_order_and_reports_membership() -> None:
    rules = (ListRule(path="/zones", mode="set"),)
    eng = engine(list_rules=rules)
    assert not eng.compare_configs(
        "t", {"zones": ["a", "b", "c"]}, {"zones": ["c", "a", "b"]}
    ).drifted
    report = eng.compare_configs("t", {"zones": ["a", "b", "c"]}, {"zones": ["c", "d", "a"]})
    assert {(c.path, c.op, c.old, c.new) for c in report.changes} == {
        ("/zones/1", "removed", "b", None),
        ("/zones/1", "added", None, "d"),
    }


def test_set_mode_is_a_multiset() -> None:
    eng = engine(list_rules=(ListRule(path="/l", mode="set"),))
    report = eng.compare_configs("t", {"l": ["a", "a"]}, {"l": ["a"]})
    assert [(c.path, c.op) for c in report.changes] == [("/l/1", "removed")]


def test_key_mode_pairs_elements_by_key() -> None:
    rules = (ListRule(path="**/containers", mode="key", key="name"),)
    base = {
        "spec": {
            "containers": [{"name": "app", "image": "app:1"}, {"name": "side", "image": "s:1"}]
        }
    }
    cur = {
        "spec": {
            "containers": [{"name": "side", "image": "s:1"}, {"name": "app", "image": "app:2"}]
        }
    }
    report = engine(list_rules=rules).compare_configs("t", base, cur)
    assert [(c.path, c.op, c.old, c.new) for c in report.changes] == [
        ("/spec/containers/1/image", "changed", "app:1", "app:2")
    ]


def test_key_mode_added_and_removed_elements() -> None:
    rules = (ListRule(path="/rules", mode="key", key="port"),)
    base = {"rules": [{"port": 22, "cidr": "10.0.0.0/8"}, {"port": 80, "cidr": "0.0.0.0/0"}]}
    cur = {"rules": [{"port": 80, "cidr": "0.0.0.0/0"}, {"port": 443, "cidr": "0.0.0.0/0"}]}
    report = engine(list_rules=rules).compare_configs("t", base, cur)
    assert {(c.path, c.op) for c in report.changes} == {
        ("/rules/0", "removed"),
        ("/rules/1", "added"),
    }


def test_key_mode_falls_back_to_index_on_duplicate_keys() -> None:
    rules = (ListRule(path="/l", mode="key", key="k"),)
    base = {"l": [{"k": 1, "v": "a"}, {"k": 1, "v": "b"}]}
    cur = {"l": [{"k": 1, "v": "b"}, {"k": 1, "v": "a"}]}
    report = engine(list_rules=rules).compare_configs("t", base, cur)
    assert report.changed_fields == ["/l/0/v", "/l/1/v"]


def test_list_rules_are_per_resource_type() -> None:
    rules = (ListRule(path="/l", mode="set", resource_type="aws_*"),)
    eng = engine(list_rules=rules)
    assert not eng.compare_configs("aws_x", {"l": [1, 2]}, {"l": [2, 1]}).drifted
    assert eng.compare_configs("gcp_x", {"l": [1, 2]}, {"l": [2, 1]}).drifted


def test_type_change_counts_both_sides_as_drifted() -> None:
    report = engine().compare_configs("t", {"a": {"x": 1, "y": 2}, "b": 1}, {"a": "flat", "b": 1})
    assert [(c.path, c.op) for c in report.changes] == [("/a", "changed")]
    assert (report.drifted_leaves, report.total_leaves) == (3, 4)


# --- severity --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changed", "severity"),
    [
        (51, "CRITICAL"),
        (50, "HIGH"),
        (26, "HIGH"),
        (25, "MEDIUM"),
        (11, "MEDIUM"),
        (10, "LOW"),
        (6, "LOW"),
        (5, "INFO"),
        (1, "INFO"),
    ],
)
def test_severity_bands_by_drifted_share(changed: int, severity: str) -> None:
    report = engine().compare_configs("novacron_vm", flat(100), flat(100, changed))
    assert report.ratio == pytest.approx(changed / 100)
    assert report.severity == severity


@pytest.mark.parametrize(
    "path",
    [
        ("security_groups",),
        ("ingress",),
        ("iam_role",),
        ("encryption", "enabled"),
        ("block_public_acls",),
        ("db", "master_password"),
        ("auth", "mode"),
        ("kms_key_id",),
    ],
)
def test_any_sensitive_field_change_is_critical(path: tuple[str, ...]) -> None:
    base = flat(100)
    cur = flat(100)
    node_b: dict = base
    node_c: dict = cur
    for seg in path[:-1]:
        node_b = node_b.setdefault(seg, {})
        node_c = node_c.setdefault(seg, {})
    node_b[path[-1]] = "old"
    node_c[path[-1]] = "new"
    report = engine().compare_configs("novacron_vm", base, cur)
    assert report.ratio < 0.05 and report.sensitive
    assert report.severity == "CRITICAL"


def test_sensitive_paths_are_configurable() -> None:
    base, cur = flat(100) | {"color": "red"}, flat(100) | {"color": "blue"}
    assert engine().compare_configs("t", base, cur).severity == "INFO"
    assert (
        engine(sensitive_paths=("/color",)).compare_configs("t", base, cur).severity == "CRITICAL"
    )
    quiet = engine(sensitive_paths=(), sensitive_resource_types=())
    sg = {"ingress": [{"port": 22}]} | flat(100)
    assert quiet.compare_configs("t", sg, sg | {"ingress": [{"port": 23}]}).severity == "INFO"


def test_sensitive_resource_type_makes_any_change_critical() -> None:
    report = engine().compare_configs("aws_security_group", flat(100), flat(100, 1))
    assert report.severity == "CRITICAL"


def test_severity_bands_validate_order() -> None:
    with pytest.raises(ValueError):
        SeverityBands(critical=0.1, high=0.2)
    assert classify(0.3, False, SeverityBands(high=0.35)) == "MEDIUM"
