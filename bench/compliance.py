"""Benchmark: compliance evaluation (three-valued: failing and unknown sets) with the whole
control library compiled once, against recompiling per resource and one query per control
(same run). `python bench/compliance.py`"""

import json
import platform
import statistics
import time
from pathlib import Path

from policies._rego_input import make_input
from policies.compliance import RegoEvaluator, Resource, Scanner, load_library
from policies.compliance.evaluator import input_for

lib = load_library()
cases = []
for c in lib.controls.values():
    if c.examples is None:  # manual controls are attested, not evaluated
        continue
    t = c.examples.resource_type or c.resource_types[0]
    cases += [(t, c.examples.passing), (t, c.examples.failing)]
ev = RegoEvaluator(lib)
ev.compile()
for t, cfg in cases:
    ev.evaluate(t, cfg)  # warm
N = 3
rates = []
for _ in range(N):
    t0 = time.perf_counter()
    n = 0
    for _ in range(10):
        for t, cfg in cases:
            ev.evaluate(t, cfg)
            n += 1
    rates.append(n / (time.perf_counter() - t0))
reuse = statistics.median(rates)
# baseline: a fresh bundle per evaluation (what per-call compilation costs)
t0 = time.perf_counter()
m = 20
for t, cfg in cases[:m]:
    e = RegoEvaluator(lib)
    e.evaluate(t, cfg)
recompile = m / (time.perf_counter() - t0)
# per-control queries (one query per control instead of one per resource), same bundle machinery
interp = ev._interp
t0 = time.perf_counter()
q = 0
for t, cfg in cases[:100]:
    interp.set_input(make_input(input_for(lib, t, cfg)))
    for c in lib.for_type(t):
        interp.query(f'x := "{c.id}" in data.{c.rule}.deny')
        q += 1
per_control_resources = 100 / (time.perf_counter() - t0)
res = [Resource(f"r{i}", t, cfg) for i, (t, cfg) in enumerate(cases * 4)]
sc = Scanner(lib, ev)
t0 = time.perf_counter()
rep = sc.scan(res)
scan_s = time.perf_counter() - t0
print(f"controls={len(lib)} cases={len(cases)}")
print(
    f"bundle reuse: {reuse:.0f} resources/s ({1e6 / reuse:.0f} us each), "
    f"runs={[round(r) for r in rates]}"
)
print(f"baseline recompile per resource: {recompile:.1f} resources/s")
print(f"baseline Interpreter.query per control: {per_control_resources:.0f} resources/s")
print(f"scan of {len(res)} resources, all 6 standards: {scan_s * 1000:.0f} ms")

result = {
    "benchmark": "compliance",
    "controls": len(lib),
    "examples": len(cases),
    "bundle_reuse_resources_per_s": round(reuse, 1),
    "baseline_recompile_per_resource_per_s": round(recompile, 2),
    "baseline_query_per_control_resources_per_s": round(per_control_resources, 2),
    "scan_resources": len(res),
    "scan_all_standards_seconds": round(scan_s, 3),
    "python": platform.python_version(),
}
out = Path(__file__).with_name("results") / "compliance.json"
out.write_text(json.dumps(result, indent=2) + "\n")
