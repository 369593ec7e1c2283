"""Bearer tokens + the shipped Rego access policy, as the control API and /sql use them; the
order of /sql's refusals (503 → 401 → 403 → 400) with a fake reader."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agents.access import ApiSubject, Authoriser, hash_token
from policies.engine import RegoEngine, StaticSource
from policies.source import load_directory
from schemas.errors import RejectedError
from streams.sqlview import SqlEndpoint

ACCESS = Path(__file__).resolve().parents[2] / "policies" / "rego" / "access"
TOKENS = {
    hash_token("v"): ApiSubject(user="vera", role="viewer"),
    hash_token("o"): ApiSubject(user="olu", role="operator"),
    hash_token("g"): ApiSubject(user="gus", role="guest"),
}
HISTORY = {"type": "history", "path": "/sql"}


def _authoriser(policies: list | None = None) -> Authoriser:
    source = StaticSource(load_directory(ACCESS) if policies is None else policies)
    return Authoriser(RegoEngine(source), TOKENS)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_viewers_and_operators_may_read_the_history() -> None:
    auth = _authoriser()
    for token in ("v", "o"):
        subject, denied = auth.check(_bearer(token), "read", HISTORY, "GET")
        assert denied is None and subject is not None


def test_tokens_are_checked_before_any_policy() -> None:
    auth = _authoriser()
    for headers in ({}, _bearer("nope"), {"Authorization": "Basic dg=="}, _bearer("")):
        subject, denied = auth.check(headers, "read", HISTORY, "GET")
        assert subject is None and denied is not None and denied.status == 401


def test_roles_the_policy_does_not_allow_are_403_with_the_reason() -> None:
    auth = _authoriser()
    _, guest = auth.check(_bearer("g"), "read", HISTORY, "GET")
    _, viewer_writes = auth.check(_bearer("v"), "write", HISTORY, "POST")
    assert guest is not None and guest.status == 403
    assert viewer_writes is not None and "role 'viewer' may not write history" in str(
        viewer_writes.body()
    )


def test_no_access_policy_in_force_fails_closed() -> None:
    _, denied = _authoriser([]).check(_bearer("v"), "read", HISTORY, "GET")
    assert denied is not None and denied.status == 403
    assert "no access policy is in force" in str(denied.body())
    disabled = [p.model_copy(update={"enabled": False}) for p in load_directory(ACCESS)]
    _, denied = _authoriser(disabled).check(_bearer("v"), "read", HISTORY, "GET")
    assert denied is not None and denied.status == 403


class _Access:
    def __init__(self, ready: bool) -> None:
        self.error = ""
        self.ready = asyncio.Event()
        if ready:
            self.ready.set()
        self.authoriser = _authoriser()


class _Reader:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def query_raw(self, sql: str, fmt: str) -> bytes:
        self.asked.append((sql, fmt))
        if "file" in sql:
            raise RejectedError("read-only SQL rejected: table function file() is not allowed")
        return b'{"n":1}\n'

    def close(self) -> None:
        pass


def _handle(access: _Access, reader: _Reader, headers: dict[str, str], sql: str,
            fmt: str = "JSONEachRow") -> tuple[int, Any, str]:
    endpoint = SqlEndpoint(reader, access, 1)  # type: ignore[arg-type]
    try:
        return asyncio.run(endpoint.handle("GET", headers, sql, fmt))
    finally:
        endpoint.close()


@pytest.mark.parametrize(
    ("ready", "headers", "sql", "fmt", "status"),
    [
        (False, _bearer("v"), "SELECT 1", "JSONEachRow", 503),
        (True, {}, "SELECT * FROM file('/etc/passwd')", "JSONEachRow", 401),
        (True, _bearer("g"), "SELECT * FROM file('/etc/passwd')", "JSONEachRow", 403),
        (True, _bearer("v"), "SELECT 1", "Native", 400),
        (True, _bearer("v"), "SELECT * FROM file('/etc/passwd')", "JSONEachRow", 400),
        (True, _bearer("v"), "SELECT count() FROM metric_samples", "JSONEachRow", 200),
    ],
)
def test_sql_endpoint_refuses_in_order(ready, headers, sql, fmt, status) -> None:
    reader = _Reader()
    got, body, _ = _handle(_Access(ready), reader, headers, sql, fmt)
    assert got == status, body
    assert bool(reader.asked) == (status in (200, 400) and fmt == "JSONEachRow")
