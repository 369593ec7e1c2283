"""A pytest plugin for `make mutation` only: mutmut 3.7 reads `item._nodeid`, which pytest 9 no
longer has; alias it to the public `nodeid`."""

from __future__ import annotations

from _pytest.nodes import Node

if not hasattr(Node, "_nodeid"):
    Node._nodeid = property(lambda self: self.nodeid)  # type: ignore[attr-defined]
