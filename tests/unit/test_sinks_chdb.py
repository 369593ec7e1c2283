"""The history layer on the real chDB engine.

chDB allows one data folder per process at a time (a second folder fails until every session on
the first is closed), so this module opens ONE folder for all its tests and isolates them by
database name; the fixture closes it at module end so other modules can open their own folder.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from schemas import EVENT_TYPES, Event, MetricSample
from schemas.codec import Codec
from schemas.errors import NonRetryableError, RejectedError
from sinks import queries
from sinks.audit import AuditChain, verify_chain
from sinks.backend import ChdbBackend, FlakyBackend
from sinks.columns import ColumnBlock, event_columns
from sinks.config import ClickHouseConfig, SinkConfig
from sinks.ddl import TABLES, apply_ddl, quote
from sinks.readonly import ChdbReadEngine, GuardedReader, history_scope
from sinks.rows import format_datetime, to_row
from sinks.writer import BatchingSink
from tests.unit.test_sinks_examples import EXAMPLES, T0

_ids = itertools.count()


@pytest.fixture(scope="module")
def backend(tmp_path_factory) -> Iterator[ChdbBackend]:
    b = ChdbBackend(tmp_path_factory.mktemp("chdb"))
    yield b
    b.close()


@pytest.fixture
def cfg(backend) -> ClickHouseConfig:
    c = ClickHouseConfig(path=backend.path, database=f"t{next(_ids)}")
    apply_ddl(backend, c)
    return c


def write(backend, cfg, events, **kw) -> dict:
    sink = BatchingSink(backend, cfg.database, sleep=lambda s: None, **kw)
    for i, e in enumerate(events):
        sink.add(e, e.topic, 0, i)
    return sink.flush()


def test_ddl_twice_is_idempotent_and_adds_new_columns(backend, cfg):
    assert apply_ddl(backend, cfg) == []
    backend.execute(f"ALTER TABLE {quote(cfg.database)}.decisions DROP COLUMN model_version")
    assert apply_ddl(backend, cfg) == ["decisions.model_version"]
    tables = {r["name"] for r in backend.query(f"SHOW TABLES FROM {cfg.database}")}
    assert {s.name for s in TABLES.values()} | {"audit_log", "metric_rollup_1m"} <= tables


def test_every_event_type_round_trips(backend, cfg):
    write(backend, cfg, EXAMPLES.values())
    for etype, event in EXAMPLES.items():
        rows = backend.query(f"SELECT * FROM {cfg.database}.{TABLES[etype].name}")
        assert len(rows) == 1, etype
        row = rows[0]
        assert Codec().decode(row["payload"].encode(), EVENT_TYPES[etype]) == event
        assert row["event_id"] == event.event_id
        assert row["event_time"] == "2026-05-06 07:08:09.123"
        assert row["correlation_id"] == event.correlation_id
    ms = backend.query(f"SELECT * FROM {cfg.database}.metric_samples")[0]
    assert (ms["cpu_usage"], ms["memory_usage"], ms["request_rate"]) == (91.5, 40.25, None)
    assert ms["labels"] == {"region": "eu"} and ms["extra"] == {"disk": 0.5}
    ap = backend.query(f"SELECT expires_at FROM {cfg.database}.approvals")[0]
    assert ap["expires_at"] == "2026-05-06 08:00:00.456"
    dec = backend.query(f"SELECT params, confidence FROM {cfg.database}.decisions")[0]
    assert orjson.loads(dec["params"]) == {"delta": 1} and dec["confidence"] == 0.8
    cr = backend.query(f"SELECT standards, passed FROM {cfg.database}.compliance_results")[0]
    assert cr == {"standards": ["cis:2.1.1", "pci-dss:3.4"], "passed": False}


def test_the_arrow_insert_stores_what_the_json_rows_insert_stores(backend):
    rows_db, arrow_db = (ClickHouseConfig(path=backend.path, database=f"t{next(_ids)}")
                         for _ in range(2))
    for c in (rows_db, arrow_db):
        apply_ddl(backend, c)
    events = {**EXAMPLES, "sparse": MetricSample(resource_id="vm-2", event_time=T0)}
    for event in events.values():
        table = TABLES[event.event_type].name
        backend.insert_rows(f"{rows_db.database}.{table}", [to_row(event)])
        block = ColumnBlock(event.event_type)
        block.extend(event_columns(event.event_type, [event]))
        backend.insert_columns(f"{arrow_db.database}.{table}", block)
    for spec in TABLES.values():
        sql = "SELECT * EXCEPT ingested_at FROM {}.{} ORDER BY event_id"
        stored = backend.query(sql.format(arrow_db.database, spec.name))
        assert stored == backend.query(sql.format(rows_db.database, spec.name)), spec.name
        assert stored, spec.name


def test_millisecond_precision_is_preserved(backend, cfg):
    from datetime import timedelta

    events = [MetricSample(resource_id="vm", event_time=T0 + timedelta(milliseconds=i))
              for i in (0, 1, 999)]
    write(backend, cfg, events)
    rows = backend.query(
        f"SELECT event_time, toUnixTimestamp64Milli(event_time) AS ms "
        f"FROM {cfg.database}.metric_samples ORDER BY event_time"
    )
    base = int(T0.timestamp() * 1000)
    assert [r["ms"] for r in rows] == [base, base + 1, base + 999]
    assert [r["event_time"] for r in rows] == [format_datetime(e.event_time) for e in events]


def test_reinserted_events_deduplicate(backend, cfg):
    events = [MetricSample(resource_id=f"vm-{i}", event_time=T0, cpu_usage=1.0) for i in range(5)]
    write(backend, cfg, events)
    write(backend, cfg, events[:3])  # a redelivery after a crash before the commit
    db = cfg.database
    raw = backend.query(f"SELECT count() AS n FROM {db}.metric_samples")[0]["n"]
    final = backend.query(f"SELECT count() AS n FROM {db}.metric_samples FINAL")[0]["n"]
    assert (raw, final) == (8, 5)
    assert queries.table_counts(backend, db)["metric_samples"] == 5
    backend.execute(f"OPTIMIZE TABLE {db}.metric_samples FINAL")
    assert backend.query(f"SELECT count() AS n FROM {db}.metric_samples")[0]["n"] == 5
    rollup = backend.query(f"SELECT sum(samples) AS n FROM {db}.metric_rollup_1m_v")[0]
    assert rollup["n"] == 5  # the roll-up counts distinct event ids too


def test_outage_then_recovery_stores_everything_once(backend, cfg):
    flaky = FlakyBackend(backend)
    flaky.fail_next = 4
    events: list[Event] = [MetricSample(resource_id="vm", cpu_usage=float(i)) for i in range(50)]
    events.append(EXAMPLES["Decision"])
    delays: list[float] = []
    sink = BatchingSink(flaky, cfg.database, SinkConfig(batch_size=100), sleep=delays.append)
    for i, e in enumerate(events):
        sink.add(e, e.topic, 0, i)
    assert sink.flush() == {("metrics", 0): 50, ("decisions", 0): 51}
    assert delays == [0.5, 1.0, 2.0, 4.0] and flaky.failures == 4
    counts = queries.table_counts(backend, cfg.database)
    assert counts["metric_samples"] == 50 and counts["decisions"] == 1
    total = backend.query(f"SELECT count() AS n FROM {cfg.database}.metric_samples FINAL")
    assert total[0]["n"] == 50


def test_readonly_guard_and_engine(backend, cfg):
    write(backend, cfg, [EXAMPLES["MetricSample"]])
    # a read session next to the writer's, on the same folder (what the ingest worker's /sql uses)
    reader = GuardedReader(
        ChdbReadEngine(backend.path, cfg.database), history_scope(cfg.database), "test"
    )
    try:
        rows = reader.query("SELECT resource_id FROM metric_samples;")
        assert rows == [{"resource_id": "vm-1"}]
        csv = reader.query_raw(f"SELECT count() FROM {cfg.database}.metric_samples", "CSV")
        assert csv.strip() == b"1"
        with pytest.raises(RejectedError):
            reader.query_raw(f"DROP TABLE {cfg.database}.metric_samples")
    finally:
        reader.close()
    # The engine refuses writes too, even if the lexical guard were bypassed.
    with pytest.raises(RejectedError, match="readonly"):
        backend.query(f"CREATE TABLE {cfg.database}.x (a Int8) ENGINE = Memory "
                      "SETTINGS readonly = 1")
    with pytest.raises(RejectedError, match="readonly"):
        backend.query("SELECT * FROM file('/etc/hostname', 'LineAsString') SETTINGS readonly = 1")


def test_queries_chain_dlq_and_reports(backend, cfg):
    write(backend, cfg, list(EXAMPLES.values()) + [EXAMPLES["DeadLetter"]])
    sample = EXAMPLES["MetricSample"]
    steps = queries.chain(backend, cfg.database, sample.correlation_id)
    assert [s["event_type"] for s in steps] == sorted(
        ["MetricSample", "Insight", "Decision", "PolicyVerdict", "Approval", "Action", "Outcome"],
        key=lambda t: (EXAMPLES[t].event_time, EXAMPLES[t].event_id),
    )
    assert queries.dlq_count(backend, cfg.database) == 1
    reasons = queries.dlq_reasons(backend, cfg.database)
    assert reasons == [{"source_topic": "novacron.metrics", "error_kind": "decode",
                        "reason": "not valid JSON", "records": 1}]
    assert len(queries.sample_rows(backend, cfg.database, "decisions", 5)) == 1
    with pytest.raises(RejectedError, match="unknown history table"):
        queries.sample_rows(backend, cfg.database, "system.users")
    score = queries.run_report(backend, "compliance_score", cfg.database, standard="pci-dss")
    assert score == [{"framework": "pci-dss", "checks": 1, "passed_checks": 0, "score_pct": 0}]
    viol = queries.run_report(backend, "compliance_violations", cfg.database)
    assert [v["control_id"] for v in viol] == ["s3-public"]
    for name in queries.report_names():  # every building block runs on the engine
        assert isinstance(queries.run_report(backend, name, cfg.database), list)


def test_audit_chain_stored_verified_and_tamper_detected(backend, cfg):
    write(backend, cfg, EXAMPLES.values(), audit=AuditChain())
    rows = queries.audit_rows(backend, cfg.database)
    assert len(rows) == 11 and verify_chain(rows) == []  # one per audited type (GitSync too)
    tail = queries.audit_tail(backend, cfg.database)
    chain = AuditChain.resume(tail)
    write(backend, cfg, [EXAMPLES["Action"]], audit=chain)
    assert [r["seq"] for r in queries.audit_rows(backend, cfg.database)] == list(range(1, 13))
    assert verify_chain(queries.audit_rows(backend, cfg.database)) == []
    # Somebody rewrites history in place: the chain no longer verifies.
    backend.execute(f"ALTER TABLE {cfg.database}.audit_log UPDATE actor = 'mallory' "
                    "WHERE seq = 4 SETTINGS mutations_sync = 1")
    problems = verify_chain(queries.audit_rows(backend, cfg.database))
    assert problems == ["seq 4: hash does not match the row's content (row altered)"]


def test_second_folder_in_this_process_fails_clearly(backend, tmp_path):
    with pytest.raises(NonRetryableError, match="one folder per process"):
        ChdbBackend(tmp_path / "other")


def test_folder_locked_by_another_process(tmp_path_factory, backend):
    # Another process owns the module's folder while it is open here.
    code = (
        "import sys\nfrom sinks.backend import ChdbBackend\n"
        "from schemas.errors import NonRetryableError\n"
        "try:\n    ChdbBackend(sys.argv[1])\nexcept NonRetryableError as e:\n"
        "    print(e); sys.exit(3)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(backend.path)],
                          capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parents[2])
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert f"chDB folder {backend.path} is locked by another process" in proc.stdout


def test_insert_errors_are_retryable_with_the_cause_chained(backend, cfg):
    from schemas.errors import BackendUnavailable

    with pytest.raises(BackendUnavailable, match="no_such_table") as info:
        backend.insert_rows(f"{cfg.database}.no_such_table", [{"a": 1}])
    assert info.value.__cause__ is not None
    with pytest.raises(RejectedError, match="query failed"):
        backend.query("SELEC 1")


def test_processing_time_is_stored_and_chain_shows_each_hop(backend, cfg):
    sample = EXAMPLES["MetricSample"].model_copy(
        update={"produced_at": T0 + timedelta(milliseconds=5)})
    decision = EXAMPLES["Decision"].model_copy(update={
        "produced_at": T0 + timedelta(milliseconds=47), "causation_id": sample.event_id})
    old = EXAMPLES["PolicyVerdict"]  # a record of an older writer: no processing time
    write(backend, cfg, [sample, decision, old])
    rows = backend.query(f"SELECT produced_at FROM {cfg.database}.decisions")
    assert rows == [{"produced_at": "2026-05-06 07:08:09.170"}]
    steps = {s["event_type"]: s for s in queries.chain(backend, cfg.database,
                                                       sample.correlation_id)}
    assert steps["Decision"]["hop_ms"] == 42.0
    assert steps["MetricSample"]["hop_ms"] is None  # the first event has no cause
    old_row = steps["PolicyVerdict"]
    assert old_row["produced_at"] is None and old_row["hop_ms"] is None
    report = queries.run_report(backend, "hop_latency", cfg.database)
    assert report == [{"hop": "1 sample -> decision", "events": 1, "p50_ms": 42.0,
                       "p99_ms": 42.0, "max_ms": 42}]


def test_hop_latency_pairs_each_event_with_its_own_cause(backend, cfg):
    def at(ms: int) -> dict[str, object]:
        return {"produced_at": T0 + timedelta(milliseconds=ms)}

    decision = EXAMPLES["Decision"].model_copy(update=at(100))
    verdict = EXAMPLES["PolicyVerdict"].model_copy(
        update={**at(130), "causation_id": decision.event_id})
    action = EXAMPLES["Action"].model_copy(update={**at(160), "causation_id": decision.event_id})
    outcome = EXAMPLES["Outcome"].model_copy(
        update={**at(1160), "causation_id": action.event_id, "scope": "action"})
    step = EXAMPLES["Outcome"].model_copy(  # a step's outcome is not an action's end
        update={**at(2000), "causation_id": action.event_id, "scope": "step",
                "event_id": "00000000-0000-4000-8000-0000000000aa"})
    # an action whose cause id names no decision (its approval): no hop to pair it with
    approved = EXAMPLES["Action"].model_copy(update={
        **at(500), "causation_id": verdict.event_id,
        "event_id": "00000000-0000-4000-8000-0000000000ab"})
    write(backend, cfg, [decision, verdict, action, outcome, step, approved])
    report = {r["hop"]: (r["events"], r["max_ms"])
              for r in queries.run_report(backend, "hop_latency", cfg.database)}
    assert report == {"2 decision -> verdict": (1, 30), "3 decision -> action": (1, 60),
                      "4 action -> outcome": (1, 1000)}
