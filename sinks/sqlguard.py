"""The read-only SQL checker: an allow-list over ClickHouse's own parse tree of the statement.

The statement is parsed by the engine (`parseQueryToJSON`, one statement only), the JSON tree is
checked here, and the unchanged text is what runs, so the checker sees exactly what the engine
executes. Everything not explicitly allowed is refused: statement kinds, AST node types, table
sources, table functions and scalar functions (`sinks.sqlfunctions`). Quoting, comments and
look-alike characters change nothing: names are compared after the parser resolved them.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from schemas.errors import RejectedError
from sinks.sqlfunctions import FunctionAllowList, load_allow_list

__all__ = [
    "CheckedQuery",
    "GuardScope",
    "ParsedQuery",
    "QueryParser",
    "check_ast",
    "check_sql",
    "refuse",
]

NODE_TYPES = frozenset({
    "SelectWithUnionQuery", "SelectIntersectExceptQuery", "SelectQuery", "ExpressionList",
    "Function", "Identifier", "Literal", "Asterisk", "QualifiedAsterisk", "ColumnsRegexpMatcher",
    "ColumnsListMatcher", "QualifiedColumnsRegexpMatcher", "QualifiedColumnsListMatcher",
    "ColumnsTransformerList", "ColumnsApplyTransformer", "ColumnsExceptTransformer",
    "ColumnsReplaceTransformer", "ColumnsReplaceTransformerReplacement", "TablesInSelectQuery",
    "TablesInSelectQueryElement", "TableExpression", "TableIdentifier", "TableJoin", "ArrayJoin",
    "Subquery", "OrderByElement", "WithElement", "WindowDefinition", "WindowListElement",
    "SampleRatio", "InterpolateElement",
})
"""Parse-tree node types a read query may contain; anything else (SETTINGS, query parameters,
storage definitions, node types added by a later engine) is refused."""

_REFUSED_KEYS = {
    "format_ast": "a FORMAT clause (the format is a request parameter, from a fixed list)",
    "out_file": "INTO OUTFILE",
    "compression": "INTO OUTFILE … COMPRESSION",
    "settings_ast": "a SETTINGS clause (limits are set by the server)",
}
_OUTFILE_FLAGS = ("is_outfile_append", "is_outfile_truncate", "is_into_outfile_with_stdout")
_EXPLAIN_KINDS = frozenset({
    "EXPLAIN", "EXPLAIN AST", "EXPLAIN SYNTAX", "EXPLAIN QUERY TREE", "EXPLAIN PLAN",
    "EXPLAIN PIPELINE", "EXPLAIN ESTIMATE",
})
_SHOW_TABLES_KEYS = frozenset({"type", "from", "like", "not_like", "case_insensitive_like",
                               *_OUTFILE_FLAGS})
_IN_FUNCTIONS = frozenset({"in", "notIn", "globalIn", "globalNotIn", "nullIn", "notNullIn",
                           "globalNullIn", "globalNotNullIn"})
_IDENT = r"(?:[A-Za-z_][A-Za-z0-9_]*|`[A-Za-z_][A-Za-z0-9_]*`)"
_DESCRIBE = re.compile(
    rf"(?:DESCRIBE|DESC)\s+(?:TABLE\s+)?(?:(?P<db>{_IDENT})\.)?(?P<table>{_IDENT})\s*;?\s*",
    re.IGNORECASE | re.ASCII,
)


def refuse(why: str) -> RejectedError:
    """The error every refusal raises (the HTTP layer answers 400 with this text)."""
    return RejectedError(f"read-only SQL rejected: {why}")


@dataclass(frozen=True)
class GuardScope:
    """What a read query may touch."""

    database: str
    """The history database; unqualified table names resolve to it."""
    tables: frozenset[str]
    """Readable tables and views of the history database."""
    extra_tables: frozenset[tuple[str, str]] = frozenset({("system", "one")})
    """Other `(database, table)` sources allowed (a row to select constants from)."""
    table_functions: frozenset[str] = frozenset({"numbers"})
    """Table functions allowed (generators that touch nothing outside the query)."""
    functions: FunctionAllowList = field(default_factory=load_allow_list)
    """Scalar and aggregate functions allowed."""
    max_query_bytes: int = 65_536
    """Longer statements are refused before parsing."""


@dataclass(frozen=True)
class ParsedQuery:
    """The engine's parse of one statement."""

    ast: Mapping[str, Any]
    """`parseQueryToJSON(sql)`."""
    round_trips: bool
    """The tree formats back to the same SQL as the text itself: nothing was left out of it."""


class QueryParser(Protocol):
    """Parses SQL with ClickHouse's own parser (a read engine; see `sinks.readonly`)."""

    def parse(self, sql: str) -> ParsedQuery:
        """Parse one statement; RejectedError on a syntax error or an unsupported statement."""
        ...


@dataclass(frozen=True)
class CheckedQuery:
    """A statement that passed the checks, and the text to run."""

    sql: str
    kind: str
    """select, explain, show or describe."""


def check_sql(sql: str, scope: GuardScope, parser: QueryParser) -> CheckedQuery:
    """Refuse (RejectedError) anything but one allowed read statement; return what to run."""
    text = sql.strip()
    if not text.rstrip(";").strip():
        raise refuse("empty statement")
    if len(text.encode("utf-8", "surrogatepass")) > scope.max_query_bytes:
        raise refuse(f"the statement is longer than {scope.max_query_bytes} bytes")
    described = _describe(text, scope)
    if described is not None:
        return described
    parsed = parser.parse(text)
    if not parsed.round_trips:
        raise refuse("the statement has a construct the checker cannot see in full")
    return CheckedQuery(text, check_ast(parsed.ast, scope))


def _describe(text: str, scope: GuardScope) -> CheckedQuery | None:
    # DESCRIBE has no JSON parse tree; accept exactly `DESCRIBE [TABLE] [db.]table` and run a
    # statement built from the checked names, never the user's text.
    if not re.match(r"DESC", text, re.IGNORECASE):
        return None
    m = _DESCRIBE.fullmatch(text)
    if m is None:
        raise refuse("DESCRIBE takes one history table: DESCRIBE [TABLE] [database.]table")
    db, table = (m.group(g).strip("`") if m.group(g) else None for g in ("db", "table"))
    assert table is not None
    _check_table([db, table] if db else [table], scope, frozenset())
    return CheckedQuery(f"DESCRIBE TABLE `{scope.database}`.`{table}`", "describe")


def check_ast(ast: Mapping[str, Any], scope: GuardScope) -> str:
    """Check a parse tree; returns the statement kind or raises RejectedError saying why."""
    kind = ast.get("type")
    if kind == "SelectWithUnionQuery":
        _Walk(scope, _cte_names(ast)).node(ast)
        return "select"
    if kind == "ExplainQuery":
        _check_explain(ast, scope)
        return "explain"
    if kind == "ShowTablesQuery":
        _check_show(ast, scope)
        return "show"
    raise refuse(
        f"{kind} is not a read statement (allowed: SELECT, WITH, SHOW TABLES, DESCRIBE, EXPLAIN)"
    )


def _check_explain(ast: Mapping[str, Any], scope: GuardScope) -> None:
    if ast.get("kind") not in _EXPLAIN_KINDS:
        raise refuse(f"{ast.get('kind')} is not allowed (EXPLAIN [AST|SYNTAX|PLAN|PIPELINE] …)")
    extra = set(ast) - {"type", "kind", "query", *_OUTFILE_FLAGS}
    if extra:
        raise refuse(f"EXPLAIN options are not allowed ({', '.join(sorted(extra))})")
    _check_flags(ast)
    inner = ast.get("query")
    if not isinstance(inner, Mapping) or inner.get("type") != "SelectWithUnionQuery":
        raise refuse("EXPLAIN takes one SELECT")
    _Walk(scope, _cte_names(inner)).node(inner)


def _check_show(ast: Mapping[str, Any], scope: GuardScope) -> None:
    extra = set(ast) - _SHOW_TABLES_KEYS
    if extra:
        raise refuse(f"only SHOW TABLES is allowed (this SHOW has {', '.join(sorted(extra))})")
    _check_flags(ast)
    source = ast.get("from")
    if source is not None and _names(source) != [scope.database]:
        raise refuse(f"SHOW TABLES lists the history database {scope.database} only")


def _check_flags(node: Mapping[str, Any]) -> None:
    if any(node.get(flag) for flag in _OUTFILE_FLAGS):
        raise refuse("INTO OUTFILE is not allowed")


def _cte_names(ast: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(
        str(n["name"]) for n in _nodes(ast) if n.get("type") == "WithElement" and "name" in n
    )


def _nodes(tree: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(tree, Mapping):
        yield tree
        if tree.get("type") != "Literal":
            for value in tree.values():
                yield from _nodes(value)
    elif isinstance(tree, list):
        for item in tree:
            yield from _nodes(item)


def _names(node: Any) -> list[str]:
    """The name parts of an Identifier / TableIdentifier node."""
    if not isinstance(node, Mapping):
        return []
    parts = node.get("name_parts")
    if isinstance(parts, list) and parts:
        return [str(p) for p in parts]
    return [str(node.get("name", ""))]


def _check_table(parts: list[str], scope: GuardScope, ctes: Collection[str]) -> None:
    if len(parts) == 1 and (parts[0] in ctes or parts[0] in scope.tables):
        return
    if len(parts) == 2 and (parts[0] == scope.database and parts[1] in scope.tables):
        return
    if len(parts) == 2 and (parts[0], parts[1]) in scope.extra_tables:
        return
    name = ".".join(parts)
    raise refuse(
        f"table {name!r} is not readable: only the tables of the history database "
        f"{scope.database} (and system.one) may be read"
    )


class _Walk:
    """One pass over a SELECT's tree with the CTE names it defines."""

    def __init__(self, scope: GuardScope, ctes: frozenset[str]) -> None:
        self.scope, self.ctes = scope, ctes

    def node(self, tree: Any) -> None:
        if isinstance(tree, list):
            for item in tree:
                self.node(item)
            return
        if not isinstance(tree, Mapping):
            return
        kind = tree.get("type")
        if kind is not None and kind not in NODE_TYPES:
            raise refuse(f"{kind} is not allowed in a read query")
        self._keys(tree)
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(tree)
        elif kind != "Literal":
            self.node(list(tree.values()))

    def _keys(self, tree: Mapping[str, Any]) -> None:
        for key, what in _REFUSED_KEYS.items():
            if key in tree:
                raise refuse(f"{what} is not allowed")
        _check_flags(tree)

    def _on_Function(self, fn: Mapping[str, Any]) -> None:  # noqa: N802 - node type name
        name = str(fn.get("name", ""))
        if not self.scope.functions.allows(name):
            raise refuse(
                f"function {name}() is not allowed (only functions that compute on values; "
                "nothing that reads files, URLs, settings, dictionaries or sleeps)"
            )
        args = _children(fn.get("arguments"))
        if name in _IN_FUNCTIONS and len(args) == 2 and args[1].get("type") == "Identifier":
            _check_table(_names(args[1]), self.scope, self.ctes)  # `x IN table`
        self.node([v for k, v in fn.items() if k != "name"])

    def _on_ColumnsApplyTransformer(self, node: Mapping[str, Any]) -> None:  # noqa: N802
        if "func_name" in node:
            self._on_Function({"name": node["func_name"]})
        self.node([v for k, v in node.items() if k != "func_name"])

    def _on_TableIdentifier(self, node: Mapping[str, Any]) -> None:  # noqa: N802
        _check_table(_names(node), self.scope, self.ctes)

    def _on_TableExpression(self, node: Mapping[str, Any]) -> None:  # noqa: N802
        function = node.get("table_function")
        if isinstance(function, Mapping):
            name = str(function.get("name", ""))
            if name not in self.scope.table_functions:
                raise refuse(
                    f"table function {name}() is not allowed (allowed: "
                    f"{', '.join(sorted(self.scope.table_functions))}; nothing that reads files, "
                    "URLs, other servers, programs or dictionaries)"
                )
            self.node(function.get("arguments"))
        self.node([v for k, v in node.items() if k != "table_function"])


def _children(node: Any) -> list[Mapping[str, Any]]:
    if isinstance(node, Mapping) and isinstance(node.get("children"), list):
        return [c for c in node["children"] if isinstance(c, Mapping)]
    return []
