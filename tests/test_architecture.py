"""The structure the docs promise (docs/architecture.md), checked: no import cycle
anywhere in the package, and no module so long that it is probably two ideas.

The layer contracts themselves are import-linter's (``lint-imports`` in .ci/run, the
contracts in pyproject.toml); this test adds what its contracts do not say."""

from __future__ import annotations

from pathlib import Path

import grimp

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"
MAX_LINES = 510  # "about 500": a module past this needs a stated reason below
LONG_WITH_REASON: dict[str, str] = {}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_anywhere_in_the_package() -> None:
    """Every import counts, lazy ones inside functions included; only imports under
    ``if TYPE_CHECKING:`` (annotations) do not."""
    graph = grimp.build_graph("workbench", exclude_type_checking_imports=True)
    edges = {
        m: {d for d in graph.find_modules_directly_imported_by(m) if d.startswith("workbench")}
        for m in graph.modules
        if m.startswith("workbench")
    }
    assert len(edges) > 80  # the graph really was read
    assert _cycles(edges) == []


def test_no_module_is_two_ideas() -> None:
    long = {
        str(p.relative_to(PACKAGE.parent)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert {k: v for k, v in long.items() if k not in LONG_WITH_REASON} == {}


# Polars readers that take a glob pattern unless told ``glob=False``: a path with "[" in
# it (a file "export [2024].csv", a project folder "models[v2]") matched nothing.
_GLOBBING = {"scan_parquet", "read_parquet", "scan_csv", "read_csv"}


def _globbing_calls(source: str) -> list[int]:
    """Lines of the calls in ``source`` that read a path as a pattern."""
    import ast

    lines = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name = node.func.attr
        if name == "read_parquet_schema" or (name == "scan_ndjson" and "escape" not in
                                              ast.unparse(node.args[0])):  # fmt: skip
            lines.append(node.lineno)
        elif name in _GLOBBING and not any(k.arg == "glob" for k in node.keywords):
            first = ast.unparse(node.args[0]) if node.args else ""
            if "BytesIO" not in first and not first.startswith("data"):  # bytes, not a path
                lines.append(node.lineno)
    return lines


def test_the_finder_finds_a_path_read_as_a_pattern() -> None:
    assert _globbing_calls("pl.read_parquet(path)\npl.read_parquet(p, glob=False)") == [1]
    assert _globbing_calls("pl.read_parquet_schema(p)\npl.scan_ndjson(p)") == [1, 2]


def test_every_polars_read_of_a_path_takes_it_literally() -> None:
    found = {
        str(p.relative_to(PACKAGE)): lines
        for p in sorted(PACKAGE.rglob("*.py"))
        if (lines := _globbing_calls(p.read_text()))
    }
    assert found == {}, found
