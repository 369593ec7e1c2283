"""Starting an effector's program (git, terraform, a command step): argv only, own process group.

Each child leads a process group of its own, so a terminal's Ctrl-C or Ctrl-Z never reaches it
(the worker stops its actions itself) and `kill_group` ends the programs it started too. It stays
in the worker's session on purpose: a new session (`setsid`, `start_new_session=True`) is also a
new scheduling group on Linux kernels with autogroup on (most distributions' kernels, for
processes outside a CPU cgroup), weighed against the whole worker whatever the nice value of the
program inside it. In the worker's session a program has the worker's priority (the execute
role's `nice`, streams/settings.py) and competes as one more of its threads.

uvloop cannot start a process group (`process_group` is refused), so the execute role runs on
the standard event loop (streams/roles.py); under uvloop the child gets a session of its own, as
before, and the first such start says so in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import Any

__all__ = ["kill_group", "start"]

log = logging.getLogger(__name__)
_warned = False


async def start(*argv: str, **options: Any) -> asyncio.subprocess.Process:
    """`asyncio.create_subprocess_exec(*argv, **options)`, the child leading its own process group
    (a session of its own under uvloop, which has no process groups)."""
    if _has_process_groups(asyncio.get_running_loop()):
        return await asyncio.create_subprocess_exec(*argv, process_group=0, **options)
    _warn_once()
    return await asyncio.create_subprocess_exec(*argv, start_new_session=True, **options)


async def kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the child and everything it started in its group; wait for the child."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


def _has_process_groups(loop: asyncio.AbstractEventLoop) -> bool:
    return not type(loop).__module__.startswith("uvloop")


def _warn_once() -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning("effector programs start in sessions of their own under uvloop (it cannot "
                    "start process groups); on kernels with autogroup each then weighs as much "
                    "as this worker in the CPU scheduler")
