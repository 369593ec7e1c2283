"""Issue 11, finding 7 (files): YAML bombs, alias, size, depth and step limits are refused with a
clear error before anything expands the document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runbooks.loader import Library, LoadLimits, load_file, load_text, parse_runbook
from runbooks.model import ValidationError

HEAD = "metadata: {id: bomb}\nsteps:\n  - id: s\n    action_type: noop\n    parameters:\n"


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    """The classic bomb, anchored inside a step's parameters: 10^9 nodes from ~1 KB."""
    lines = ["      l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"      l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    lines.append(f"      use: *l{levels - 1}")
    return HEAD + "\n".join(lines) + "\n"


def refused(text: str, limits: LoadLimits | None = None) -> str:
    with pytest.raises(ValidationError) as info:
        load_text(text, "bomb.yaml", limits or LoadLimits())
    return str(info.value)


def test_billion_laughs_referenced_by_a_step_is_refused() -> None:
    text = billion_laughs()
    assert len(text) < 2000 and text.count("*") < 100  # small, and under the alias limit
    assert "more than 200000 YAML nodes once aliases are expanded" in refused(text)


def test_alias_count_limit() -> None:
    aliases = ", ".join(["*a"] * 101)
    text = HEAD + f"      a: &a x\n      many: [{aliases}]\n"
    assert "bomb.yaml: refused: more than 100 YAML aliases" in refused(text)
    assert load_text(HEAD + "      a: &a x\n      b: *a\n").steps[0].parameters["b"] == "x"


def test_recursive_alias_is_refused() -> None:
    assert "refers to its own ancestor" in refused(HEAD + "      a: &a [x, *a]\n")


def test_nesting_depth_is_refused() -> None:
    assert "nested deeper than 64 levels" in refused(HEAD + "      d: " + "[" * 80 + "]" * 80)
    assert "nested deeper than" in refused(HEAD + "      d: " + "[" * 5000 + "]" * 5000)


def test_size_limit_on_text_and_on_files_before_reading(tmp_path: Path) -> None:
    padding = "# " + "x" * 1000 + "\n"
    text = HEAD + "      a: 1\n" + padding * 1100
    assert "larger than 1048576 bytes" in refused(text)
    big = tmp_path / "big.yaml"
    big.write_text(text)
    with pytest.raises(ValidationError, match=r"big.yaml: refused: \d+ bytes, larger than 1048576"):
        load_file(big)
    with pytest.raises(ValidationError, match="larger than 1048576"):
        Library([tmp_path])


def test_step_count_limit() -> None:
    steps = [{"id": f"s{i}", "action_type": "noop"} for i in range(501)]
    with pytest.raises(ValidationError, match="501 steps, more than 500"):
        parse_runbook({"metadata": {"id": "many"}, "steps": steps})
    # 600k steps from a few aliases: stopped by the expansion limit, never materialised
    text = ("metadata: {id: many}\nsteps: &s0\n  - {id: a, action_type: noop}\n"
            "x: &s1 [*s0, *s0, *s0, *s0, *s0, *s0, *s0, *s0, *s0, *s0]\n")
    limits = LoadLimits(max_nodes=1_000)
    assert "YAML nodes once aliases are expanded" in refused(
        text + "".join(f"y{i}: &s{i + 2} [" + ", ".join([f"*s{i + 1}"] * 10) + "]\n"
                       for i in range(5)), limits)


def test_limits_are_configurable_and_normal_runbooks_load() -> None:
    ok = "metadata: {id: fine}\nsteps:\n  - {id: a, action_type: noop}\n"
    assert load_text(ok).id == "fine"
    assert "more than 0 YAML aliases" in refused(
        HEAD + "      a: &a x\n      b: *a\n", LoadLimits(max_aliases=0))
    assert "larger than 10 bytes" in refused(ok, LoadLimits(max_bytes=10))


def test_shipped_library_is_well_inside_the_limits() -> None:
    for path in Path(__file__).resolve().parents[2].joinpath("runbooks", "library").glob("*"):
        assert path.stat().st_size < LoadLimits().max_bytes // 10
    lib = Library()
    assert len(lib.ids()) >= 9
    json.dumps([lib.get(r).model_dump(mode="json") for r in lib.ids()])
