"""Effector programs: a process group of their own in the worker's session; the role's priority."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest
import uvloop
from pydantic import ValidationError

from runbooks import children
from streams.roles import ROLES
from streams.settings import Settings

# starts a grandchild that outlives it unless killed, then prints its own session and process
# group: once the line is read, both processes exist (no waiting on the machine's speed)
PROBE = "import os, subprocess, sys, time; " \
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); " \
        "print(os.getsid(0), os.getpgid(0), flush=True); time.sleep(60)"


async def _ids_and_group_kill() -> tuple[int, int, int, list[int]]:
    proc = await children.start(sys.executable, "-c", PROBE, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    sid, pgid = map(int, (await proc.stdout.readline()).split())
    members = _group_members(proc.pid)
    await children.kill_group(proc)
    await proc.stdout.read()  # EOF once the group is gone: its pipe closes with the loop
    return proc.pid, sid, pgid, members


def _group_members(pgid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    found.append(int(entry))
            except ProcessLookupError:
                continue
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_child_leads_its_own_group_in_the_workers_session() -> None:
    pid, sid, pgid, members = asyncio.run(_ids_and_group_kill())
    assert pgid == pid  # its own group: a terminal's Ctrl-C (the foreground group) misses it
    assert sid == os.getsid(0)  # no new session, so no new autogroup in the CPU scheduler
    assert len(members) == 2  # the child and the grandchild it started
    deadline = time.monotonic() + 5
    while any(_alive(m) for m in members) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(m) for m in members), "kill_group left a process of the group running"


def test_under_uvloop_a_child_gets_a_session_of_its_own(caplog: pytest.LogCaptureFixture) -> None:
    children._warned = False
    pid, sid, pgid, _ = uvloop.run(_ids_and_group_kill())
    assert sid == pid and pgid == pid  # uvloop refuses process_group: setsid, as before
    assert "sessions of their own under uvloop" in caplog.text


def test_the_execute_role_runs_on_the_standard_loop() -> None:
    assert not ROLES["execute"].uvloop
    assert all(spec.uvloop for name, spec in ROLES.items() if name != "execute")


NICE_PROBE = """
import json, os, sys, threading
from streams.settings import Settings
from streams.worker import lower_priority
lower_priority(sys.argv[1], Settings())
seen = {}
thread = threading.Thread(target=lambda: seen.setdefault("thread", os.nice(0)))
thread.start(); thread.join()
print(json.dumps({"main": os.nice(0), **seen}))
"""


@pytest.mark.parametrize(("role", "env", "expected"), [
    ("execute", {}, 10), ("learn", {}, 0), ("execute", {"NOVACRON_NICE": '{"execute": 0}'}, 0),
    ("govern", {"NOVACRON_NICE": '{"govern": 5}'}, 5)])
def test_a_role_takes_its_nice_value_and_its_threads_inherit_it(
        role: str, env: dict[str, str], expected: int) -> None:
    base = os.nice(0)  # the test may itself run below normal priority
    out = subprocess.run([sys.executable, "-c", NICE_PROBE, role], capture_output=True,
                         text=True, timeout=60, check=True,
                         env={**os.environ, **env})
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"main": min(base + expected, 19), "thread": min(base + expected, 19)}


def test_nice_names_only_roles_and_nice_values() -> None:
    with pytest.raises(ValidationError, match="nice names no role"):
        Settings(nice={"executor": 10})
    with pytest.raises(ValidationError):
        Settings(nice={"execute": 20})
