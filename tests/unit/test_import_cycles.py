"""No import circles between the project's modules: top-level, function-level and type-only
(`if TYPE_CHECKING:`) imports alike. A type-only circle still ties two modules together: each
can only be read, typed and changed with the other; a protocol in the lower module cuts it."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "sinks", "agents", "models", "policies", "runbooks", "streams")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under node, at any depth."""
    for child in ast.iter_child_nodes(node):
        yield from _imports_of(child)


def _imports_of(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    else:
        yield from _imports(node)


def _base(name: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _resolve(target: str, known: dict[str, Path]) -> str | None:
    """The project module an import loads (its longest known prefix), None when external."""
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target or None


def edges(known: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _base(name, path, node)
                # `from pkg import sub` loads pkg.sub when it is a module, else pkg itself
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                           for a in node.names]
            for target in targets:
                found = _resolve(target, known)
                if found is not None:
                    graph[name].update(_loaded(found, name, known))
    return graph


def _loaded(target: str, importer: str, known: dict[str, Path]) -> set[str]:
    """The module and the packages above it that importing it runs (the importer's own
    packages are already running when it imports anything)."""
    parts = target.split(".")
    own = {importer.rsplit(".", n)[0] for n in range(importer.count(".") + 1)}
    loaded = {".".join(parts[:n]) for n in range(1, len(parts) + 1)}
    return {m for m in loaded if m in known and m not in own}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_sees_function_level_and_type_only_imports() -> None:
    known = modules()
    graph = edges(known)
    assert "streams.optimizer" in graph["streams.wiring"]  # imported inside a factory
    assert "streams.app" in graph["streams.runner"]  # only under `if TYPE_CHECKING:`
    assert "agents.drift" in graph["agents.shared"]  # a submodule's import runs its package
    assert "agents.drift" not in graph["agents.drift.agent"]  # its own package is running
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles_between_modules() -> None:
    found = cycles(edges(modules()))
    assert found == [], "import circles:\n" + "\n".join(" ↔ ".join(c) for c in found)
