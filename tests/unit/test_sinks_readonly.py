"""Read-only SQL: the parse-tree allow-list (with ClickHouse's real parser) and the engine limits.

chDB allows one data folder per process, so this module opens one folder (closed at module end).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from agents.drift.listing import open_findings_sql
from schemas.errors import RejectedError
from sinks import queries, readonly
from sinks.backend import ChdbBackend
from sinks.config import ClickHouseConfig, SqlLimits
from sinks.ddl import apply_ddl
from sinks.readonly import ChdbReadEngine, GuardedReader, ServerReadEngine, history_scope
from sinks.sqlfunctions import FUNCTIONS_FILE, load_allow_list
from sinks.sqlguard import GuardScope, ParsedQuery, check_ast, check_sql
from sinks.writer import BatchingSink
from tests.unit.test_sinks_examples import EXAMPLES

ATTACKS = Path(__file__).resolve().parents[1] / "fixtures" / "sql_attacks.txt"


def attack_corpus() -> list[tuple[str, str]]:
    """(what it tries, statement) for every block of tests/fixtures/sql_attacks.txt."""
    blocks: list[tuple[str, list[str]]] = []
    for line in ATTACKS.read_text(encoding="utf-8").splitlines():
        if line.startswith("=== "):
            blocks.append((line[4:], []))
        elif blocks:
            blocks[-1][1].append(line)
    return [(name, "\n".join(lines).strip()) for name, lines in blocks]


CORPUS = attack_corpus()


class SpyEngine:
    """The real read engine, recording what it was asked to run."""

    def __init__(self, inner: ChdbReadEngine) -> None:
        self.inner, self.ran = inner, []

    def parse(self, sql: str) -> ParsedQuery:
        return self.inner.parse(sql)

    def run(self, sql: str, fmt: str) -> bytes:
        self.ran.append(sql)
        return self.inner.run(sql, fmt)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("chdb-readonly")
    backend = ChdbBackend(path)
    try:
        apply_ddl(backend, ClickHouseConfig(path=path))
        sink = BatchingSink(backend, "novacron", sleep=lambda s: None)
        for i, event in enumerate(EXAMPLES.values()):
            sink.add(event, event.topic, 0, i)
        sink.flush()
        yield path
    finally:
        backend.close()


@pytest.fixture(scope="module")
def engine(folder: Path) -> Iterator[ChdbReadEngine]:
    e = ChdbReadEngine(folder, "novacron", SqlLimits(max_execution_seconds=2, max_result_rows=50))
    yield e
    e.close()


@pytest.fixture
def spy(engine: ChdbReadEngine) -> SpyEngine:
    return SpyEngine(engine)


@pytest.fixture
def reader(spy: SpyEngine) -> GuardedReader:
    return GuardedReader(spy, history_scope("novacron"), "test folder")


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 30 and all(sql for _, sql in CORPUS)


@pytest.mark.parametrize(("what", "sql"), CORPUS, ids=[w for w, _ in CORPUS])
def test_attack_is_refused_before_it_runs(reader: GuardedReader, spy: SpyEngine, what, sql):
    with pytest.raises(RejectedError, match="read-only SQL rejected"):
        reader.query_raw(sql)
    assert spy.ran == []


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count() FROM metric_samples",
        "select COUNT(*) from novacron.metric_samples;",
        "WITH x AS (SELECT resource_id FROM decisions) SELECT count() FROM x",
        "SELECT resource_id, argMax(cpu_usage, event_time) FROM metric_samples FINAL "
        "GROUP BY resource_id ORDER BY resource_id",
        "SELECT countIf(cpu_usage > 50), uniqExactState(event_id) FROM metric_samples",
        "SELECT row_number() OVER (ORDER BY event_time) AS n FROM metric_samples",
        "SELECT arrayMap(x -> x * 2, [1, 2]) AS a, JSONExtractInt(params, 'delta') FROM decisions",
        "SELECT count() FROM metric_samples "
        "WHERE resource_id IN (SELECT resource_id FROM decisions)",
        "WITH ids AS (SELECT resource_id FROM decisions) "
        "SELECT count() FROM metric_samples WHERE resource_id IN ids",
        "SELECT * FROM system.one",
        "SELECT sum(number) FROM numbers(10)",
        "SELECT 1 /* a comment */ -- and another",
        "SHOW TABLES",
        "SHOW TABLES FROM novacron LIKE 'metric%'",
        "DESCRIBE metric_samples",
        "DESC TABLE `novacron`.`decisions`",
        "EXPLAIN SELECT count() FROM metric_samples",
        "EXPLAIN SYNTAX SELECT 1",
    ],
)
def test_reads_of_the_history_run(reader: GuardedReader, spy: SpyEngine, sql: str) -> None:
    reader.query_raw(sql)
    assert len(spy.ran) == 1


def test_a_viewer_query_returns_rows(reader: GuardedReader) -> None:
    assert reader.query("SELECT count() AS n FROM metric_samples") == [{"n": 1}]


def test_what_runs_is_the_text_that_was_checked(reader: GuardedReader, spy: SpyEngine) -> None:
    sql = "SELECT 'a\\tb\\\\c' AS s,\n\t'x' AS t -- end"
    assert reader.query(sql) == [{"s": "a\tb\\c", "t": "x"}]
    assert spy.ran == [sql]


def test_describe_runs_a_statement_built_from_checked_names(reader, spy) -> None:
    reader.query_raw("DESCRIBE TABLE novacron.metric_samples")
    assert spy.ran == ["DESCRIBE TABLE `novacron`.`metric_samples`"]


def test_formats_come_from_a_fixed_list(reader: GuardedReader) -> None:
    assert reader.query_raw("SELECT 1 AS x", "CSVWithNames") == b'"x"\n1\n'
    for fmt in ("Native", "RowBinary", "JSON SETTINGS readonly=0", "Parquet", ""):
        with pytest.raises(RejectedError, match="unknown output format"):
            reader.query_raw("SELECT 1", fmt)


def test_too_long_statements_are_refused(reader: GuardedReader) -> None:
    with pytest.raises(RejectedError, match="longer than"):
        reader.query_raw("SELECT '" + "x" * 70_000 + "'")


@pytest.mark.parametrize("name", queries.report_names())
def test_every_report_passes_the_checker(reader: GuardedReader, name: str) -> None:
    reader.query(queries.render_sql(name, "novacron"))


def test_the_project_queries_pass_the_checker(reader: GuardedReader) -> None:
    event = next(iter(EXAMPLES.values()))
    assert queries.table_counts(reader, "novacron")["metric_samples"] == 1
    assert queries.chain(reader, "novacron", event.correlation_id)
    queries.dlq_reasons(reader, "novacron")
    queries.sample_rows(reader, "novacron", "decisions", 3)
    queries.audit_rows(reader, "novacron")
    reader.query(open_findings_sql(severities=["HIGH"], resource_type="x"))


# --- the engine is the second line: readonly and limits hold even without the checker ---------


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO metric_samples (event_id) VALUES ('x')",
        "SELECT * FROM file('/etc/hostname', 'LineAsString')",
        "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')",
        "SET readonly = 0",
        "SELECT 1 SETTINGS max_execution_time = 0",
        "DROP TABLE novacron.audit_log",
    ],
)
def test_the_read_session_refuses_writes_and_escapes_itself(engine: ChdbReadEngine, sql: str):
    with pytest.raises(RejectedError, match="READONLY|readonly"):
        engine.run(sql, "JSONEachRow")


def test_the_engine_cancels_long_queries_and_large_results(engine: ChdbReadEngine) -> None:
    with pytest.raises(RejectedError, match="TIMEOUT_EXCEEDED"):
        engine.run("SELECT count() FROM numbers(100000000000) WHERE cityHash64(number) = 0", "CSV")
    with pytest.raises(RejectedError, match="TOO_MANY_ROWS_OR_BYTES|result rows"):
        engine.run("SELECT number FROM numbers(1000)", "CSV")


class FakeClickHouseClient:
    """clickhouse-connect's `raw_query`, recording what the server would receive."""

    def __init__(self, parse_row: bytes) -> None:
        self.parse_row, self.calls = parse_row, []

    def raw_query(self, sql: str, parameters: Any = None, settings: Any = None,
                  fmt: str = "") -> bytes:
        self.calls.append({"sql": sql, "parameters": parameters, "settings": settings, "fmt": fmt})
        return self.parse_row if "parseQueryToJSON" in sql else b'{"n":1}\n'

    def close(self) -> None:
        pass


def test_the_server_reader_binds_the_statement_and_sends_the_limits(engine) -> None:
    sql = "SELECT count() AS n FROM metric_samples"
    # the server answers the parse exactly as the engine does (the same ClickHouse parser)
    parse_row = engine._session().query(
        readonly._PARSE, "JSONEachRow", params={"q": readonly._param(sql)}
    ).bytes()
    client = FakeClickHouseClient(parse_row)
    server = ServerReadEngine("http://unused", "novacron", SqlLimits(max_execution_seconds=7),
                              client=client)
    reader = GuardedReader(server, history_scope("novacron"), "server")
    assert reader.query(sql) == [{"n": 1}]
    parse, run = client.calls
    assert parse["parameters"] == {"q": sql}
    assert run["sql"] == sql and run["fmt"] == "JSONEachRow"
    assert run["settings"]["max_execution_time"] == 7.0
    assert list(run["settings"].items())[-1] == ("readonly", 1)  # last: nothing changes it after
    with pytest.raises(RejectedError):
        reader.query("SELECT * FROM system.settings")  # the canned parse does not match: refused


# --- the checker on its own --------------------------------------------------------------------


def _scope() -> GuardScope:
    return GuardScope(database="novacron", tables=frozenset({"metric_samples"}))


class FixedParser:
    def __init__(self, ast: dict[str, Any], round_trips: bool = True) -> None:
        self.parsed = ParsedQuery(ast, round_trips)

    def parse(self, sql: str) -> ParsedQuery:
        return self.parsed


def test_node_types_the_checker_does_not_know_are_refused() -> None:
    ast = {"type": "SelectWithUnionQuery", "list_of_selects": {"type": "ExpressionList",
           "children": [{"type": "SelectQuery", "select": {"type": "FutureNode"}}]}}
    with pytest.raises(RejectedError, match="FutureNode is not allowed"):
        check_ast(ast, _scope())


def test_a_tree_that_does_not_format_back_to_the_text_is_refused() -> None:
    ast = {"type": "SelectWithUnionQuery"}
    with pytest.raises(RejectedError, match="cannot see in full"):
        check_sql("SELECT 1", _scope(), FixedParser(ast, round_trips=False))


def test_statement_kinds_outside_the_list_are_refused() -> None:
    for kind in ("InsertQuery", "AlterQuery", "SystemQuery", None):
        with pytest.raises(RejectedError, match="not a read statement"):
            check_ast({"type": kind}, _scope())


def test_function_allow_list() -> None:
    allowed = load_allow_list()
    for name in ("count", "COUNT", "sumIf", "uniqExactMerge", "quantilesIfOrNull", "argMax",
                 "toStartOfMinute", "JSONExtractString", "lambda", "if", "domain"):
        assert allowed.allows(name), name
    for name in ("file", "FILE", "sleep", "sleepEachRow", "getSetting", "dictGet", "joinGet",
                 "hostName", "currentUser", "fileIf", "sleepOrNull", "aiGenerate", "logTrace",
                 "_CAST", "getMacro", "filesystemAvailable", "", "fіle"):
        assert not allowed.allows(name), name


def test_the_checked_in_allow_list_is_what_the_rules_derive_from_this_engine() -> None:
    # run in a fresh process: chDB's in-memory engine cannot open while this module's folder is
    out = subprocess.run(
        [sys.executable, "-m", "sinks.sqlfunctions"], capture_output=True, text=True, check=True,
        timeout=120,
    )
    derived, stored = orjson.loads(out.stdout), orjson.loads(FUNCTIONS_FILE.read_bytes())
    assert derived == stored, (
        "the engine's functions changed: run `python -m sinks.sqlfunctions --write` and review "
        "the diff of sinks/sqlfunctions.json"
    )
