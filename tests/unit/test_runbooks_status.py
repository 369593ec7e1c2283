"""A workflow's final status (a step that did not succeed is never plain success) and the exit
codes a command step expects (`parameters.expect_exit_codes`)."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from runbooks.engine import Engine
from runbooks.loader import Library
from runbooks.model import ValidationError
from runbooks.runtime import EngineConfig, StepContext
from schemas import Event, Outcome
from schemas.errors import NonRetryableError
from tests.unit.test_runbooks_support import book


async def ok(ctx: StepContext) -> dict[str, Any]:
    return {"ran": ctx.step.id}


async def boom(ctx: StepContext) -> dict[str, Any]:
    raise NonRetryableError(f"{ctx.step.id} broke")


async def run(steps: list[dict[str, Any]], lib: Library | None = None) -> tuple[Any, list[Event]]:
    events: list[Event] = []
    engine = Engine(EngineConfig(), emit=events.append,  # real clock: delays are 0
                    handlers={"ok": ok, "boom": boom},
                    resolve=lib.get if lib is not None else None)
    result = await engine.run(book(steps), {"flag": False})
    return result, events


def final(events: list[Event]) -> Outcome:
    (last,) = [e for e in events if isinstance(e, Outcome) and e.scope == "action"
               and e.status != "started"]
    return last


# --- workflow status ---------------------------------------------------------------------------
async def test_every_step_succeeding_or_skipped_by_its_own_condition_is_success() -> None:
    result, events = await run([
        {"id": "a", "action_type": "ok"},
        {"id": "b", "action_type": "ok", "when": "flag", "critical": True},
        {"id": "c", "action_type": "ok", "dependencies": ["b"], "critical": True},
    ])
    assert result.status == "succeeded" and result.error is None
    assert result.steps["b"].status == "skipped" and result.steps["c"].status == "succeeded"
    assert final(events).output["failed_steps"] == []


async def test_a_failed_non_critical_step_is_succeeded_with_failures_never_success() -> None:
    result, events = await run([
        {"id": "promote", "action_type": "ok", "critical": True},
        {"id": "dns", "action_type": "boom", "dependencies": ["promote"]},
        {"id": "notify", "action_type": "ok", "dependencies": ["dns"]},
    ])
    assert result.status == "succeeded_with_failures" and not result.ok
    assert result.steps["notify"].status == "skipped"  # its dependency did not succeed
    out = final(events)
    assert out.status == "succeeded_with_failures"
    assert out.output["failed_steps"] == ["dns", "notify"]
    assert "dns failed: NonRetryableError: dns broke" in (out.error or "")
    assert "notify skipped (dependency dns failed)" in (out.error or "")


async def test_when_no_step_succeeded_the_workflow_failed_critical_or_not() -> None:
    result, events = await run([{"id": "notify", "action_type": "boom"}])
    assert result.status == "failed" and final(events).status == "failed"
    assert result.error == "no step succeeded: notify failed: NonRetryableError: notify broke"
    result, _ = await run([
        {"id": "a", "action_type": "boom"},
        {"id": "b", "action_type": "ok", "when": "flag"},
    ])
    assert result.status == "failed"


async def test_a_critical_step_skipped_because_its_dependency_failed_fails_the_workflow() -> None:
    # the seed's shape: detection (not critical) fails, so the critical promotion never runs
    result, events = await run([
        {"id": "detect", "action_type": "boom"},
        {"id": "promote", "action_type": "ok", "critical": True, "dependencies": ["detect"]},
        {"id": "notify", "action_type": "ok", "dependencies": ["promote"]},
    ])
    assert result.status == "failed"
    assert result.error == "critical step promote skipped"
    assert final(events).output["failed_steps"] == ["detect", "notify", "promote"]


async def test_a_failed_critical_step_fails_and_one_with_undo_work_compensates() -> None:
    result, _ = await run([{"id": "a", "action_type": "boom", "critical": True}])
    assert result.status == "failed" and "critical step a failed" in (result.error or "")
    result, _ = await run([
        {"id": "a", "action_type": "ok", "compensation": {"action_type": "ok"}},
        {"id": "b", "action_type": "boom", "critical": True, "dependencies": ["a"]},
    ])
    assert result.status == "compensated" and result.compensated == ["a"]


async def test_a_sub_workflow_that_partly_failed_fails_its_step() -> None:
    lib = Library([])
    lib.add(book([{"id": "x", "action_type": "ok"}, {"id": "y", "action_type": "boom"}],
                 id="child"))
    result, _ = await run([{"id": "first", "action_type": "ok"},
                           {"id": "sub", "action_type": "workflow", "action": "child"}], lib)
    assert result.status == "succeeded_with_failures"
    assert "sub-workflow child succeeded_with_failures" in (result.steps["sub"].error or "")


# --- expect_exit_codes -------------------------------------------------------------------------
def exits(code: int, expect: list[int] | None = None, **step: Any) -> dict[str, Any]:
    params = {} if expect is None else {"expect_exit_codes": expect}
    argv = [sys.executable, "-I", "-S", "-c",
            f"import sys; print('probe said {code}'); sys.exit({code})"]
    return {"id": "probe", "action_type": "command", "action": argv, "parameters": params,
            "critical": True, **step}


@pytest.mark.parametrize("code", [1, 2])
async def test_an_expected_non_zero_exit_code_is_success(code: int) -> None:
    result, _ = await run([exits(code, [1, 2])])
    assert result.status == "succeeded"
    assert result.steps["probe"].output["exit_code"] == code


async def test_exit_zero_is_a_failure_when_not_expected_and_says_what_was_expected() -> None:
    result, _ = await run([exits(0, [1, 2], retry={"max_attempts": 3, "base_delay": 0,
                                                    "non_retryable_exit_codes": [0, 3]})])
    probe = result.steps["probe"]
    assert result.status == "failed" and probe.attempts == 1  # 0 is listed as non-retryable
    assert probe.error == "NonRetryableError: exit code 0 (expected 1, 2): probe said 0"


async def test_an_unexpected_exit_code_is_retried_by_default() -> None:
    result, _ = await run([exits(0, [1], retry={"max_attempts": 3, "base_delay": 0})])
    assert result.steps["probe"].attempts == 3 and result.status == "failed"


async def test_without_the_parameter_only_zero_succeeds() -> None:
    result, _ = await run([exits(2, retry_count=0)])
    assert result.status == "failed"
    assert result.steps["probe"].error == "RetryableError: exit code 2: probe said 2"


@pytest.mark.parametrize(("expect", "why"), [
    ("${codes}", "must be a non-empty list of exit codes"),
    ([], "must be a non-empty list of exit codes"),
    ([0, 256], "must be a non-empty list of exit codes"),
    ([True], "must be a non-empty list of exit codes"),
    (["1"], "must be a non-empty list of exit codes"),
    ([1, 127], "exit code(s) 127 both expected and non-retryable"),
])
def test_expected_exit_codes_are_literal_codes_checked_before_anything_runs(
    expect: Any, why: str
) -> None:
    with pytest.raises(ValidationError) as info:
        Engine(EngineConfig()).validate(book([exits(0, expect)]), {"codes": [1]})
    (problem,) = info.value.problems
    assert problem.startswith("step probe: ") and why in problem
