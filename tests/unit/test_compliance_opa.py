"""regopy and OPA give the same three-valued verdicts for the whole control library."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from policies.compliance import UNKNOWN, RegoEvaluator, load_library
from policies.compliance.evaluator import DISPATCH_PACKAGE, input_for, rule_name, wrapper_module

OPA = os.environ.get("NOVACRON_OPA") or str(Path.home() / ".cache" / "novacron" / "bin" / "opa")
pytestmark = pytest.mark.skipif(
    not (Path(OPA).is_file() or shutil.which(OPA)),
    reason="OPA not found: `GOBIN=~/.cache/novacron/bin go install "
           "github.com/open-policy-agent/opa@v1.22.4` (or set NOVACRON_OPA)")
LIBRARY = load_library()
# Evaluates every case in one OPA run (the dispatch rule of its type, with its input).
RUNNER = f"""package novacron_opa_cases

import rego.v1

results := {{i: v |
\tsome i, c in data.cases
\tv := data.{DISPATCH_PACKAGE}[c.rule] with input as c.input
}}
"""


def _cases() -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for c in LIBRARY.controls.values():
        if c.examples is None:
            continue
        rtype = c.examples.resource_type or c.resource_types[0]
        for example in (c.examples.passing, c.examples.failing):
            out.append((rtype, example))
            out += [(rtype, {**example, key: dict(UNKNOWN)}) for key in c.reads if key != "*"]
    out += [
        # strings against numbers: the case where the two engines disagree on bare `<`
        ("aws_iam_account_password_policy", {"minimum_password_length": "(known after apply)",
                                             "password_reuse_prevention": "3"}),
        ("aws_security_group", {"ingress": [{"cidr_blocks": ["0.0.0.0/0"], "from_port": "79",
                                             "to_port": 81, "protocol": "6"}]}),
        ("aws_cloudwatch_log_group", {"retention_in_days": "(known after apply)"}),
    ]
    return out


def test_opa_and_regopy_agree(tmp_path: Path) -> None:
    cases = _cases()
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for name, source in LIBRARY.modules.items():
        (bundle / name).write_text(source)
    (bundle / "dispatch.rego").write_text(wrapper_module(LIBRARY))
    (bundle / "runner.rego").write_text(RUNNER)
    docs = [{"rule": rule_name(t), "input": input_for(LIBRARY, t, cfg)} for t, cfg in cases]
    (bundle / "data.json").write_text(json.dumps({"cases": docs}))
    done = subprocess.run([OPA, "eval", "--format", "json", "-b", str(bundle),
                           "data.novacron_opa_cases.results"], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    opa = json.loads(done.stdout)["result"][0]["expressions"][0]["value"]
    regopy = RegoEvaluator(LIBRARY)
    disagreements = []
    for i, (rtype, cfg) in enumerate(cases):
        mine = regopy.evaluate(rtype, cfg)
        theirs = opa[str(i)]
        got = (sorted(theirs["fail"]), sorted(theirs["unknown"]))
        if (sorted(mine.failing), sorted(mine.unknown)) != got:
            disagreements.append((rtype, cfg, sorted(mine.failing), got))
    assert disagreements == []
    assert len(cases) > 500  # the whole library, examples and their unknown variants
