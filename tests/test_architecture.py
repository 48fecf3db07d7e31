"""The house rules, checked on the source: only store/ speaks SQL; imports point down
(store ← models ← labeling ← app_pages and the app's entry files) and never form a cycle."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FLOORS = {"store": 0, "models": 1, "labeling": 2, "app_pages": 3}
ENTRY_FILES = ("streamlit_app.py", "app_server.py")  # the app: the top floor, beside app_pages/
SQL = re.compile(r"\bSELECT\b[\s\S]+\bFROM\b|\bINSERT\s+(?:OR\s+\w+\s+)?INTO\b|\bUPDATE\s+\w+\s+SET\b"
                 r"|\bDELETE\s+FROM\b|\bCREATE\s+(?:TABLE|INDEX|VIEW)\b|\bPRAGMA\b")
SQL_CALLS = {"execute", "executemany", "executescript", "query", "read_sql", "read_sql_query", "rows_where"}


def _sources() -> dict[str, Path]:
    """Module name → file, for every Python file of the four floors and the entry files."""
    files = [p for floor in FLOORS for p in sorted((REPO / floor).rglob("*.py"))]
    files += [REPO / name for name in ENTRY_FILES]
    out = {}
    for path in files:
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _floor(module: str) -> int:
    return FLOORS.get(module.split(".")[0], len(FLOORS))


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Project modules `module` imports anywhere in its file (function-level imports included)."""
    found = set()
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in known and name != module)
    return found


def _sql_outside_store() -> list[str]:
    hits = []
    for module, path in _sources().items():
        if _floor(module) == 0:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
                hits.append(f"{path.relative_to(REPO)}:{node.lineno}: SQL text {node.value.strip()[:50]!r}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS:
                hits.append(f"{path.relative_to(REPO)}:{node.lineno}: .{node.func.attr}(...)")
            elif isinstance(node, ast.Subscript) and _names_a_database(node.value) and \
                    isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                hits.append(f"{path.relative_to(REPO)}:{node.lineno}: db[{node.slice.value!r}] table access")
    return hits


def _names_a_database(node: ast.expr) -> bool:
    """`db`, `_db`, `self.db` or a call such as `db()`: what sqlite-utils tables are read from."""
    if isinstance(node, ast.Call):
        node = node.func
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return name.lstrip("_") == "db"


def test_only_store_speaks_sql():
    assert _sql_outside_store() == []


def test_the_sql_check_finds_sql(tmp_path, monkeypatch):
    """The check above would notice a statement, a query call or a table access outside store/."""
    (tmp_path / "labeling").mkdir()
    (tmp_path / "labeling" / "leak.py").write_text(
        'def f(db):\n    db.execute("select 1")\n    return db["lines"].count, db()["pages"].count, "SELECT x FROM lines"\n')
    for name in ENTRY_FILES:
        (tmp_path / name).write_text("")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert len(_sql_outside_store()) == 4


def test_imports_point_down():
    sources = _sources()
    upward = [f"{module} imports {target}"
              for module, path in sources.items() for target in _imports(module, path, set(sources))
              if _floor(target) > _floor(module)]
    assert upward == []


def test_no_import_cycles():
    sources = _sources()
    graph = {module: _imports(module, path, set(sources)) for module, path in sources.items()}
    cycles = _cycles(graph)
    assert cycles == [], "import cycles: " + "; ".join(" → ".join(c) for c in cycles)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []
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
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_the_cycle_check_finds_cycles(graph, expected):
    assert _cycles(graph) == expected
