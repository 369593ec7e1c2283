"""The engine under virtual time: DAG order, parallelism, retries/backoff, timeouts, saga, SLA."""

from __future__ import annotations

import random
from typing import Any

import pytest

from runbooks.engine import Engine
from runbooks.interpolate import StaticSecrets
from runbooks.model import RetryPolicy
from runbooks.runtime import EngineConfig, StepContext
from runbooks.timing import FakeClock, backoff_delay
from schemas import Action, Approval, Event, Insight, Outcome
from schemas.errors import NonRetryableError, RetryableError
from tests.unit.test_runbooks_support import book

SECRET = "s3cr3t-value"


class Flaky:
    """A step type that fails `fails` times per step id (retryable unless told), then succeeds."""

    def __init__(
        self, fails: int = 0, retryable: bool = True, always: frozenset[str] = frozenset()
    ):
        self.fails = fails
        self.retryable = retryable
        self.always = always
        self.calls: list[str] = []

    async def __call__(self, ctx: StepContext) -> dict[str, Any]:
        sid = ctx.step.id
        self.calls.append(sid)
        if sid in self.always or (self.calls.count(sid) <= self.fails and "." not in sid):
            err = RetryableError if self.retryable else NonRetryableError
            raise err(f"boom {sid} token={ctx.interp.text('${secret:TOKEN}')}")
        if "takes" in ctx.step.parameters:
            await ctx.clock.sleep(float(ctx.step.parameters["takes"]))
        return {"ran": sid, "echo": ctx.interp.text("${secret:TOKEN}")}


def no_events() -> list[Event]:
    return []


def make(clock: FakeClock, events: list[Event], flaky: Flaky | None = None, **kw: Any) -> Engine:
    cfg = EngineConfig(max_parallel=2, jitter_seed=7, **kw)
    return Engine(
        cfg,
        clock=clock,
        emit=events.append,
        secrets=StaticSecrets({"TOKEN": SECRET}),
        handlers={"flaky": flaky or Flaky()},
    )


def outcomes(events: list[Event], scope: str = "step") -> list[tuple[str | None, str]]:
    return [(e.step_id, e.status) for e in events if isinstance(e, Outcome) and e.scope == scope]


def retry_step(backoff: str, **kw: Any) -> dict[str, Any]:
    policy = {"max_attempts": 4, "backoff": backoff, "base_delay": 2, "jitter": 0, **kw}
    return {"id": "s", "action_type": "flaky", "retry": policy}


@pytest.mark.parametrize(
    ("backoff", "extra", "expected"),
    [
        ("fixed", {}, [2.0, 2.0, 2.0]),
        ("linear", {}, [2.0, 4.0, 6.0]),
        ("exponential", {}, [2.0, 4.0, 8.0]),
        ("exponential", {"multiplier": 3, "max_delay": 10}, [2.0, 6.0, 10.0]),
    ],
)
async def test_backoff_kinds_against_the_fake_clock(
    backoff: str, extra: dict[str, Any], expected: list[float]
) -> None:
    clock, events, flaky = FakeClock(), no_events(), Flaky(fails=3)
    result = await clock.run(
        make(clock, events, flaky).run(book([retry_step(backoff, **extra)]), {})
    )
    assert result.ok and flaky.calls == ["s"] * 4
    assert clock.sleeps == expected and clock.now() == sum(expected)
    retries = [e for e in events if isinstance(e, Outcome) and e.status == "failed"]
    assert [e.attempt for e in retries] == [1, 2, 3]
    assert [e.output["retry_in_s"] for e in retries] == expected


async def test_retries_give_up_after_max_attempts() -> None:
    clock, events, flaky = FakeClock(), no_events(), Flaky(fails=10)
    rb = book([{**retry_step("fixed"), "critical": True}])
    result = await clock.run(make(clock, events, flaky).run(rb, {}))
    assert flaky.calls == ["s"] * 4 and clock.sleeps == [2.0, 2.0, 2.0]
    assert result.status == "failed" and result.steps["s"].attempts == 4


def test_jitter_is_bounded_seeded_and_capped() -> None:
    policy = RetryPolicy(backoff="exponential", base_delay=1, jitter=0.5, max_delay=5)
    a = [backoff_delay(policy, n, random.Random(1)) for n in range(1, 8)]
    b = [backoff_delay(policy, n, random.Random(1)) for n in range(1, 8)]
    assert a == b
    for n, d in enumerate(a, start=1):
        nominal = 2 ** (n - 1)
        assert min(nominal * 0.5, 5) <= d <= min(nominal * 1.5, 5)
    assert a[-1] == 5 and len(set(a[:3])) == 3


async def test_non_retryable_error_is_not_retried_and_skips_dependents() -> None:
    clock, events, flaky = FakeClock(), no_events(), Flaky(fails=1, retryable=False)
    rb = book([retry_step("fixed"), {"id": "t", "action_type": "flaky", "dependencies": ["s"]}])
    result = await clock.run(make(clock, events, flaky).run(rb, {}))
    assert flaky.calls == ["s"] and clock.sleeps == []
    assert result.steps["s"].status == "failed" and result.steps["t"].status == "skipped"
    assert result.status == "failed"  # s is not critical, but nothing succeeded


async def test_timeout_on_virtual_time_is_retried_then_timed_out() -> None:
    clock, events = FakeClock(), no_events()
    rb = book(
        [
            {
                "id": "slow",
                "action_type": "sleep",
                "parameters": {"seconds": 100},
                "timeout": 5,
                "retry": {"max_attempts": 2, "backoff": "fixed", "base_delay": 1, "jitter": 0},
            },
        ]
    )
    result = await clock.run(make(clock, events).run(rb, {}))
    assert result.steps["slow"].status == "timed_out" and result.steps["slow"].attempts == 2
    assert clock.now() == 11  # 5 (timeout) + 1 (backoff) + 5 (timeout)


async def test_dag_order_and_bounded_parallelism() -> None:
    clock, events = FakeClock(), no_events()
    running, peak, order = 0, 0, []

    async def probe(ctx: StepContext) -> dict[str, Any]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await ctx.clock.sleep(1)
        running -= 1
        order.append(ctx.step.id)
        return {}

    engine = make(clock, events)
    engine.handlers["probe"] = probe
    rb = book(
        [{"id": "root", "action_type": "probe"}]
        + [{"id": f"p{i}", "action_type": "probe", "dependencies": ["root"]} for i in range(4)]
        + [{"id": "join", "action_type": "probe", "dependencies": [f"p{i}" for i in range(4)]}]
    )
    result = await clock.run(engine.run(rb, {}))
    assert result.ok and order[0] == "root" and order[-1] == "join"
    assert peak == 2  # max_parallel=2 although four steps were ready
    assert clock.now() == 1 + 2 + 1  # root, two waves of two, join


async def test_failed_critical_step_compensates_in_reverse_completion_order() -> None:
    clock, events, flaky = FakeClock(), no_events(), Flaky(always=frozenset({"d"}))
    comp = {"action_type": "flaky"}
    rb = book(
        [
            {"id": "a", "action_type": "flaky", "parameters": {"takes": 1}, "compensation": comp},
            {"id": "b", "action_type": "flaky", "parameters": {"takes": 3}, "compensation": comp},
            {"id": "c", "action_type": "flaky", "dependencies": ["a"], "compensation": comp},
            {"id": "d", "action_type": "flaky", "dependencies": ["b", "c"], "critical": True},
            {"id": "e", "action_type": "flaky", "dependencies": ["d"], "compensation": comp},
        ]
    )
    result = await clock.run(make(clock, events, flaky).run(rb, {}))
    # completion order a (t=1), c (t=1), b (t=3) → undo b, c, a; e never ran
    assert [c for c in flaky.calls if c.endswith(".compensate")] == [
        "b.compensate",
        "c.compensate",
        "a.compensate",
    ]
    assert result.status == "compensated" and result.compensated == ["b", "c", "a"]
    assert result.steps["e"].status == "skipped" and "e" not in flaky.calls
    assert [s for s, st in outcomes(events) if st == "compensated"] == ["b", "c", "a"]


async def test_failed_compensation_fails_the_workflow() -> None:
    clock, events = FakeClock(), no_events()
    flaky = Flaky(always=frozenset({"boom", "a.compensate"}), retryable=False)
    rb = book(
        [
            {"id": "a", "action_type": "flaky", "compensation": {"action_type": "flaky"}},
            {"id": "boom", "action_type": "flaky", "dependencies": ["a"], "critical": True},
        ]
    )
    result = await clock.run(make(clock, events, flaky).run(rb, {}))
    assert result.status == "failed" and "compensation failed for a" in (result.error or "")


async def test_sla_breach_emits_an_alert_and_the_run_continues() -> None:
    clock, events = FakeClock(), no_events()
    rb = book([{"id": "s", "action_type": "sleep", "parameters": {"seconds": 30}}], sla=10)
    result = await clock.run(make(clock, events).run(rb, {}))
    alerts = [e for e in events if isinstance(e, Outcome) and e.status == "sla_breached"]
    assert result.ok and result.sla_breached and len(alerts) == 1
    assert alerts[0].output == {"sla_s": 10.0, "pending": ["s"]}


async def test_no_alert_within_sla() -> None:
    clock, events = FakeClock(), no_events()
    rb = book([{"id": "s", "action_type": "sleep", "parameters": {"seconds": 3}}], sla=10)
    result = await clock.run(make(clock, events).run(rb, {}))
    assert not result.sla_breached and "sla_breached" not in {
        s for _, s in outcomes(events, "action")
    }


async def test_when_conditions_and_skipped_dependencies() -> None:
    clock, events, flaky = FakeClock(), no_events(), Flaky()
    rb = book(
        [
            {"id": "a", "action_type": "flaky", "when": "env == 'prod'"},
            {"id": "b", "action_type": "flaky", "when": "env != 'prod'"},
            {
                "id": "c",
                "action_type": "flaky",
                "dependencies": ["a", "b"],
                "when": "steps['a']['status'] == 'succeeded'",
            },
        ]
    )
    result = await clock.run(make(clock, events, flaky).run(rb, {"env": "prod"}))
    assert flaky.calls == ["a", "c"] and result.steps["b"].status == "skipped"


async def test_outcomes_chain_to_the_action_and_secrets_are_redacted() -> None:
    clock, events, flaky = FakeClock(), no_events(), Flaky(fails=1)
    action = Action(action_id="act-1", resource_id="web", action_type="scale_up")
    rb = book([{"id": "s", "action_type": "flaky", "retry_count": 1}])
    result = await clock.run(
        make(clock, events, flaky).run(rb, {}, parent=action, action_id="act-1")
    )
    assert result.ok
    outs = [e for e in events if isinstance(e, Outcome)]
    assert all(o.correlation_id == action.correlation_id for o in outs)
    assert all(o.causation_id == action.event_id and o.action_id == "act-1" for o in outs)
    dumped = "".join(o.model_dump_json() for o in outs)
    assert SECRET not in dumped and "token=***" in dumped and '"echo":"***"' in dumped
    assert outcomes(events, "action") == [(None, "started"), (None, "succeeded")]


async def test_kafka_step_emits_an_event_in_the_chain() -> None:
    clock, events = FakeClock(), no_events()
    action = Action(action_id="act-2", resource_id="web", action_type="run_runbook")
    rb = book(
        [
            {
                "id": "k",
                "action_type": "kafka",
                "parameters": {
                    "event_type": "Insight",
                    "fields": {"resource_id": "${resource_id}", "kind": "anomaly"},
                },
            }
        ]
    )
    await clock.run(make(clock, events).run(rb, {"resource_id": "web"}, parent=action))
    insight = next(e for e in events if isinstance(e, Insight))
    assert insight.resource_id == "web" and insight.causation_id == action.event_id


@pytest.mark.parametrize(
    ("answer", "status"),
    [("approved", "succeeded"), ("rejected", "failed"), ("timeout", "timed_out")],
)
async def test_approval_outcomes(answer: str, status: str) -> None:
    clock, events, asked = FakeClock(), no_events(), []

    async def waiter(request_id: str, timeout: float) -> Any:
        asked.append((request_id, timeout))
        return answer

    engine = make(clock, events)
    engine.wait_for_approval = waiter
    rb = book(
        [
            {
                "id": "ok",
                "action_type": "approval",
                "action": "Promote?",
                "timeout": 60,
                "retry_count": 3,
            }
        ]
    )
    result = await clock.run(engine.run(rb, {}, action_id="act-3"))
    assert asked == [("act-3:ok", 60.0)]  # never retried
    assert result.steps["ok"].status == status
    pending = next(e for e in events if isinstance(e, Approval))
    assert pending.status == "pending" and pending.request_id == "act-3:ok"
    assert ("ok", "waiting_approval") in outcomes(events)


async def test_approval_timeout_with_a_waiter_on_the_clock() -> None:
    clock, events = FakeClock(), no_events()

    async def never(request_id: str, timeout: float) -> Any:
        await clock.sleep(timeout)  # what a real waiter does: nobody answered
        return "timeout"

    engine = make(clock, events)
    engine.wait_for_approval = never
    rb = book(
        [{"id": "ok", "action_type": "approval", "critical": True, "parameters": {"timeout": 900}}]
    )
    result = await clock.run(engine.run(rb, {}))
    assert result.status == "failed" and result.steps["ok"].status == "timed_out"
    assert clock.now() == 900


async def test_sub_workflow_runs_once_under_a_child_action_id() -> None:
    clock, events, flaky = FakeClock(), no_events(), Flaky()
    child = book([{"id": "inner", "action_type": "flaky"}], id="child")
    engine = make(clock, events, flaky)
    engine.resolve = {"child": child}.__getitem__
    rb = book([{"id": "sub", "action_type": "workflow", "action": "child"}])
    result = await clock.run(engine.run(rb, {}, action_id="p"))
    assert result.ok and flaky.calls == ["inner"]
    assert ("p/sub", "inner", "finished") in engine.journal.records  # type: ignore[attr-defined]


async def test_dry_run_plans_without_running() -> None:
    clock, events, flaky = FakeClock(), no_events(), Flaky()
    rb = book(
        [{"id": "c", "action_type": "command", "action": "echo --x=${v} --t=${secret:TOKEN}"}]
    )
    result = await clock.run(make(clock, events, flaky).run(rb, {"v": "1"}, dry_run=True))
    assert result.status == "skipped" and flaky.calls == []
    plan = next(e for e in events if isinstance(e, Outcome) and e.step_id == "c").output["plan"]
    assert plan["argv"] == ["echo", "--x=1", "--t=***"]
