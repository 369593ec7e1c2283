"""regopy glue: quiet interpreters and a faster `regopy.Input` builder."""

from __future__ import annotations

from typing import Any

__all__ = ["make_input", "new_interpreter"]


def new_interpreter(*, strict: bool = False) -> Any:
    """A regopy Interpreter that reports errors by exception only (no diagnostics on stdout).

    `strict`: a built-in that fails (`to_number("abc")`, division by zero, `"a" + 1`, …) makes
    the query fail (`Output.ok()` is false) instead of making the expression undefined, which
    would silently switch a `deny` off. The policy engine always evaluates strictly.
    """
    from regopy import Interpreter, LogLevel  # lazy: regopy and torch never share a process

    interp = Interpreter()
    interp.log_level = LogLevel.NONE
    interp.strict_built_in_errors = strict
    return interp


_NATIVE: tuple[Any, Any] | None = None


def make_input(value: Any) -> Any:
    """A `regopy.Input` for a JSON-like value (dict, list, tuple, str, int, float, bool, None).

    `regopy.Input` walks the value with `isinstance` checks against the collections ABCs and one
    Python wrapper per native call; dispatching on the exact type and calling the C functions
    directly halves the cost for our nested inputs (see bench/policy.py).
    """
    global _NATIVE
    if _NATIVE is None:
        from regopy import Input  # lazy: regopy and torch never share a process
        from regopy.rego_shared import rego

        _NATIVE = (Input, rego)
    Input, lib = _NATIVE
    handle = lib.regoNewInput()
    try:
        _add(lib, handle, value)
    except Exception:
        lib.regoFreeInput(handle)
        raise
    built = Input.__new__(Input)
    built._impl = handle  # Input.__del__ frees it
    return built


def _add(lib: Any, handle: Any, value: Any) -> None:
    kind = type(value)
    if kind is str:
        _check(lib.regoInputString(handle, value.encode("utf-8")))
    elif kind is dict:
        for key, item in value.items():
            _check(lib.regoInputString(handle, str(key).encode("utf-8")))
            _add(lib, handle, item)
            _check(lib.regoInputObjectItem(handle))
        _check(lib.regoInputObject(handle, len(value)))
    elif kind is bool:
        _check(lib.regoInputBoolean(handle, value))
    elif kind is int:
        _check(lib.regoInputInt(handle, value))
    elif kind is float:
        _check(lib.regoInputFloat(handle, value))
    elif value is None:
        _check(lib.regoInputNull(handle))
    elif kind is list or kind is tuple:
        for item in value:
            _add(lib, handle, item)
        _check(lib.regoInputArray(handle, len(value)))
    else:
        _add_other(lib, handle, value)


def _add_other(lib: Any, handle: Any, value: Any) -> None:
    # Subclasses (str enums, OrderedDict, bool-like ints) take the slow but general path.
    if isinstance(value, bool):
        _check(lib.regoInputBoolean(handle, bool(value)))
    elif isinstance(value, str):
        _add(lib, handle, str(value))
    elif isinstance(value, int):
        _add(lib, handle, int(value))
    elif isinstance(value, float):
        _add(lib, handle, float(value))
    elif isinstance(value, dict):
        _add(lib, handle, dict(value))
    elif isinstance(value, (list, tuple, set, frozenset)):
        _add(lib, handle, list(value))
    else:
        msg = f"cannot pass a {type(value).__name__} to Rego (JSON values only)"
        raise TypeError(msg)


def _check(code: int) -> None:
    if code != 0:
        msg = f"regopy refused the input (code {code})"
        raise ValueError(msg)
