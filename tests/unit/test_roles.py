"""regopy and torch never share a process: each role is checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from streams.roles import ROLES

PROBE = """
import json, sys
from streams.settings import Settings
from streams.worker import build_worker
settings = Settings(data_dir=sys.argv[2], clickhouse={"path": sys.argv[2] + "/chdb"})
build_worker(sys.argv[1], settings, web_port=0)
print(json.dumps({"torch": "torch" in sys.modules, "regopy": "regopy" in sys.modules}))
"""


@pytest.mark.parametrize("role", sorted(ROLES))
def test_role_process_never_loads_both_regopy_and_torch(role: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = subprocess.run(
        [sys.executable, "-c", PROBE, role, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert not (loaded["torch"] and loaded["regopy"]), f"{role} loads both: {loaded}"
    for name in ROLES[role].forbidden:
        assert not loaded[name], f"{role} loaded forbidden {name}"


GUARD = """
import sys
from streams.roles import install_import_guard, ForbiddenImport
install_import_guard(sys.argv[1])
try:
    import {lib}
except ForbiddenImport as exc:
    print("refused:", exc)
"""


@pytest.mark.parametrize(
    ("role", "lib"), [("govern", "torch"), ("learn", "regopy"), ("ingest", "torch")]
)
def test_import_guard_refuses_the_other_library(role: str, lib: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", GUARD.format(lib=lib), role],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.startswith("refused:") and "cannot share a process" in out.stdout
