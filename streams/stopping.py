"""A bound on how long a worker may take to stop: past it, the stacks go to the log and it exits."""

from __future__ import annotations

import faulthandler
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

__all__ = ["EXIT_STOP_TIMEOUT", "start_stop_deadline"]

log = logging.getLogger(__name__)

EXIT_STOP_TIMEOUT = 70
"""The worker's exit status when it had to give up stopping in order (EX_SOFTWARE)."""


def start_stop_deadline(
    seconds: float,
    *,
    exit_process: Callable[[int], Any] = os._exit,
    stream: IO[str] | None = None,
) -> threading.Timer:
    """Exit the process `seconds` from now unless the returned timer is cancelled first.

    Why: a thread that never returns (a blocked library call, a non-daemon thread that is never
    told to stop) keeps the interpreter from exiting after the event loop has closed, and the
    worker then ignores SIGTERM until something sends SIGKILL. Giving up is safe because offsets
    are committed only after their effect is stored: whatever was in flight is read again on the
    next start. The stacks of every thread are written first, so the stuck call can be found.
    """

    def give_up() -> None:
        out = stream or sys.stderr
        log.critical("the worker did not stop within %gs; the stacks of its threads follow, "
                     "then it exits with status %d", seconds, EXIT_STOP_TIMEOUT)
        try:
            out.flush()
            faulthandler.dump_traceback(file=out, all_threads=True)
        except (OSError, ValueError, AttributeError):  # no file descriptor: exit regardless
            log.exception("could not write the stacks")
        exit_process(EXIT_STOP_TIMEOUT)

    timer = threading.Timer(seconds, give_up)
    timer.daemon = True  # the timer itself must never be what keeps the process alive
    timer.name = "stop-deadline"
    timer.start()
    return timer
