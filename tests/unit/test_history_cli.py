"""`novacron sql` / `audit report|chain` read the history with no worker running, and fail
non-zero when they cannot do what was asked (issue 20). chDB: one folder for this module."""

from __future__ import annotations

import fcntl
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.access import hash_token
from sinks.backend import ChdbBackend
from sinks.config import ClickHouseConfig
from sinks.ddl import apply_ddl
from sinks.writer import BatchingSink
from streams.cli import audit as audit_cli
from streams.cli import history
from streams.cli.history import sql_app
from streams.settings import Settings
from tests.unit.test_sinks_examples import EXAMPLES

runner = CliRunner()


def _sql_cli() -> object:
    import typer

    app = typer.Typer()
    app.command()(sql_app)
    return app


SQL = _sql_cli()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history-cli") / "chdb"
    backend = ChdbBackend(path)
    try:
        for db in ("novacron", "broken"):
            apply_ddl(backend, ClickHouseConfig(path=path, database=db))
            sink = BatchingSink(backend, db, sleep=lambda s: None)
            for i, event in enumerate(EXAMPLES.values()):
                sink.add(event, event.topic, 0, i)
            sink.flush()
        backend.execute("DROP TABLE broken.dead_letters")  # one report section cannot run
    finally:
        backend.close()  # no process holds the folder now: the CLI opens it itself
    return path


@pytest.fixture
def env(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NOVACRON_CLICKHOUSE__PATH", str(folder))
    monkeypatch.setenv("NOVACRON_DATA_DIR", str(tmp_path / "var"))
    for name in ("NOVACRON_SQL_URL", "NOVACRON_SQL_TOKEN", "NOVACRON_SQL_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    for console in (history.console, history.err):  # no wrapping: assert on whole messages
        monkeypatch.setattr(console, "width", 400)
    return folder


def test_sql_reads_the_folder_when_no_worker_holds_it(env) -> None:
    result = runner.invoke(SQL, ["SELECT count() AS n FROM metric_samples", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"n": 1}]


def test_sql_refuses_what_the_endpoint_refuses(env) -> None:
    result = runner.invoke(SQL, ["SELECT * FROM file('/etc/passwd')"])
    assert result.exit_code == 1 and "table function file() is not allowed" in result.output


def test_audit_report_json_and_chain(env) -> None:
    report = runner.invoke(audit_cli.audit_app, ["report", "--format", "json"])
    assert report.exit_code == 0, report.output
    sections = json.loads(report.output)
    assert sections["decision_log"] and all("error" not in r for s in sections.values() for r in s)
    cid = EXAMPLES["MetricSample"].correlation_id
    chain = runner.invoke(audit_cli.audit_app, ["chain", cid])
    assert chain.exit_code == 0, chain.output
    assert "MetricSample" in chain.output and "Outcome" in chain.output


def test_a_chain_nobody_has_exits_1(env) -> None:
    result = runner.invoke(audit_cli.audit_app, ["chain", "no-such-correlation-id"])
    assert result.exit_code == 1 and "no event has correlation id" in result.output


def test_a_report_with_a_failed_section_exits_1(env, monkeypatch) -> None:
    monkeypatch.setenv("NOVACRON_CLICKHOUSE__DATABASE", "broken")
    result = runner.invoke(audit_cli.audit_app, ["report", "--format", "markdown"])
    assert result.exit_code == 1
    assert "## decision log" in result.output  # the other sections are still shown
    assert "report sections failed: dlq_reasons" in result.output


def test_an_unreachable_server_exits_1(env, monkeypatch) -> None:
    monkeypatch.setenv("NOVACRON_CLICKHOUSE__BACKEND", "server")
    monkeypatch.setenv("NOVACRON_CLICKHOUSE__URL", "http://127.0.0.1:9")
    result = runner.invoke(audit_cli.audit_app, ["report"])
    assert result.exit_code == 1 and "cannot read the history" in result.output


def test_a_missing_folder_exits_1_and_says_what_to_run(env, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("NOVACRON_CLICKHOUSE__PATH", str(tmp_path / "nothing-here"))
    result = runner.invoke(audit_cli.audit_app, ["report"])
    assert result.exit_code == 1 and "novacron demo" in result.output
    assert not (tmp_path / "nothing-here").exists()  # a reader creates nothing


class _FakeWorker(BaseHTTPRequestHandler):
    """A worker's web port: /health, and /sql answering only the right bearer token."""

    token = "t0ken"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._answer(200, b'{"status": "ok"}')

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            self._answer(401, b'{"error": "missing or unknown bearer token"}')
        else:
            self._answer(200, b'{"n":42}\n')

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def held(tmp_path: Path) -> Iterator[Path]:
    """A chDB-shaped folder whose lock another process (here: this test) holds."""
    path = tmp_path / "held"
    (path / "metadata").mkdir(parents=True)
    with open(path / "status", "wb") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield path


@pytest.fixture
def worker_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _FakeWorker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_a_held_folder_with_no_worker_answering_exits_1(env, held, monkeypatch) -> None:
    monkeypatch.setenv("NOVACRON_CLICKHOUSE__PATH", str(held))
    monkeypatch.setenv("NOVACRON_SQL_URL", "http://127.0.0.1:9")
    result = runner.invoke(SQL, ["SELECT 1"])
    assert result.exit_code == 1 and "held by another process" in result.output


def test_a_held_folder_goes_through_the_worker_with_the_token(env, held, worker_url,
                                                              monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("NOVACRON_CLICKHOUSE__PATH", str(held))
    monkeypatch.setenv("NOVACRON_SQL_URL", worker_url + "/")
    no_token = runner.invoke(SQL, ["SELECT 1"])
    assert no_token.exit_code == 1 and "NOVACRON_SQL_TOKEN" in no_token.output
    token_file = tmp_path / "var" / "secrets" / "sql.token"  # the default place (data_dir)
    token_file.parent.mkdir(parents=True)
    token_file.write_text("wrong\n")
    wrong = runner.invoke(SQL, ["SELECT 1"])
    assert wrong.exit_code == 1 and "401" in wrong.output
    monkeypatch.setenv("NOVACRON_SQL_TOKEN", _FakeWorker.token)  # the env wins over the file
    ok = runner.invoke(SQL, ["SELECT 1", "--format", "json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output) == [{"n": 42}]


def test_the_sql_url_is_a_base_address_not_the_endpoint(env, monkeypatch) -> None:
    monkeypatch.setenv("NOVACRON_SQL_URL", "http://127.0.0.1:6066/sql")
    result = runner.invoke(SQL, ["SELECT 1"])
    assert result.exit_code == 1 and "base web address" in result.output


def test_settings_give_one_meaning_to_the_sql_url(monkeypatch) -> None:
    monkeypatch.delenv("NOVACRON_SQL_URL", raising=False)
    assert Settings(web={"host": "0.0.0.0", "port": 7000}).ingest_url() == "http://127.0.0.1:7000"
    monkeypatch.setenv("NOVACRON_SQL_URL", "http://ingest:6066/")
    assert Settings().ingest_url() == "http://ingest:6066"
    assert hash_token("x") != hash_token("y")


def test_the_demo_says_truthfully_how_to_query(tmp_path, monkeypatch) -> None:
    from streams.cli import demo

    class Running:
        pid = 4242

    monkeypatch.setattr(demo.console, "width", 400)
    settings = Settings(data_dir=tmp_path / "var")
    with demo.console.capture() as stopped:
        demo._how_to_query(settings, ["ingest", "govern"], [])
    with demo.console.capture() as kept:
        demo._how_to_query(settings, ["ingest", "govern"], [Running(), Running()])
    with demo.console.capture() as no_ingest:
        demo._how_to_query(settings, ["govern"], [Running()])
    assert "The workers have stopped; the CLI reads the history in" in stopped.get()
    assert "kill 4242 4242" in kept.get() and "through its /sql" in kept.get()
    assert str(tmp_path / "var" / "secrets" / "sql.token") in kept.get()
    assert "No ingest worker runs, so the CLI reads" in no_ingest.get()
