"""A TEST BACKEND that fakes effects: `python -m runbooks.fake_infra VERB [--k=v …]` logs the call.

It changes nothing anywhere: each call appends one JSON line {"verb", "options", "argv", "time"}
to `$NOVACRON_FAKE_INFRA_LOG` (default `var/fake_infra.jsonl`) and prints it; `--fail-with=N`
exits with N (to exercise retries). Tests of the engine use it. No shipped runbook, compose file
or manifest may (a test checks); an executor that loads a runbook using it warns at start and
marks that runbook's outcomes `simulated`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

__all__ = ["LOG_ENV", "MODULE", "log_path", "main", "parse", "read_calls", "uses_fake_infra"]

LOG_ENV = "NOVACRON_FAKE_INFRA_LOG"
"""Environment variable naming the JSON-lines log."""
MODULE = "runbooks.fake_infra"
"""How a command step names this backend (`python -m runbooks.fake_infra …`)."""


def uses_fake_infra(steps: list[object]) -> bool:
    """Whether any step (or its compensation) runs this fake backend."""
    for step in steps:
        comp = getattr(step, "compensation", None)
        for s in (step, comp):
            text = " ".join(getattr(s, "argv", ()) or ()) + " " + str(getattr(s, "action", ""))
            if s is not None and MODULE in text:
                return True
    return False


def log_path() -> Path:
    """Where calls are recorded."""
    return Path(os.environ.get(LOG_ENV, "var/fake_infra.jsonl"))


def parse(argv: list[str]) -> tuple[str, dict[str, str], list[str]]:
    """(verb, --key=value options, other arguments); values are kept verbatim."""
    verb = argv[0] if argv else ""
    options: dict[str, str] = {}
    rest: list[str] = []
    for arg in argv[1:]:
        if arg.startswith("--") and "=" in arg:
            key, value = arg[2:].split("=", 1)
            options[key] = value
        else:
            rest.append(arg)
    return verb, options, rest


def read_calls(path: Path | None = None) -> list[dict[str, object]]:
    """Every recorded call, oldest first."""
    path = path or log_path()
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    verb, options, rest = parse(args)
    record = {"verb": verb, "options": options, "args": rest, "argv": args, "time": time.time()}
    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps({"ok": True, "verb": verb, **options}))
    return int(options.get("fail-with", "0"))


if __name__ == "__main__":
    sys.exit(main())
