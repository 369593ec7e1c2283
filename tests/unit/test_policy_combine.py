"""How policy answers combine, with fixed examples: block / warn / audit, allow rules, missing
and malformed answers, errors failing closed, and the messages people read."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from policies.result import (
    EvalResult,
    PolicyAnswer,
    PolicyRef,
    combine,
    failed,
    input_hash,
    parse_answer,
)


def ref(pid: str, enforcement: str = "block", has_allow: bool = False, version: int = 1
        ) -> PolicyRef:
    return PolicyRef(pid, version, enforcement, has_allow)  # type: ignore[arg-type]


def test_nothing_to_say_allows() -> None:
    out = combine([ref("a"), ref("b", has_allow=True)],
                  {"a": PolicyAnswer(None), "b": PolicyAnswer(True)}, "digest")
    assert out == EvalResult(allowed=True, policy_versions={"a": 1, "b": 1},
                             input_hash="digest")
    assert combine([], {}).input_hash == "" and combine([], {}).allowed is True


@pytest.mark.parametrize(("allow", "violations"),
                         [(True, []), (False, ["a: not allowed"]), (None, ["a: not allowed"])])
def test_an_allow_rule_must_be_true(allow: bool | None, violations: list[str]) -> None:
    out = combine([ref("a", has_allow=True)], {"a": PolicyAnswer(allow)})
    assert out.violations == violations and out.allowed is (not violations)


def test_a_deny_reason_replaces_not_allowed_and_needs_no_allow_rule() -> None:
    out = combine([ref("a", has_allow=True)], {"a": PolicyAnswer(False, deny=["z", "y"])})
    assert out.violations == ["a: y", "a: z"]  # sorted, no extra "not allowed"
    no_allow = combine([ref("b")], {"b": PolicyAnswer(False)})
    assert no_allow.allowed is True and no_allow.violations == []


def test_block_denies_warn_attaches_audit_records() -> None:
    answers = {p: PolicyAnswer(None, deny=[f"{p}-reason"], approval_required=[f"{p}-ask"])
               for p in ("b", "w", "u")}
    out = combine([ref("b"), ref("w", "warn"), ref("u", "audit")], answers)
    assert out.allowed is False and out.needs_approval is False
    assert out.violations == ["b: b-reason"] and out.approvals == ["b: b-ask"]
    assert out.warnings == ["w: w-reason", "w: w-ask"]
    assert out.audit == ["u: u-reason", "u: u-ask"]
    assert out.reasons == ["b: b-reason", "b: b-ask", "w: w-reason", "w: w-ask"]
    assert out.error is None


def test_approval_is_needed_only_when_allowed() -> None:
    out = combine([ref("b"), ref("w", "warn")],
                  {"b": PolicyAnswer(None, approval_required=["big"]),
                   "w": PolicyAnswer(None, deny=["odd"])})
    assert out.allowed is True and out.needs_approval is True
    assert out.reasons == ["b: big", "w: odd"]
    warn_only = combine([ref("w", "warn")], {"w": PolicyAnswer(None, approval_required=["x"])})
    assert warn_only.allowed is True and warn_only.needs_approval is False


def test_a_missing_answer_is_an_error_that_fails_closed_in_block_mode_only() -> None:
    out = combine([ref("a"), ref("b")], {"b": PolicyAnswer(None, deny=["no"])})
    assert out.allowed is False and out.needs_approval is False
    assert out.error == "a: policy error (no result (undefined)), failing closed"
    assert out.reasons == ["b: no", "a: policy error (no result (undefined)), failing closed"]
    assert out.policy_versions == {"a": 1, "b": 1}  # the policy after the error is evaluated
    warn = combine([ref("w", "warn", version=3)], {})
    assert warn.allowed is True and warn.error is None
    assert warn.warnings == ["w: policy error (no result (undefined))"]
    assert warn.policy_versions == {"w": 3}
    audit = combine([ref("u", "audit")], {"u": PolicyAnswer(None, error="boom")})
    assert audit.allowed is True and audit.audit == ["u: policy error (boom)"]


def test_errors_are_joined_and_later_policies_still_count() -> None:
    out = combine([ref("a"), ref("b"), ref("c", "warn")],
                  {"a": PolicyAnswer(None, error="x"), "b": PolicyAnswer(None, error="y"),
                   "c": PolicyAnswer(None, deny=["late"])})
    assert out.error == ("a: policy error (x), failing closed; "
                         "b: policy error (y), failing closed")
    assert out.warnings == ["c: late"]


def test_a_failed_evaluation_fails_every_policy_with_the_reason() -> None:
    out = failed([ref("a"), ref("w", "warn")], "timeout", "d1")
    assert out.allowed is False and out.input_hash == "d1"
    assert out.error == "a: policy error (timeout), failing closed"
    assert out.warnings == ["w: policy error (timeout)"]
    assert failed([ref("a")], "x").input_hash == ""
    assert failed([], "x").allowed is True


@pytest.mark.parametrize(
    ("allow", "deny", "approval", "error"),
    [
        (1, [], [], "malformed result: allow is a number (1), not a boolean"),
        ("yes", [], [], 'malformed result: allow is a string ("yes"), not a boolean'),
        (None, "x", [], 'malformed result: deny is a string ("x"), not a set of strings'),
        (None, {"a": 1}, [], 'malformed result: deny is an object ({"a":1}), not a set of strings'),
        (None, 2.5, [], "malformed result: deny is a number (2.5), not a set of strings"),
        (None, [[1]], [], "malformed result: deny has non-string members ([1])"),
        (None, [1, 2, 3, 4, "ok"], [], "malformed result: deny has non-string members (1, 2, 3)"),
        (None, [], None,
         "malformed result: approval_required is null (null), not a set of strings"),
        (None, [], [True], "malformed result: approval_required has non-string members (true)"),
        ([1], [], [], "malformed result: allow is a list ([1]), not a boolean"),
        (object, [], [], "malformed result: allow is type (<class 'object'>), not a boolean"),
        (None, ["x" * 100], [{"k": "v" * 100}],
         'malformed result: approval_required has non-string members ({"k":"'
         + "v" * 54 + ")"),
    ],
)
def test_malformed_answers_are_errors_that_say_what_arrived(allow: Any, deny: Any,
                                                            approval: Any, error: str) -> None:
    answer = parse_answer(allow, deny, approval)
    assert answer == PolicyAnswer(None, error=error)


def test_well_formed_answers_are_kept() -> None:
    assert parse_answer(True, ("a", "b"), ("c",)) == PolicyAnswer(True, ["a", "b"], ["c"])
    assert parse_answer(None, ["a"], []) == PolicyAnswer(None, ["a"], [])
    assert parse_answer(False) == PolicyAnswer(False, [], [])
    assert parse_answer(None, ("a",)) == PolicyAnswer(None, ["a"], [])


def test_the_input_hash_is_sha256_of_the_sorted_json() -> None:
    value = {"b": {"y": 1, "x": [2, None]}, "a": "é"}
    expected = hashlib.sha256('{"a":"é","b":{"x":[2,null],"y":1}}'.encode()).hexdigest()
    assert input_hash(value) == expected
    assert input_hash({"a": "é", "b": {"x": [2, None], "y": 1}}) == expected


def test_a_value_json_cannot_show_is_shown_by_its_repr_cut_at_60() -> None:
    answer = parse_answer(set(range(100)))
    assert answer.error == ("malformed result: allow is set ("
                            + repr(set(range(100)))[:60] + "), not a boolean")
