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


_VOID = ctypes.c_void_p
_CALL = ctypes.CFUNCTYPE(_VOID, _VOID, _VOID, _VOID, ctypes.c_size_t, _VOID)
"""`wasmtime_func_call_unchecked` taking addresses as plain ints: ctypes converts pointer objects
on every call, which cost more than wasmtime's own entry into the module."""
_HOST = ctypes.CFUNCTYPE(ctypes.c_size_t, _VOID, _VOID, _VOID, ctypes.c_size_t)
"""`wasmtime_func_unchecked_callback_t` receiving addresses as plain ints, for the same reason."""


class _Export:
    """An exported i32 function called through wasmtime's C API `wasmtime_func_call_unchecked`.

    wasmtime-py's `Func.__call__` looks the function type up and converts every value on each
    call (~45 µs here); the ABI's functions take and return i32 only, so the raw call is safe
    and costs ~2 µs, most of it wasmtime's entry into the module.
    """

    def __init__(self, store: Any, func: Any, ffi: Any) -> None:
        self._ffi, self._store = ffi, store  # the store outlives every call through it
        self._context = ctypes.cast(store._context(), _VOID).value
        self._func_ref = func  # keeps the wasmtime_func_t whose address is passed
        self._func = ctypes.addressof(func._func)
        self._vals = (ffi.wasmtime_val_raw_t * 8)()
        self._vals_at = ctypes.addressof(self._vals)
        self._trap = _VOID()
        self._trap_at = ctypes.addressof(self._trap)
        self._raw_call = _CALL(("wasmtime_func_call_unchecked", ffi.dll))

    def __call__(self, *args: int) -> int:
        vals = self._vals
        for i, a in enumerate(args):
            vals[i].i32 = a
        self._trap.value = None
        error = self._raw_call(self._context, self._func, self._vals_at, 8, self._trap_at)
        if error or self._trap.value:
            self._release(error)
        return int(vals[0].i32)

    def _release(self, error: int | None) -> None:
        ffi = self._ffi
        if self._trap.value:
            ffi.wasm_trap_delete(ctypes.cast(self._trap.value, ctypes.POINTER(ffi.wasm_trap_t)))
        if error:
            ffi.wasmtime_error_delete(ctypes.cast(error, ctypes.POINTER(ffi.wasmtime_error_t)))
        _forget_host_exception()
        raise OpaAbort("the module trapped")


def _define_unchecked(linker: Any, name: str, ty: Any, callback: Any, ffi: Any) -> None:
    """`Linker.define_func` through `wasmtime_linker_define_func_unchecked` (raw i32 values)."""
    module, field = b"env", name.encode()
    error = ffi.wasmtime_linker_define_func_unchecked(
        linker.ptr(), ctypes.create_string_buffer(module), len(module),
        ctypes.create_string_buffer(field), len(field), ty.ptr(), callback, None,
        _NO_FINALIZER)
    if error:
        ffi.wasmtime_error_delete(error)
        raise OpaAbort(f"cannot define the host import env.{name}")


_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _env: None)


def _forget_host_exception() -> None:
    # wasmtime-py parks a host function's exception to re-raise it from its own call wrapper;
    # the raw call reports it through WasmPolicy.error instead, so drop it here
    import wasmtime._func as func_module

    func_module.LAST_EXCEPTION = None


class WasmPolicy:
    """One instance of a compiled policy module; `evaluate` is not re-entrant (one thread)."""

    def __init__(self, wasm: bytes, builtins: Mapping[str, HostBuiltin]) -> None:
        import wasmtime  # lazy: only the wasm backend needs it
        from wasmtime import _ffi  # the C API bindings wasmtime-py ships

        self._wt, self._ffi = wasmtime, _ffi
        # one C callback for every store this policy instantiates; held here so it stays alive
        self._host_fn = _HOST(self._builtin_raw)
        self._host_call = ctypes.cast(self._host_fn, _ffi.wasmtime_func_unchecked_callback_t)
        self._val_row = _ffi.wasmtime_val_raw_t * 7  # id, ctx and up to 4 arguments; 0 = result
        # wasmtime_memory_data returning the address as an int (the shipped binding returns a
        # pointer object that then needs a cast): read on every memory access
        self._memory_data = ctypes.CFUNCTYPE(_VOID, _VOID, _VOID)(
            ("wasmtime_memory_data", _ffi.dll))
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
        self._context = ctypes.cast(self.store._context(), _VOID).value
        self._memory_ref = ctypes.addressof(self.memory._memory)
        i32 = wt.ValType.i32()
        linker = wt.Linker(self.engine)
        linker.define(self.store, "env", "memory", self.memory)
        linker.define_func("env", "opa_abort", wt.FuncType([i32], []), self._abort)
        linker.define_func("env", "opa_println", wt.FuncType([i32], []), lambda _addr: None)
        for n in range(5):
            _define_unchecked(linker, f"opa_builtin{n}", wt.FuncType([i32] * (n + 2), [i32]),
                              self._host_call, self._ffi)
        instance = linker.instantiate(self.store, self.module)
        ex = instance.exports(self.store)

        def raw(name: str) -> _Export:
            return _Export(self.store, ex[name], self._ffi)

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

    def _builtin_raw(self, _env: int, _caller: int, vals_at: int, count: int) -> int:
        """`opa_builtinN(id, ctx, args...)` as an unchecked callback: the i32 values are read and
        the result written in place, without wasmtime-py's per-call type checks; a failure
        returns a trap, which aborts the evaluation (the cause is kept in `self.error`)."""
        try:
            vals = self._val_row.from_address(vals_at)
            args = [self._read_value(vals[i].i32) for i in range(2, count)]
            vals[0].i32 = self._put(orjson.dumps(self._by_id[vals[0].i32](*args)))
            return 0
        except BaseException as exc:  # never unwind through the C frames of wasmtime
            self.error = exc
            text = str(exc).encode()[:200] or b"host built-in failed"
            trap = self._ffi.wasmtime_trap_new(ctypes.create_string_buffer(text), len(text))
            return int(ctypes.cast(trap, ctypes.c_void_p).value or 0)

    # --- memory ----------------------------------------------------------------------------------
    def _base(self) -> int:
        # read on every access: the module may grow (move) its memory during an evaluation
        return self._memory_data(self._context, self._memory_ref) or 0

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
