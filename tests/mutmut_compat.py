"""A pytest plugin for `make mutation` only (mutmut runs each mutant in a fork of the process
that ran the tests once).

- mutmut 3.7 reads `item._nodeid`, which pytest 9 no longer has: alias it to `nodeid`.
- wasmtime compiles on a thread pool by default; a fork inherits the pool's state but not its
  threads, and the first compile in the mutant's process waits forever (a false "timeout").
  Engines compile on the calling thread here (same code, same results).
"""

from __future__ import annotations

from typing import Any

import wasmtime
from _pytest.nodes import Node

if not hasattr(Node, "_nodeid"):
    Node._nodeid = property(lambda self: self.nodeid)  # type: ignore[attr-defined]

_Engine = wasmtime.Engine


def _serial_engine(config: wasmtime.Config | None = None) -> Any:
    config = config or wasmtime.Config()
    config.parallel_compilation = False
    return _Engine(config)


wasmtime.Engine = _serial_engine  # type: ignore[misc,assignment]
