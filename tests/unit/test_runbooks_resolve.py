"""Runbook resolution: the runbook comes from configuration, params fit a declared schema, and the
executor refuses anything but what the gate approved."""

from __future__ import annotations

from typing import Any

import pytest

from runbooks.loader import Library, parse_runbook
from runbooks.model import Runbook, ValidationError
from runbooks.resolve import DEFAULT_RUNBOOKS, RefusedAction, Resolver

NOOP = [{"id": "a", "action_type": "noop"}]


def runbook(parameters: dict[str, Any], *, rid: str = "t", steps: list[Any] | None = None,
            **metadata: Any) -> Runbook:
    return parse_runbook({"metadata": {"id": rid, **metadata}, "parameters": parameters,
                          "steps": steps or NOOP})


def resolver(*books: Runbook, runbooks: dict[str, str] | None = None,
             defaults: dict[str, Any] | None = None) -> Resolver:
    lib = Library([])
    for b in books:
        lib.add(b)
    return Resolver(lib.get, runbooks or {"scale_up": "t"}, defaults)


DELTA = {"delta": {"type": "integer", "minimum": 1, "maximum": 100, "default": 1,
                   "overridable": True}}


def refused(res: Resolver, action_type: str, params: dict[str, Any]) -> str:
    with pytest.raises(RefusedAction) as info:
        res.resolve(action_type, params)
    return str(info.value)


def test_typed_variables_after_defaults_and_overrides() -> None:
    book = runbook({**DELTA, "note": {"type": "string", "default": "x"}}, implements=["scale_up"])
    got = resolver(book).resolve("scale_up", {"delta": 3})
    assert got.runbook_id == "t" and got.runbook_hash == book.content_hash
    assert got.variables == {"delta": 3, "note": "x"} and got.implements == ("scale_up",)
    assert got.parameters["delta"] == {"type": "integer", "kind": "value", "overridable": True,
                                       "minimum": 1, "maximum": 100}


@pytest.mark.parametrize(("value", "why"), [
    ("1000", "must be an integer, not a string ('1000')"),
    (True, "must be an integer, not a boolean (True)"),
    (2.5, "must be an integer"),
    (1000, "must be at most 100"),
    (0, "must be at least 1"),
    (None, "must not be null"),
    ([1], "must be an integer, not a list"),
    (float("nan"), "must be a finite number"),
])
def test_wrong_types_and_bounds_are_refused(value: Any, why: str) -> None:
    assert why in refused(resolver(runbook(DELTA)), "scale_up", {"delta": value})


def test_integral_float_counts_as_integer_and_numbers_become_float() -> None:
    book = runbook({**DELTA, "ratio": {"type": "number", "default": 1, "overridable": True}})
    got = resolver(book).resolve("scale_up", {"delta": 2.0, "ratio": 3})
    assert got.variables == {"delta": 2, "ratio": 3.0}
    assert type(got.variables["delta"]) is int and type(got.variables["ratio"]) is float


def test_string_list_object_checks() -> None:
    book = runbook({
        "region": {"type": "string", "pattern": "[a-z]+-[0-9]", "default": "eu-1",
                   "overridable": True},
        "fields": {"type": "list", "max_items": 2, "max_length": 5, "default": [],
                   "overridable": True},
        "patch": {"type": "object", "max_bytes": 20, "default": {}, "overridable": True},
    })
    res = resolver(book)
    assert "does not match the pattern" in refused(res, "scale_up", {"region": "eu-1; rm"})
    assert "has 3 items, more than 2" in refused(res, "scale_up", {"fields": ["a", "b", "c"]})
    assert "item 0 must be a string" in refused(res, "scale_up", {"fields": [1]})
    assert "item 1 is longer than 5" in refused(res, "scale_up", {"fields": ["a", "abcdef"]})
    assert "more than 20" in refused(res, "scale_up", {"patch": {"k": "x" * 30}})
    assert "must be an object" in refused(res, "scale_up", {"patch": [1]})


def test_deeply_nested_object_is_refused_not_crashing() -> None:
    deep: Any = {}
    for _ in range(5000):
        deep = {"x": deep}
    book = runbook({"patch": {"type": "object", "default": {}, "overridable": True}})
    assert "is nested deeper than 32 levels" in refused(resolver(book), "scale_up",
                                                        {"patch": deep})


def test_unknown_fixed_identity_and_config_params_are_refused() -> None:
    book = runbook({**DELTA, "fixed": {"type": "integer", "default": 2},
                    "server": {"type": "string", "kind": "endpoint", "default": "https://a"}})
    res = resolver(book)
    assert "no parameter 'x' (overridable: delta)" in refused(res, "scale_up", {"x": 1})
    assert "parameter fixed is not overridable" in refused(res, "scale_up", {"fixed": 3})
    assert "set from the action itself" in refused(res, "scale_up", {"resource_id": "other"})
    why = refused(res, "scale_up", {"server": "http://127.0.0.1:9/"})
    assert "parameter server is of kind endpoint" in why and "never from events" in why


def test_every_problem_is_listed() -> None:
    why = refused(resolver(runbook(DELTA)), "scale_up", {"delta": "9", "y": 1})
    assert "delta must be an integer" in why and "no parameter 'y'" in why


def test_runbook_comes_from_configuration() -> None:
    res = resolver(runbook(DELTA), runbook({}, rid="other", selectable=True))
    why = refused(res, "scale_up", {"runbook": "other"})
    assert "action type scale_up runs runbook t (configuration)" in why
    assert res.resolve("scale_up", {"runbook": "t"}).runbook_id == "t"  # naming it is harmless
    assert "no runbook serves action type 'purge'" in refused(res, "purge", {})
    assert "must be a runbook id" in refused(res, "scale_up", {"runbook": ["t"]})


def test_run_runbook_needs_a_selectable_runbook() -> None:
    res = resolver(runbook(DELTA), runbook({}, rid="pick", selectable=True))
    assert res.resolve("run_runbook", {"runbook": "pick"}).runbook_id == "pick"
    assert "runbook t is not selectable" in refused(res, "run_runbook", {"runbook": "t"})
    assert "needs params.runbook" in refused(res, "run_runbook", {})
    assert "unknown runbook 'nope'" in refused(res, "run_runbook", {"runbook": "nope"})


def test_no_action_runs_nothing_and_takes_nothing() -> None:
    res = resolver(runbook(DELTA))
    assert res.resolve("no_action", {}).runbook_id is None
    assert "takes no params" in refused(res, "no_action", {"delta": 1})


def test_required_parameter_without_value_is_refused() -> None:
    book = runbook({"target": {"type": "string", "overridable": True}})
    assert "target is required" in refused(resolver(book), "scale_up", {})
    assert resolver(book).resolve("scale_up", {"target": "h1"}).variables == {"target": "h1"}


def test_seed_variables_are_fixed_typed_values() -> None:
    book = parse_runbook({"metadata": {"id": "t"}, "variables": {"n": 3, "host": "db1"},
                          "steps": NOOP})
    res = resolver(book)
    assert res.resolve("scale_up", {}).variables == {"n": 3, "host": "db1"}
    assert "parameter n is not overridable" in refused(res, "scale_up", {"n": 4})


@pytest.mark.parametrize("kind", ["endpoint", "credential", "webhook"])
def test_config_kinds_can_never_be_overridable(kind: str) -> None:
    with pytest.raises(ValidationError, match=f"a {kind} parameter is never overridable"):
        runbook({"x": {"type": "string", "kind": kind, "overridable": True}})


@pytest.mark.parametrize(("step", "where"), [
    ({"id": "h", "action_type": "http", "action": "${x}/api"}, "URL host"),
    ({"id": "h", "action_type": "http", "action": "https://${x}.example/api"}, "URL host"),
    ({"id": "n", "action_type": "notification", "action": "hi",
      "parameters": {"webhook_url": "${x}"}}, "webhook_url"),
    ({"id": "a", "action_type": "argocd", "action": "sync",
      "parameters": {"server": "${x}", "app": "web"}}, "parameters.server"),
    ({"id": "h", "action_type": "http", "action": "https://api.example/v1",
      "parameters": {"headers": {"Authorization": "Bearer ${x}"}}}, "header Authorization"),
    ({"id": "w", "action_type": "workflow", "action": "${x}"}, "sub-workflow runbook id"),
    ({"id": "c", "action_type": "command", "action": ["ls"], "parameters": {"cwd": "${x}"}},
     "parameters.cwd"),
    ({"id": "c", "action_type": "command", "action": ["ls"],
      "parameters": {"env": {"LD_PRELOAD": "${x}"}}}, "parameters.env"),
])
def test_overridable_parameter_in_a_target_position_is_refused(step: dict[str, Any],
                                                               where: str) -> None:
    with pytest.raises(ValidationError, match="must not be overridable by events") as info:
        runbook({"x": {"type": "string", "default": "v", "overridable": True}}, steps=[step])
    assert where in str(info.value)


def test_endpoint_used_as_endpoint_must_say_so() -> None:
    step = {"id": "n", "action_type": "notification", "action": "hi",
            "parameters": {"webhook_url": "${hook}"}}
    with pytest.raises(ValidationError, match="declare it `kind: webhook`"):
        runbook({"hook": {"type": "string", "default": "https://h"}}, steps=[step])
    ok = runbook({"hook": {"type": "string", "kind": "webhook", "default": "https://h"}},
                 steps=[step])
    assert ok.parameters["hook"].kind == "webhook"


def test_data_positions_stay_overridable() -> None:
    step = {"id": "h", "action_type": "http", "action": "https://api.example/records/${x}?q=${x}",
            "parameters": {"headers": {"X-Tag": "${x}"}, "json": {"v": "${x}"}}}
    book = runbook({"x": {"type": "string", "default": "", "overridable": True}}, steps=[step])
    assert book.parameters["x"].overridable


# --- the executor's side ---------------------------------------------------------------------
def test_verify_accepts_exactly_what_was_resolved() -> None:
    book = runbook({**DELTA, "fixed": {"type": "integer", "default": 2}})
    res = resolver(book)
    got = res.resolve("scale_up", {"delta": 5})
    again = res.verify("scale_up", got.runbook_id, got.runbook_hash, got.variables)
    assert again.variables == got.variables == {"delta": 5, "fixed": 2}


@pytest.mark.parametrize(("change", "why"), [
    ({"runbook_hash": "f" * 64}, "is not the one the gate approved"),
    ({"runbook_hash": None}, "is not the one the gate approved"),
    ({"variables": {"delta": 5, "fixed": 3}}, "variables differ from what resolution gives"),
    ({"variables": {"delta": 5}}, "variables differ"),
    ({"variables": {"delta": 5, "fixed": 2, "extra": 1}}, "variables differ"),
    ({"variables": {"delta": "5", "fixed": 2}}, "must be an integer"),
    ({"variables": {"delta": 500, "fixed": 2}}, "must be at most 100"),
    ({"variables": {"delta": 5, "fixed": 2, "server": "http://evil"}}, "variables differ"),
    ({"runbook_id": "other"}, r"runs runbook t \(configuration\)"),
    ({"runbook_id": None}, "names no runbook"),
])
def test_verify_refuses_anything_else(change: dict[str, Any], why: str) -> None:
    book = runbook({**DELTA, "fixed": {"type": "integer", "default": 2},
                    "server": {"type": "string", "kind": "endpoint", "default": "https://a"}})
    other = runbook({}, rid="other")
    res = resolver(book, other)
    got = res.resolve("scale_up", {"delta": 5})
    args = {"runbook_id": got.runbook_id, "runbook_hash": got.runbook_hash,
            "variables": got.variables, **change}
    with pytest.raises(RefusedAction, match=why):
        res.verify("scale_up", args["runbook_id"], args["runbook_hash"], args["variables"])


def test_config_values_fill_endpoints_and_are_type_checked() -> None:
    book = runbook({"server": {"type": "string", "kind": "endpoint", "pattern": "https://\\S+",
                               "default": "https://a"}})
    assert resolver(book, defaults={"server": "https://b", "other": 1}).config_values(book) == {
        "server": "https://b", "other": 1}
    with pytest.raises(RefusedAction, match="executor.defaults.server does not match"):
        resolver(book, defaults={"server": "ftp://b"}).config_values(book)


def test_shipped_library_declares_every_variable_it_uses() -> None:
    lib = Library()
    for rid in lib.ids():
        book = lib.get(rid)
        assert book.parameters, f"{rid} declares no parameters"
        used = {v for s in book.steps for v in _refs(s.model_dump())}
        undeclared = used - set(book.declared) - {"resource_id", "action_id", "action_type",
                                                  "decision_id", "dry_run"}
        assert not undeclared, f"{rid} uses undeclared {undeclared}"
    assert set(DEFAULT_RUNBOOKS.values()) <= set(lib.ids())


def _refs(value: Any) -> set[str]:
    from runbooks.interpolate import references

    return {r for r in references(value) if not r.startswith("secret:")}
