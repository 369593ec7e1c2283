"""wasmtime glue for OPA's WebAssembly ABI 1.2+: load a policy module, evaluate an entrypoint.

The ABI (OPA docs, "WebAssembly"): the module imports `env.memory`, `env.opa_abort`,
`env.opa_println` and `env.opa_builtin0..4` (built-ins the host implements); it exports
`opa_eval` (the one-call fast path: input JSON in, result-set JSON out), `opa_malloc`,
`opa_json_parse`, `opa_json_dump`, `opa_heap_ptr_get/set`, `entrypoints` and `builtins`.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Mapping
from typing import Any

import orjson

__all__ = ["OpaAbort", "WasmPolicy"]

PAGE = 65536
HostBuiltin = Callable[..., Any]


class OpaAbort(Exception):
    """The module aborted (a runtime error such as a conflict, or a failing host built-in)."""


class _Export:
    """An exported i32 function called through wasmtime's C API `wasmtime_func_call_unchecked`.

    wasmtime-py's `Func.__call__` looks the function type up and converts every value on each
    call (~20 µs); the ABI's functions take and return i32 only, so the raw call is safe and
    costs about a tenth of that.
    """

    def __init__(self, store: Any, func: Any, ffi: Any) -> None:
        self._ffi, self._store = ffi, store
        self._func = ctypes.byref(func._func)
        self._vals = (ffi.wasmtime_val_raw_t * 8)()

    def __call__(self, *args: int) -> int:
        ffi, vals = self._ffi, self._vals
        for i, a in enumerate(args):
            vals[i].i32 = a
        trap = ctypes.POINTER(ffi.wasm_trap_t)()
        error = ffi.wasmtime_func_call_unchecked(self._store._context(), self._func, vals, 8,
                                                 ctypes.byref(trap))
        if error or trap:
            if trap:
                ffi.wasm_trap_delete(trap)
            if error:
                ffi.wasmtime_error_delete(error)
            _forget_host_exception()
            raise OpaAbort("the module trapped")
        return int(vals[0].i32)


def _forget_host_exception() -> None:
    # wasmtime-py parks a host function's exception to re-raise it from its own call wrapper;
    # the raw call reports it through WasmPolicy.error instead, so drop it here
    import wasmtime._func as func_module

    func_module.LAST_EXCEPTION = None


class WasmPolicy:
    """One instance of a compiled policy module; `evaluate` is not re-entrant (one thread)."""

    def __init__(self, wasm: bytes, builtins: Mapping[str, HostBuiltin]) -> None:
        import wasmtime  # lazy: only the wasm backend needs it

        self._wt = wasmtime
        self.engine = wasmtime.Engine()
        self.module = wasmtime.Module(self.engine, wasm)
        self._host = dict(builtins)
        self.error: BaseException | None = None  # what made the last evaluation abort
        self._instantiate()

    def _instantiate(self) -> None:
        wt = self._wt
        self.store = wt.Store(self.engine)
        wanted = next(i.type for i in self.module.imports if i.name == "memory")
        pages = wanted.limits.min if isinstance(wanted, wt.MemoryType) else 2
        self.memory = wt.Memory(self.store, wt.MemoryType(wt.Limits(pages, None)))
        i32 = wt.ValType.i32()
        linker = wt.Linker(self.engine)
        linker.define(self.store, "env", "memory", self.memory)
        linker.define_func("env", "opa_abort", wt.FuncType([i32], []), self._abort)
        linker.define_func("env", "opa_println", wt.FuncType([i32], []), lambda _addr: None)
        for n in range(5):
            linker.define_func("env", f"opa_builtin{n}", wt.FuncType([i32] * (n + 2), [i32]),
                               self._builtin)
        instance = linker.instantiate(self.store, self.module)
        ex = instance.exports(self.store)
        from wasmtime import _ffi  # the C API bindings wasmtime-py ships

        def raw(name: str) -> _Export:
            return _Export(self.store, ex[name], _ffi)

        self._eval, self._malloc = raw("opa_eval"), raw("opa_malloc")
        self._json_parse, self._json_dump = raw("opa_json_parse"), raw("opa_json_dump")
        minor = ex["opa_wasm_abi_minor_version"].value(self.store)  # type: ignore[union-attr]
        if ex["opa_wasm_abi_version"].value(self.store) != 1 or minor < 2:  # type: ignore[union-attr]
            raise OpaAbort(f"unsupported OPA wasm ABI 1.{minor} (needs 1.2+ for opa_eval)")
        self.entrypoints: dict[str, int] = self._read_value(raw("entrypoints")())
        needed: dict[str, int] = self._read_value(raw("builtins")())
        missing = sorted(set(needed) - set(self._host))
        if missing:
            raise OpaAbort(f"built-ins not available in the wasm engine: {', '.join(missing)}")
        self._by_id = {i: self._host[name] for name, i in needed.items()}
        self._data = self._put(b"{}")
        self._heap = raw("opa_heap_ptr_get")()

    # --- evaluation ------------------------------------------------------------------------------
    def evaluate(self, entrypoint: str, input_json: bytes) -> Any:
        """The entrypoint's value for the input (None when undefined); OpaAbort on abort."""
        self.error = None
        addr = self._heap
        self._reserve(addr + len(input_json))
        self._write(addr, input_json)
        try:
            out = self._eval(0, self.entrypoints[entrypoint], self._data, addr,
                             len(input_json), addr + len(input_json), 0)
        except Exception as exc:
            cause = self.error or exc
            self._instantiate()  # a trap may leave the module's heap half-written: start clean
            raise OpaAbort(str(cause)) from cause
        results = orjson.loads(self._read(out))
        return results[0]["result"] if results else None

    # --- host imports ----------------------------------------------------------------------------
    def _abort(self, addr: int) -> None:
        self.error = OpaAbort(self._read(addr).decode(errors="replace"))
        raise self.error

    def _builtin(self, builtin_id: int, _ctx: int, *args: int) -> int:
        try:
            value = self._by_id[builtin_id](*(self._read_value(a) for a in args))
            return self._put(orjson.dumps(value))
        except Exception as exc:
            self.error = exc
            raise

    # --- memory ----------------------------------------------------------------------------------
    def _base(self) -> int:
        return ctypes.addressof(self.memory.data_ptr(self.store).contents)

    def _read(self, addr: int) -> bytes:
        return ctypes.string_at(self._base() + addr)

    def _write(self, addr: int, data: bytes) -> None:
        ctypes.memmove(self._base() + addr, data, len(data))

    def _reserve(self, end: int) -> None:
        size = self.memory.data_len(self.store)
        if end + PAGE > size:
            self.memory.grow(self.store, (end + PAGE - size) // PAGE + 1)

    def _read_value(self, value_addr: int) -> Any:
        return orjson.loads(self._read(self._json_dump(value_addr)))

    def _put(self, data: bytes) -> int:
        addr = self._malloc(len(data))
        self._write(addr, data)
        value = self._json_parse(addr, len(data))
        if value == 0:
            raise OpaAbort("the module could not parse a JSON value")
        return int(value)
