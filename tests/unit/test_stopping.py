"""The stop deadline: a worker that cannot stop in order still exits, and says where it hung."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from streams.stopping import EXIT_STOP_TIMEOUT, start_stop_deadline


def test_past_the_deadline_it_writes_every_threads_stack_and_exits(tmp_path: Path) -> None:
    exited: list[int] = []
    done = threading.Event()

    def exit_process(code: int) -> None:
        exited.append(code)
        done.set()

    with (tmp_path / "log").open("w+") as log:
        start_stop_deadline(0.05, exit_process=exit_process, stream=log)
        assert done.wait(5)
        log.seek(0)
        stacks = log.read()
    assert exited == [EXIT_STOP_TIMEOUT]
    # this very test is one of the stacks: the log shows where each thread was
    assert "test_past_the_deadline_it_writes_every_threads_stack_and_exits" in stacks


def test_a_cancelled_deadline_does_nothing(tmp_path: Path) -> None:
    exited: list[int] = []
    with (tmp_path / "log").open("w+") as log:
        timer = start_stop_deadline(0.2, exit_process=exited.append, stream=log)
        timer.cancel()
        timer.join(1)
    assert exited == []
    assert not timer.is_alive()


def test_a_thread_that_never_returns_no_longer_keeps_the_process_alive() -> None:
    # the class of hang it exists for: the main thread is done, a non-daemon thread is blocked
    program = textwrap.dedent("""
        import threading
        from streams.stopping import start_stop_deadline

        def stuck_in_a_library_call():
            threading.Event().wait()

        threading.Thread(target=stuck_in_a_library_call).start()
        start_stop_deadline(0.5)
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == EXIT_STOP_TIMEOUT
    assert "stuck_in_a_library_call" in done.stderr
