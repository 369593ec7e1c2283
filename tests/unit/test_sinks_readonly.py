"""The read-only guard accepts single read statements and rejects anything with side effects."""

from __future__ import annotations

import pytest

from schemas.errors import RejectedError
from sinks.backend import MemoryBackend
from sinks.readonly import check_readonly, readonly_sql, run_readonly


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "select count() from novacron.metric_samples;",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "SHOW TABLES FROM novacron",
        "DESCRIBE TABLE novacron.decisions",
        "EXPLAIN SELECT 1",
        "SELECT 'DROP TABLE x; INSERT' AS s  -- a comment with DROP",
        "SELECT name FROM system.tables /* ALTER */ WHERE database = 'novacron'",
        "SELECT formatDateTime(now(), '%F'), replaceAll('a', 'a', 'b')",
        "SELECT * FROM numbers(3)",
    ],
)
def test_accepts_reads(sql):
    assert check_readonly(sql) == sql.strip().rstrip(";")


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("INSERT INTO t VALUES (1)", "INSERT is not allowed"),
        ("DROP TABLE novacron.decisions", "DROP is not allowed"),
        ("ALTER TABLE t DELETE WHERE 1", "ALTER is not allowed"),
        ("SELECT 1; DROP TABLE t", "one statement"),
        ("SELECT 1; SELECT 2", "one statement"),
        ("SELECT * FROM t INTO OUTFILE '/tmp/x'", "INTO, OUTFILE"),
        ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "file()"),
        ("SELECT * FROM url('http://x/', CSV, 'a String')", "url()"),
        ("SELECT * FROM s3('http://x/b', 'CSV')", "s3()"),
        ("SELECT * FROM remote('h:9000', system.one)", "remote()"),
        ("SELECT * FROM t SETTINGS readonly=0", "SETTINGS"),
        ("SELECT 1 FORMAT JSON", "FORMAT"),
        ("SELECT 'unterminated", "unterminated"),
        ("SELECT 1 # DROP TABLE x", "'#'"),
        ("WITH (SELECT 1) AS x INSERT INTO t SELECT x", "INSERT"),
        ("", "empty"),
        ("  ;  ", "empty"),
        ("SYSTEM STOP MERGES", "SYSTEM is not allowed"),
    ],
)
def test_rejects_writes_and_escapes(sql, why):
    with pytest.raises(RejectedError, match="read-only SQL rejected") as info:
        check_readonly(sql)
    assert why in str(info.value)


def test_engine_settings_put_readonly_last():
    sql = readonly_sql("SELECT 1;", max_seconds=5, max_rows=10)
    assert sql.startswith("SELECT 1\nSETTINGS max_execution_time = 5, max_result_rows = 10")
    assert sql.endswith("readonly = 1")


def test_unknown_format_is_rejected_before_running():
    with pytest.raises(RejectedError, match="unknown output format"):
        run_readonly(MemoryBackend(), "SELECT 1", "Native")
