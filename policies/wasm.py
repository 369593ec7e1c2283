"""The OPA WebAssembly engine: policies compiled by `opa build -t wasm`, run in process by wasmtime.

One module per policy set and scope holds every policy, the joint `result` rule, `batch` (the
joint result of each input of a list, by `with input as`) and one entrypoint per policy. A batch
is one `opa_eval`; when it aborts, each input is asked alone, and an input that aborts alone is
asked policy by policy, so the verdict names the failing policy and one bad input never decides
for its neighbours. Built-in errors abort (see `_strict_rego`), as regopy's strict mode does.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from policies._strict_rego import ERROR_BUILTIN, StrictRewriteError, strict_modules
from policies._wasm_abi import OpaAbort, WasmPolicy
from policies._wasm_builtins import HOST_BUILTINS
from policies.core import (
    RUNTIME_ERROR,
    Answers,
    BatchEngine,
    Compiled,
    QueryError,
    WasmConfig,
    policy_ref,
    split_policies,
)
from policies.engine import WRAPPER, answer_of, input_keys, wrapper_module
from policies.result import PolicyAnswer
from policies.source import package_of
from schemas import PolicyVersion

__all__ = ["WasmBuild", "WasmEngine", "find_opa"]

BATCH_RULE = "batch := [r | some v in input.batch; r := result with input as v]\n"
CHUNK = 32  # inputs per opa_eval: the module frees nothing within one evaluation
_JSON = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def find_opa(configured: Path | None = None) -> Path | None:
    """The opa executable: configured, $NOVACRON_OPA, ~/.cache/novacron/bin/opa, then PATH."""
    for candidate in (configured, os.environ.get("NOVACRON_OPA"),
                      Path.home() / ".cache" / "novacron" / "bin" / "opa"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    found = shutil.which("opa")
    return Path(found) if found else None


class WasmBuild:
    """Strict rewrite + `opa build -t wasm`, cached on disk by the content of what is built."""

    def __init__(self, config: WasmConfig) -> None:
        self.config = config
        self.opa = find_opa(config.opa_binary)
        self.cache = config.cache_dir or Path.home() / ".cache" / "novacron" / "wasm"

    def build(self, modules: Mapping[str, str], entrypoints: Sequence[str]) -> bytes:
        """The policy.wasm of the modules; RuntimeError with opa's message when it fails."""
        if self.opa is None:
            msg = ("the wasm engine needs the opa binary (GOBIN=~/.cache/novacron/bin go install "
                   "github.com/open-policy-agent/opa@v1.22.4, or set NOVACRON_OPA)")
            raise RuntimeError(msg)
        key = hashlib.sha256(orjson.dumps([str(self.opa), sorted(modules.items()),
                                           list(entrypoints)])).hexdigest()
        cached = self.cache / f"{key}.wasm"
        if cached.is_file():
            return cached.read_bytes()
        wasm = self._build(modules, entrypoints)
        self.cache.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(wasm)
        tmp.replace(cached)  # atomic: a concurrent builder never reads half a module
        return wasm

    def _build(self, modules: Mapping[str, str], entrypoints: Sequence[str]) -> bytes:
        assert self.opa is not None
        timeout = self.config.build_timeout_seconds
        try:
            rewritten = strict_modules(dict(modules), self.opa, timeout)
        except StrictRewriteError as exc:
            raise RuntimeError(str(exc)) from None
        with tempfile.TemporaryDirectory(prefix="novacron-wasm-") as tmp:
            root = Path(tmp)
            (root / "src").mkdir()
            for i, (name, source) in enumerate(sorted(rewritten.items())):
                (root / "src" / f"m{i}_{Path(name).name}").write_text(source)
            (root / "caps.json").write_bytes(self._capabilities(timeout))
            argv = [str(self.opa), "build", "-t", "wasm", "--capabilities",
                    str(root / "caps.json"), "-o", str(root / "out.tar.gz")]
            for e in entrypoints:
                argv += ["-e", e]
            done = subprocess.run([*argv, str(root / "src")], capture_output=True,
                                  timeout=timeout, check=False)
            if done.returncode != 0:
                raise RuntimeError(_first_error(done.stderr.decode(errors="replace")))
            with tarfile.open(root / "out.tar.gz") as tar:
                member = tar.extractfile("/policy.wasm")
                assert member is not None
                return member.read()

    def _capabilities(self, timeout: float) -> bytes:
        done = subprocess.run([str(self.opa), "capabilities", "--current"], capture_output=True,
                              timeout=timeout, check=True)
        caps = orjson.loads(done.stdout)
        caps["builtins"].append({"name": ERROR_BUILTIN, "decl": {
            "type": "function", "args": [{"type": "any"}], "result": {"type": "any"}}})
        return orjson.dumps(caps)


def _package_problem(p: PolicyVersion) -> list[str]:
    try:
        package_of(p.rego)
    except Exception as exc:  # RejectedError for a module without a package
        return [str(exc)]
    return []


def _first_error(stderr: str) -> str:
    lines = [line.strip() for line in io.StringIO(stderr) if line.strip()]
    useful = [line for line in lines if not line.startswith("error: ")] or lines
    return " | ".join(useful[:3])[:500] or "opa build failed"


class _Native:
    def __init__(self, policy: WasmPolicy, keys: frozenset[str] | None) -> None:
        self.policy, self.keys = policy, keys


class WasmEngine(BatchEngine):
    """`PolicyEngine` over OPA compiled to WebAssembly (same contract as `RegoEngine`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.builder = WasmBuild(self.config.wasm)

    def _build(self, policies: list[PolicyVersion]) -> Compiled:
        fixed, good = split_policies(policies, _package_problem)
        loaded = self._load(good)
        if isinstance(loaded, str) and len(good) > 1:
            # the joint module fails: build each policy alone so only the broken ones fail
            alone = {p.policy_id: self._load([p]) for p in good}
            fixed.update({pid: PolicyAnswer(None, error=f"compile error: {r}")
                          for pid, r in alone.items() if isinstance(r, str)})
            good = [p for p in good if p.policy_id not in fixed]
            loaded = self._load(good)
        compiled = Compiled([policy_ref(p) for p in policies], fixed,
                            [p.policy_id for p in good], {p.policy_id: p for p in good})
        if good and isinstance(loaded, WasmPolicy):
            compiled.native = _Native(loaded, input_keys(good))
        elif good:
            compiled.error = f"compile error: {loaded}"
        return compiled

    def _load(self, policies: list[PolicyVersion]) -> WasmPolicy | str:
        """The loaded module of the policies, or why it cannot be built or loaded."""
        if not policies:
            return "no policy"
        try:
            return WasmPolicy(self._wasm(policies), HOST_BUILTINS)
        except (RuntimeError, OpaAbort, subprocess.SubprocessError, OSError) as exc:
            return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

    def _wasm(self, policies: Sequence[PolicyVersion]) -> bytes:
        modules = {f"{p.policy_id}.rego": p.rego for p in policies}
        modules[f"{WRAPPER}.rego"] = wrapper_module(policies) + BATCH_RULE
        entries = [f"{WRAPPER}/result", f"{WRAPPER}/batch"]
        return self.builder.build(modules, entries + [f"{WRAPPER}/p{i}"
                                                      for i in range(len(policies))])

    def _answer_all(self, compiled: Compiled, values: Sequence[Mapping[str, Any]]
                    ) -> list[Answers | Exception]:
        keys = compiled.native.keys
        projected = [v if keys is None else {k: x for k, x in v.items() if k in keys}
                     for v in values]
        out: list[Answers | Exception] = []
        for i in range(0, len(projected), CHUNK):
            out += self._chunk(compiled, projected[i:i + CHUNK])
        return out

    def _chunk(self, compiled: Compiled, values: Sequence[Mapping[str, Any]]
               ) -> list[Answers | Exception]:
        if len(values) == 1:
            return [self._alone(compiled, values[0])]
        try:
            payload = orjson.dumps({"batch": values}, option=_JSON)
            rows = compiled.native.policy.evaluate(f"{WRAPPER}/batch", payload)
            if not isinstance(rows, list) or len(rows) != len(values):
                raise QueryError("malformed batch result")
            return [self._answers(compiled, row) for row in rows]
        except (TypeError, OpaAbort, QueryError):  # one input broke the batch: each on its own
            return [self._alone(compiled, v) for v in values]

    def _answers(self, compiled: Compiled, row: Any) -> Answers:
        if not isinstance(row, list) or len(row) != len(compiled.included):
            raise QueryError("malformed joint result")
        return {pid: answer_of(r) for pid, r in zip(compiled.included, row, strict=True)}

    def _alone(self, compiled: Compiled, value: Mapping[str, Any]) -> Answers | Exception:
        native: _Native = compiled.native
        try:
            payload = orjson.dumps(value, option=_JSON)
        except TypeError as exc:  # the input itself cannot be passed to Rego
            return TypeError(f"cannot pass the input to Rego (JSON values only): {exc}")
        try:
            return self._answers(compiled, native.policy.evaluate(f"{WRAPPER}/result", payload))
        except (OpaAbort, QueryError):
            out: Answers = {}
            for i, pid in enumerate(compiled.included):
                try:
                    out[pid] = answer_of(native.policy.evaluate(f"{WRAPPER}/p{i}", payload))
                except OpaAbort:
                    out[pid] = PolicyAnswer(None, error=RUNTIME_ERROR)
            return out
