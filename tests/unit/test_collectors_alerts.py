"""Alertmanager webhook → run_runbook decisions: routing, variables, repeats, resolutions, state."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from prometheus_client import CollectorRegistry

from agents.collectors import (
    AlertReceiver,
    AlertRoute,
    AlertsConfig,
    CollectorConfig,
    LabelVariable,
)
from agents.collectors.alerts import decision_id_for
from schemas import DeadLetter, Decision, Outcome, action_id_for
from schemas.errors import DeadLetterError
from streams.collect import CollectorHost, CollectorMetrics, MemoryPublisher

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STARTS = "2026-12-01T11:58:00.123456789Z"
ROUTE = AlertRoute(
    alertname="HighLatency",
    match={"severity": "critical|page"},
    runbook="restart-service",
    resource_labels=["service", "instance"],
    variables={
        "batch_size": LabelVariable(label="batch", type="integer", default=1),
        "zone": LabelVariable(label="zone"),
    },
    constants={"reason": "alert"},
)
CONFIG = AlertsConfig(routes=[ROUTE])


def alert(
    status: str = "firing", fp: str = "a1b2c3d4e5f60718", starts: str = STARTS, **labels: str
):  # type: ignore[no-untyped-def]
    base = {"alertname": "HighLatency", "severity": "critical", "service": "web", "zone": "eu-1"}
    return {
        "status": status,
        "labels": {**base, **labels},
        "annotations": {"summary": "p95 above 250 ms"},
        "startsAt": starts,
        "endsAt": "2026-12-01T12:03:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fp,
    }


def notification(*alerts: dict) -> bytes:  # type: ignore[type-arg]
    return orjson.dumps(
        {
            "version": "4",
            "status": "firing",
            "receiver": "novacron",
            "groupKey": "{}:{}",
            "alerts": list(alerts),
        }
    )


def handle(receiver: AlertReceiver, *alerts: dict):  # type: ignore[no-untyped-def,type-arg]
    result = receiver.handle(notification(*alerts), NOW)
    receiver.commit(result)
    return result


def test_a_firing_alert_becomes_a_run_runbook_decision_with_mapped_variables() -> None:
    result = handle(AlertReceiver(CONFIG), alert(batch="2"))
    [decision] = result.events
    assert isinstance(decision, Decision)
    assert decision.decision_type == "run_runbook" and decision.origin == "alert"
    assert decision.resource_id == "web"
    assert decision.params == {
        "runbook": "restart-service",
        "reason": "alert",
        "batch_size": 2,
        "zone": "eu-1",
    }
    starts = datetime(2026, 12, 1, 11, 58, 0, 123000, tzinfo=UTC)
    assert decision.event_id == decision_id_for("a1b2c3d4e5f60718", starts)
    assert decision.event_time == starts and "p95 above 250 ms" in decision.reasoning


def test_the_runbook_comes_from_the_route_never_from_the_alert() -> None:
    result = handle(AlertReceiver(CONFIG), alert(runbook="evil", batch="1"))
    assert result.events[0].params["runbook"] == "restart-service"  # type: ignore[attr-defined]


def test_repeated_notifications_of_an_open_alert_publish_nothing_more() -> None:
    receiver = AlertReceiver(CONFIG)
    first = handle(receiver, alert())
    again = handle(receiver, alert())
    assert len(first.events) == 1 and again.events == [] and again.counts["repeat"] == 1


def test_a_repeat_within_one_notification_is_suppressed_too() -> None:
    result = handle(AlertReceiver(CONFIG), alert(), alert())
    assert len(result.events) == 1 and result.counts == {"decided": 1, "repeat": 1}


def test_without_commit_the_retry_decides_again_with_the_same_id() -> None:
    receiver = AlertReceiver(CONFIG)
    lost = receiver.handle(notification(alert()), NOW)  # Kafka failed: not committed
    retry = handle(receiver, alert())
    assert [e.event_id for e in retry.events] == [e.event_id for e in lost.events]


def test_resolution_is_recorded_on_the_decisions_chain_and_closes_the_alert() -> None:
    receiver = AlertReceiver(CONFIG)
    [decision] = handle(receiver, alert()).events
    [outcome] = handle(receiver, alert("resolved")).events
    assert isinstance(outcome, Outcome)
    assert (outcome.scope, outcome.status) == ("alert", "resolved")
    assert outcome.action_id == action_id_for(decision.event_id)
    assert outcome.correlation_id == decision.event_id == outcome.causation_id
    assert outcome.duration_ms == pytest.approx(299_877, abs=1)
    assert receiver.open_alerts() == {}
    refired = handle(receiver, alert(starts="2026-12-01T12:10:00Z"))
    assert len(refired.events) == 1 and refired.events[0].event_id != decision.event_id


@pytest.mark.parametrize(
    ("labels", "why"),
    [
        ({"service": "", "instance": ""}, "resource labels"),
        ({"service": "web\n2"}, "resource id"),
        ({"zone": ""}, "label 'zone' is missing"),
        ({"batch": "2; rm -rf /"}, "is not an integer"),
        ({"zone": "x" * 300}, "longer than allowed"),
    ],
)
def test_an_alert_missing_what_its_route_needs_is_dead_lettered_alone(labels, why) -> None:  # type: ignore[no-untyped-def]
    result = handle(AlertReceiver(CONFIG), alert(**labels), alert(fp="ffff", service="api"))
    letters = [e for e in result.events if isinstance(e, DeadLetter)]
    decisions = [e for e in result.events if isinstance(e, Decision)]
    assert len(letters) == 1 and why in letters[0].reason
    assert [d.resource_id for d in decisions] == ["api"]


def test_unmapped_alerts_are_counted_and_ignored() -> None:
    result = handle(AlertReceiver(CONFIG), alert(alertname="DiskFull"), alert(severity="info"))
    assert result.events == [] and result.counts["unmapped"] == 2


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"alerts": "x"}', b'{"version": "4"}'])
def test_a_body_that_is_not_a_webhook_payload_raises(body: bytes) -> None:
    with pytest.raises(DeadLetterError):
        AlertReceiver(CONFIG).handle(body, NOW)


def test_open_alerts_snapshot_and_restore() -> None:
    receiver = AlertReceiver(CONFIG)
    handle(receiver, alert())
    blob = receiver.snapshot("a1b2c3d4e5f60718")
    assert blob is not None and receiver.snapshot("unknown") is None
    fresh = AlertReceiver(CONFIG)
    fresh.restore("a1b2c3d4e5f60718", blob)
    assert handle(fresh, alert()).events == []
    fresh.forget("a1b2c3d4e5f60718")
    assert len(handle(fresh, alert()).events) == 1


def test_the_oldest_open_alerts_are_forgotten_beyond_the_limit() -> None:
    receiver = AlertReceiver(AlertsConfig(routes=[ROUTE], max_open=2))
    for i, minute in enumerate((10, 5, 20)):
        handle(receiver, alert(fp=f"f{i}", starts=f"2026-12-01T11:{minute}:00Z"))
    assert sorted(receiver.open_alerts()) == ["f0", "f2"]


@pytest.mark.parametrize("name", ["runbook", "action_id", "bad-name"])
def test_routes_may_not_map_onto_reserved_or_invalid_variables(name: str) -> None:
    with pytest.raises(ValueError, match="reserved or invalid"):
        AlertRoute(alertname="X", runbook="notify", constants={name: "x"})


async def test_host_answers_503_while_kafka_is_down_and_decides_once_it_is_back() -> None:
    publisher = MemoryPublisher()
    host = CollectorHost(
        CollectorConfig(alerts=CONFIG), publisher, metrics=CollectorMetrics(CollectorRegistry())
    )
    publisher.down = True
    assert (await host.alertmanager(notification(alert())))[0] == 503
    publisher.down = False
    assert (await host.alertmanager(notification(alert())))[0] == 200
    assert (await host.alertmanager(notification(alert())))[0] == 200
    assert [type(e).__name__ for e in publisher.events] == ["Decision"]
    assert publisher.state[0][0] == "a1b2c3d4e5f60718" and publisher.state[0][1]
    assert (await host.alertmanager(b"{broken"))[0] == 400
    assert host.restore_alerts([("a1b2c3d4e5f60718", None)]) == 0
