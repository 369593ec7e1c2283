"""The executor: action → runbook, at most once per action id, resume after a crash (SIGKILL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agents.executor import Executor, ExecutorConfig, FileJournal, InMemoryJournal
from runbooks.journal import WORKFLOW
from runbooks.loader import Library
from schemas import Action, Event, Outcome
from tests.unit.effector_support import bare_repo, read
from tests.unit.test_runbooks_support import approved, book

HOLD = "import os, time, sys\nwhile os.path.exists(sys.argv[1]):\n    time.sleep(0.02)\n"


@pytest.fixture
def infra_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "fake_infra.jsonl"
    monkeypatch.setenv("NOVACRON_FAKE_INFRA_LOG", str(path))
    return path


def no_events() -> list[Event]:
    return []


def verbs(path: Path) -> list[str]:
    return [json.loads(x)["verb"] for x in path.read_text().splitlines()] if path.exists() else []


def five_steps(idempotent: bool = True, hold: Path | None = None) -> dict[str, Any]:
    def cmd(i: int) -> dict[str, Any]:
        step: dict[str, Any] = {
            "id": f"s{i}",
            "action_type": "command",
            "critical": True,
            "action": f"python -m runbooks.fake_infra s{i} --target=${{resource_id}}",
            "compensation": {
                "action_type": "command",
                "action": f"python -m runbooks.fake_infra undo-s{i}",
            },
        }
        if i > 1:
            step["dependencies"] = [f"s{i - 1}"]
        return step

    steps = [cmd(i) for i in range(1, 6)]
    if hold is not None:  # step 3 logs, then waits while the hold file exists
        steps[2]["action"] = ["python", "-m", "runbooks.fake_infra", "s3"]
        steps.insert(
            3,
            {
                "id": "s3wait",
                "action_type": "command",
                "dependencies": ["s3"],
                "action": ["python", "-c", HOLD, str(hold)],
                "idempotent": True,
            },
        )
        steps[4]["dependencies"] = ["s3wait"]
    steps[2]["idempotent"] = idempotent
    return {"metadata": {"id": "five", "selectable": True}, "steps": steps}


def five_library(runbook: dict[str, Any] | None = None) -> Library:
    lib = Library()
    steps = (runbook or five_steps())["steps"]
    lib.add(book(steps, id="five", metadata={"id": "five", "selectable": True}))
    return lib


def executor(journal: Any, events: list[Event], runbook: dict[str, Any] | None = None) -> Executor:
    lib = five_library(runbook)
    return Executor(ExecutorConfig(), journal=journal, emit=events.append, library=lib)


def five(runbook: dict[str, Any] | None = None, **kw: Any) -> Action:
    """The gate's action for `run_runbook five` (resolved against that very runbook)."""
    return approved(five_library(runbook), "run_runbook", {"runbook": "five"}, **kw)


async def test_action_type_maps_to_the_library_runbook(tmp_path: Path) -> None:
    remote = bare_repo(tmp_path, {"services/web-1.yaml": {"service": "web-1", "replicas": 2}})
    events: list[Event] = []
    ex = Executor(ExecutorConfig(defaults={"config_repo": str(remote)}),
                  journal=InMemoryJournal(), emit=events.append)
    result = await ex.handle(approved(Library(), "scale_up", {"delta": 3}))
    assert result.ok and result.runbook_id == "scale-up"
    assert read(remote, "services/web-1.yaml")["replicas"] == 5
    assert not any(e.simulated for e in events if isinstance(e, Outcome))


async def test_a_fake_infra_runbook_warns_and_its_outcomes_say_simulated(
        infra_log: Path, caplog: pytest.LogCaptureFixture) -> None:
    lib = Library([])
    lib.add(book([{"id": "s", "action_type": "command",
                   "action": "python -m runbooks.fake_infra scale --service=${resource_id}"}],
                 id="fake-scale", metadata={"id": "fake-scale", "selectable": True}))
    lib.add(book([{"id": "w", "action_type": "workflow", "action": "fake-scale"}],
                 id="wraps-fake", metadata={"id": "wraps-fake", "selectable": True}))
    lib.add(book([{"id": "n", "action_type": "noop"}], id="real",
                 metadata={"id": "real", "selectable": True}))
    events: list[Event] = []
    with caplog.at_level("WARNING"):
        ex = Executor(journal=InMemoryJournal(), emit=events.append, library=lib)
    assert "fake-scale, wraps-fake use the fake_infra TEST backend" in caplog.text
    for rid in ("fake-scale", "wraps-fake", "real"):
        await ex.handle(approved(lib, "run_runbook", {"runbook": rid}, action_id=rid))
    flags = {(e.action_id, e.scope, e.status): e.simulated for e in events
             if isinstance(e, Outcome)}
    assert flags[("fake-scale", "action", "succeeded")] is True
    assert flags[("fake-scale", "step", "succeeded")] is True
    assert flags[("wraps-fake/w", "step", "succeeded")] is True  # the sub-workflow's steps
    assert flags[("wraps-fake", "action", "succeeded")] is True
    assert flags[("real", "action", "succeeded")] is False


async def test_redelivered_action_runs_once(infra_log: Path, tmp_path: Path) -> None:
    events: list[Event] = []
    journal = FileJournal(tmp_path / "journal.jsonl")
    first = await executor(journal, events).handle(five())
    again = await executor(journal, events).handle(five())
    journal.close()
    reopened = FileJournal(tmp_path / "journal.jsonl")  # a restarted worker
    third = await executor(reopened, events).handle(five())
    assert first.ok and again.status == third.status == "skipped"
    assert verbs(infra_log).count("s1") == 1 and len(verbs(infra_log)) == 5  # side effects once
    skipped = [e for e in events if isinstance(e, Outcome) and e.status == "skipped"]
    assert [e.output["reason"] for e in skipped] == ["already executed"] * 2


async def seed_crash(journal: Any, started: list[str], finished: list[str]) -> None:
    await journal.record("act-1", WORKFLOW, "started")
    for sid in started:
        await journal.record("act-1", sid, "started")
        if sid in finished:
            await journal.record("act-1", sid, "finished")


async def test_resume_runs_only_the_remaining_steps(infra_log: Path) -> None:
    journal, events = InMemoryJournal(), no_events()
    await seed_crash(journal, ["s1", "s2", "s3"], ["s1", "s2"])
    result = await executor(journal, events).handle(five())
    assert result.ok and result.resumed
    assert verbs(infra_log) == ["s3", "s4", "s5"]  # s3 is idempotent: re-run


async def test_interrupted_non_idempotent_step_fails_and_compensates(infra_log: Path) -> None:
    journal, events = InMemoryJournal(), no_events()
    await seed_crash(journal, ["s1", "s2", "s3"], ["s1", "s2"])
    ex = executor(journal, events, five_steps(idempotent=False))
    result = await ex.handle(five(five_steps(idempotent=False)))
    assert result.status == "compensated" and "interrupted" in (result.error or "")
    assert verbs(infra_log) == ["undo-s3", "undo-s2", "undo-s1"]
    assert result.compensated == ["s3", "s2", "s1"]


async def test_crash_during_compensation_resumes_compensation(infra_log: Path) -> None:
    journal, events = InMemoryJournal(), no_events()
    await seed_crash(journal, ["s1", "s2", "s3"], ["s1", "s2"])
    await journal.record("act-1", "s3", "failed")
    await journal.record("act-1", "s2.compensate", "started")
    await journal.record("act-1", "s2", "compensated")
    result = await executor(journal, events).handle(five())
    assert verbs(infra_log) == ["undo-s1"] and result.status == "compensated"


async def test_unknown_runbook_is_rejected_once_and_no_action_is_skipped() -> None:
    journal, events = InMemoryJournal(), no_events()
    ex = Executor(journal=journal, emit=events.append)
    unknown = Action(action_id="act-1", resource_id="web-1", action_type="run_runbook",
                     runbook="does-not-exist", runbook_hash="0" * 64)
    bad = await ex.handle(unknown)
    again = await ex.handle(unknown)
    none = await ex.handle(Action(action_id="act-2", resource_id="web-1",
                                  action_type="no_action"))
    assert bad.status == "rejected" and again.status == "skipped" and none.status == "skipped"
    failed = [e for e in events if isinstance(e, Outcome) and e.status == "failed"]
    assert len(failed) == 1 and "unknown runbook 'does-not-exist'" in (failed[0].error or "")


async def test_file_journal_ignores_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = FileJournal(path)
    await journal.record("a", WORKFLOW, "started")
    await journal.record("a", "s1", "finished")
    journal.close()
    with path.open("a") as f:
        f.write('{"a":"a","s":"s2","st":"fin')  # the process died mid-write
    entry = await FileJournal(path).get("a")
    assert entry is not None and entry.steps == {"s1": "finished"} and not entry.done


def test_sigkill_mid_workflow_then_restart(tmp_path: Path, infra_log: Path) -> None:
    hold, journal_path, lib = tmp_path / "hold", tmp_path / "journal.jsonl", tmp_path / "lib"
    hold.write_text("")
    lib.mkdir()
    (lib / "five.json.yaml").write_text(json.dumps(five_steps(hold=hold)))
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(journal=str(journal_path), lib=str(lib)))
    # the worker script imports this checkout's `tests` package, which a script's own folder hides
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "NOVACRON_FAKE_INFRA_LOG": str(infra_log), "PYTHONPATH": path}
    proc = subprocess.Popen([sys.executable, str(script)], env=env)
    try:
        deadline = time.monotonic() + 60
        while '"s":"s3wait","st":"started"' not in _read(journal_path):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # the worker dies while step 3 is in progress
        proc.wait()
    finally:
        hold.unlink()  # lets the orphaned step-3 process end
        if proc.poll() is None:
            proc.kill()
    assert verbs(infra_log) == ["s1", "s2", "s3"]
    import asyncio

    events: list[Event] = []
    journal = FileJournal(journal_path)
    ex = Executor(ExecutorConfig(library_dirs=[lib]), journal=journal, emit=events.append)
    act = approved(Library([lib]), "run_runbook", {"runbook": "five"})
    result = asyncio.run(ex.handle(act))
    again = asyncio.run(ex.handle(act))
    assert result.ok and result.resumed and again.status == "skipped"
    assert verbs(infra_log) == ["s1", "s2", "s3", "s4", "s5"]  # nothing finished ran twice


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


WORKER = """
import asyncio
from pathlib import Path
from agents.executor import Executor, ExecutorConfig, FileJournal
from runbooks.loader import Library
from tests.unit.test_runbooks_support import approved

async def main():
    ex = Executor(ExecutorConfig(library_dirs=[Path({lib!r})]),
                  journal=FileJournal(Path({journal!r})), emit=lambda e: None)
    await ex.handle(approved(Library([Path({lib!r})]), "run_runbook", {{"runbook": "five"}}))

asyncio.run(main())
"""
