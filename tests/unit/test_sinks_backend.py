"""Backend adapters: the server adapter's calls and error mapping (fake client), fakes, factory."""

from __future__ import annotations

import pytest

from schemas.errors import BackendUnavailable, RejectedError
from sinks.backend import (
    Backend,
    FlakyBackend,
    MemoryBackend,
    ServerBackend,
    encode_json_rows,
    open_backend,
)
from sinks.config import ClickHouseConfig


class OperationalError(Exception):
    """Named like clickhouse-connect's connection failure."""


class FakeClient:
    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[tuple] = []
        self.fail = fail

    def _maybe_fail(self) -> None:
        if self.fail is not None:
            raise self.fail

    def command(self, sql):
        self._maybe_fail()
        self.calls.append(("command", sql))

    def raw_insert(self, table, insert_block=None, fmt=None):
        self._maybe_fail()
        self.calls.append(("insert", table, insert_block, fmt))

    def raw_query(self, sql, fmt=None, settings=None):
        self._maybe_fail()
        self.calls.append(("query", sql, fmt, settings))
        return b'{"n":1}\n{"n":2}\n'

    def close(self):
        self.calls.append(("close",))


def test_server_backend_inserts_one_json_block_and_parses_rows():
    client = FakeClient()
    b = ServerBackend("http://x:8123", "novacron", client=client)
    b.insert_rows("novacron.t", [{"a": 1, "t": "2026-01-01 00:00:00.001"}, {"a": 2}])
    b.insert_rows("novacron.t", [])  # nothing to do: no INSERT
    assert client.calls == [
        ("insert", "novacron.t", b'{"a":1,"t":"2026-01-01 00:00:00.001"}\n{"a":2}\n',
         "JSONEachRow"),
    ]
    assert b.query("SELECT n") == [{"n": 1}, {"n": 2}]
    assert client.calls[-1][3] == {"output_format_json_quote_64bit_integers": 0}
    assert isinstance(b, Backend)


def test_server_errors_are_classified():
    down = ServerBackend("u", client=FakeClient(OperationalError("connection refused")))
    with pytest.raises(BackendUnavailable, match="connection refused") as info:
        down.insert_rows("t", [{"a": 1}])
    assert isinstance(info.value.__cause__, OperationalError)
    with pytest.raises(BackendUnavailable):
        down.query("SELECT 1")
    bad = ServerBackend("u", client=FakeClient(ValueError("Code: 62. Syntax error")))
    with pytest.raises(RejectedError, match="Syntax error"):
        bad.query("SELEC 1")
    with pytest.raises(BackendUnavailable):  # any insert failure is retryable: lose nothing
        bad.insert_rows("t", [{"a": 1}])


def test_memory_and_flaky_backends():
    mem = MemoryBackend()
    with pytest.raises(RejectedError, match="does not run SQL"):
        mem.query("SELECT 1")
    flaky = FlakyBackend(mem)
    flaky.insert_rows("t", [{"a": 1}])
    flaky.down = True
    with pytest.raises(BackendUnavailable, match="simulated outage"):
        flaky.insert_rows("t", [{"a": 2}])
    flaky.down = False
    flaky.fail_next = 1
    with pytest.raises(BackendUnavailable):
        flaky.insert_rows("t", [{"a": 3}])
    flaky.insert_rows("t", [{"a": 4}])
    assert [r["a"] for r in mem.tables["t"]] == [1, 4] and flaky.failures == 2


def test_json_rows_encoding():
    assert encode_json_rows([{"m": {"k": 1.5}, "n": None}]) == b'{"m":{"k":1.5},"n":null}\n'


def test_open_backend_server_without_a_server_fails_retryably():
    # Port 9 (discard) on loopback: nothing listens, connect is refused at once.
    cfg = ClickHouseConfig(backend="server", url="http://default:secret@127.0.0.1:9")
    with pytest.raises(BackendUnavailable) as info:
        open_backend(cfg)
    assert "secret" not in str(info.value)
