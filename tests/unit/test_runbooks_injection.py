"""Injection corpus: hostile action params reach command, http and notification steps as data only.

Each payload travels as an Action's params (event data) through the Executor. After every run the
test checks side effects: the canary file was not created, the canary folder still exists, the
recorder saw exactly one argv element per template argument, the server saw exactly the request it
should, and no child process is left.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from agents.executor import Executor, ExecutorConfig, InMemoryJournal
from runbooks.loader import Library
from runbooks.steps.web import slack_escape
from schemas import Event, Outcome
from tests.unit.test_runbooks_support import ServerState, approved, book, local_server

CORPUS = Path(__file__).parents[1] / "fixtures" / "injection_payloads.txt"
RAW = [json.loads(line) for line in CORPUS.read_text().splitlines() if line and line[0] != "#"]
RECORDER = (
    "import sys, json, os; open(os.environ['REC'], 'a').write(json.dumps(sys.argv[1:]) + '\\n')"
)


def materialise(raw: str, canary: Path) -> str:
    if raw == "LONG_10K":
        return "A" * 10_000 + "; touch " + str(canary)
    if raw == "LONG_70K":
        return "B" * 70_000
    return raw.replace("CANARY_DIR", str(canary.parent / "keep")).replace("CANARY", str(canary))


def children() -> list[int]:
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, ServerState]]:
    with local_server() as srv:
        yield srv


HTTP = httpx.AsyncClient()  # one client for the module: TLS context setup is slow


def selectable(rid: str) -> dict[str, Any]:
    """Pickable by run_runbook, with `p` a string parameter events may set."""
    return {
        "id": rid,
        "metadata": {"id": rid, "selectable": True},
        "parameters": {"p": {"type": "string", "overridable": True}},
    }


def library(url: str, rec: Path) -> Library:
    lib = Library([])
    py = sys.executable
    lib.add(
        book(
            [
                {
                    "id": "c",
                    "action_type": "command",
                    "action": [py, "-I", "-S", "-c", RECORDER, "opt", "--value=${p}"],
                    "parameters": {"env": {"REC": str(rec)}},
                }
            ],
            **selectable("inj-opt"),
        )
    )
    lib.add(
        book(
            [
                {
                    "id": "c",
                    "action_type": "command",
                    "action": [py, "-I", "-S", "-c", RECORDER, "pos", "${p}"],
                    "parameters": {"env": {"REC": str(rec)}},
                }
            ],
            **selectable("inj-pos"),
        )
    )
    lib.add(
        book(
            [
                {
                    "id": "h",
                    "action_type": "http",
                    "action": f"{url}/records/${{p}}?q=${{p}}",
                    "parameters": {
                        "method": "PUT",
                        "json": {"target": "${p}", "note": "x ${p}"},
                        "headers": {"X-Tag": "${p}"},
                    },
                }
            ],
            **selectable("inj-http"),
        )
    )
    base = selectable("inj-http-base")  # the same request through an endpoint base URL
    base["parameters"]["api"] = {"type": "string", "kind": "endpoint", "default": url + "/"}
    lib.add(
        book(
            [
                {
                    "id": "h",
                    "action_type": "http",
                    "action": "${api}/records/${p}?q=${p}",
                    "parameters": {
                        "method": "PUT",
                        "json": {"target": "${p}", "note": "x ${p}"},
                        "headers": {"X-Tag": "${p}"},
                    },
                }
            ],
            **base,
        )
    )
    lib.add(
        book(
            [
                {
                    "id": "n",
                    "action_type": "notification",
                    "action": "alert: ${p}",
                    "parameters": {"webhook_url": f"{url}/hook"},
                }
            ],
            **selectable("inj-note"),
        )
    )
    return lib


async def run(url: str, runbook: str, payload: str, rec: Path) -> list[Event]:
    events: list[Event] = []
    lib = library(url, rec)
    ex = Executor(
        ExecutorConfig(), journal=InMemoryJournal(), emit=events.append, library=lib, http=HTTP
    )
    action = approved(
        lib, "run_runbook", {"runbook": runbook, "p": payload}, action_id=f"a-{runbook}",
        resource_id="r",
    )
    try:
        await ex.handle(action)
    finally:
        await ex.aclose()
    return events


DOT_SEGMENTS = ("", ".", "..")
"""Path segments a URL parser resolves (`/records/..` is `/`): refused as values."""


def refused(payload: str) -> bool:
    return "\x00" in payload or len(payload) > 65_536


def test_corpus_is_large_enough() -> None:
    assert len(RAW) >= 30


@pytest.mark.parametrize("raw", RAW, ids=[f"p{i}" for i in range(len(RAW))])
async def test_payload_is_inert(raw: str, tmp_path: Path, server: tuple[str, ServerState]) -> None:
    url, state = server
    canary = tmp_path / "canary"
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "file").write_text("x")
    payload = materialise(raw, canary)
    rec = tmp_path / "rec.jsonl"
    # command steps: each template argument stays one argv element
    await run(url, "inj-opt", payload, rec)
    await run(url, "inj-pos", payload, rec)
    seen = [json.loads(x) for x in rec.read_text().splitlines()] if rec.exists() else []
    expected = [] if refused(payload) else [["opt", "--value=" + payload]]
    if not refused(payload) and not (payload.startswith("-") and payload.lstrip("-") != ""):
        expected.append(["pos", payload])
    assert seen == expected
    # http: one percent-encoded path segment, JSON-typed body, no header splitting; the same
    # with a literal base URL and with an endpoint parameter as the base
    for runbook in ("inj-http", "inj-http-base"):
        before = len(state.requests)
        events = await run(url, runbook, payload, rec)
        sent = state.requests[before:]
        if refused(payload) or not all(32 <= ord(c) < 127 for c in payload):  # bad header
            assert sent == []
        elif payload in DOT_SEGMENTS:  # would resolve to another endpoint: refused, said why
            assert sent == []
            assert any("makes a URL path segment" in (e.error or "") for e in events
                       if isinstance(e, Outcome) and e.step_id == "h")
        else:
            (req,) = sent
            assert req.path == f"/records/{quote(payload, safe='')}?q={quote(payload, safe='')}"
            assert req.body == {"target": payload, "note": "x " + payload}
            assert req.headers["X-Tag"] == payload.strip(" ")
    # notification: the Slack body is exactly {"text": …} with the value escaped
    before = len(state.requests)
    await run(url, "inj-note", payload, rec)
    sent = state.requests[before:]
    if refused(payload):
        assert sent == []
    else:
        (req,) = sent
        assert req.body == {"text": "alert: " + slack_escape(payload)}
    assert not canary.exists() and (tmp_path / "keep" / "file").exists()
    assert children() == []
