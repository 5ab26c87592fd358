"""The layer rules of docs/design-notes.md, checked over the source's AST: arrows point down
only, no import cycles, and only the connection touches its session's private handle."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "reeldb"

# rank of each top-level module or package: an import may only go to the same or a lower rank
RANKS = {
    "errors": 0, "config": 0, "version": 0,
    "storage": 1,
    "format": 2,
    "types": 2.5,  # the type registry: names, OIDs, codecs of every SQL type
    "catalog": 3, "index": 3, "media": 3,
    "engine": 4,
    "sql": 5,
    "rows": 6, "dbapi": 6,
    "loader": 7,
    "cursor": 8, "connection": 8,  # the Python front end (connection.dataloader() builds a loader)
    "ui": 8,  # the web app, over the connection's public API; connection.ui() starts it
    "ray": 8,  # Ray Data reads / writes / backfills: over the connection (+ loader, catalog, format)
    "server": 9, "cli": 9, "demo": 9, "__main__": 9, "": 9,  # "": the package's __init__
}

# inside sql/: helpers < catalog readers < statement handlers < the session (docs/design-notes.md)
SQL_HELPERS = ("names", "user_types", "definitions", "rowid_star", "server_version", "sequences", "constraints")
SQL_CATALOG_READERS = ("settings", "pgcatalog", "rewrite")
SQL_HANDLERS = ("ddl", "objects_ddl", "sequence_ddl", "namespaces", "btree_indexes", "foreign_keys")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _runtime_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except those under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the reeldb modules it imports when it runs (function-level imports too)."""
    modules = _modules()

    def owner(name: str) -> str:
        while name not in modules and "." in name:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in _runtime_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges.update(owner(a.name) for a in node.names if a.name.startswith("reeldb"))
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "reeldb":
                continue
            for alias in node.names:
                full = f"{target}.{alias.name}"
                edges.add(full if full in modules else owner(target))
        edges.discard(name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            nxt = next((e for e in edges if e in graph), None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def _rank(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    assert top in RANKS, f"{module}: add its package to RANKS in tests/test_layers.py"
    return RANKS[top]


def test_imports_point_down_the_layers() -> None:
    upward = sorted(f"{a} -> {b}" for a, edges in import_graph().items() for b in edges
                    if _rank(b) > _rank(a))
    assert upward == []


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _sql(names: tuple[str, ...]) -> set[str]:
    return {f"reeldb.sql.{n}" for n in names}


def test_sql_is_ordered_helpers_catalog_handlers_session() -> None:
    """No helper reaches a catalog reader, a handler or the session; no catalog reader
    reaches a handler or the session; no handler reaches the session (at run time)."""
    graph = import_graph()
    assert _sql(SQL_HELPERS + SQL_CATALOG_READERS + SQL_HANDLERS + ("session",)) <= set(graph)
    levels = [SQL_HELPERS, SQL_CATALOG_READERS, SQL_HANDLERS, ("session",)]
    upward = {}
    for i, level in enumerate(levels[:-1]):
        higher = _sql(tuple(m for above in levels[i + 1:] for m in above))
        for module in level:
            reached = _reachable(graph, f"reeldb.sql.{module}") & higher
            if reached:
                upward[module] = sorted(reached)
    assert upward == {}


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e2"}, "e2": set()}
    assert cycles(graph) == [{"a", "b", "c"}]


def test_only_the_connection_touches_its_private_session() -> None:
    touching = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "_session" and not (
                    isinstance(node.value, ast.Name) and node.value.id == "self"):
                touching.add(path.relative_to(PACKAGE).as_posix())
    assert touching <= {"connection.py"}
