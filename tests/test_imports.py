"""The house's shape, read from the source's own import statements: no import cycle among the
project's modules (module level or inside functions), bench never imports the extension points
(`baselines/`, `partitions/`), project imports at module top unless a comment says why, and the
size limits that keep each room readable."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "baselines", "partitions")
MAX_MODULE_LINES = 300  # bench/ modules
MAX_FUNCTION_LINES = 60
MAX_RUN_ALL_LINES = 150


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_files() -> dict[str, Path]:
    files = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    files["run_all"] = ROOT / "run_all.py"
    return files


def imported_modules(name: str, path: Path, known: set[str]) -> list[tuple[str, ast.stmt]]:
    """(project module, import statement) for every import in the file, resolved to the longest
    known module name (`from bench.x import y` is bench.x.y when y is a module, else bench.x)."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            while parts and ".".join(parts) not in known:
                parts.pop()
            if parts and ".".join(parts) != name:
                found.append((".".join(parts), node))
    return found


def graph() -> dict[str, set[str]]:
    files = project_files()
    return {name: {t for t, _ in imported_modules(name, path, set(files))} for name, path in files.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan); imports of a module by
    itself are dropped when the graph is built."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_cycle():
    """The check itself can fail: a three-module loop and a two-module loop are found."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert sorted(cycles(edges)) == [["a", "b", "c"], ["d", "e"]]


def test_the_graph_is_the_project():
    """Guards against passing on nothing: the files are found and imports resolve to modules."""
    files = project_files()
    assert len(files) > 80 and {"bench.engine.server", "bench.registry", "baselines.lora", "partitions.iid"} <= set(
        files
    )
    assert {"bench.engine.rounds", "bench.engine.ray_backend", "bench.registry"} <= graph()["bench.engine.server"]


def test_a_hidden_import_is_found(tmp_path):
    """The function-level check flags an import inside a function that has no comment."""
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from bench import errors\n    return errors\n")
    (node,) = [n for _, n in imported_modules("x.m", path, {"bench", "bench.errors"})]
    assert node.col_offset > 0


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_bench_never_imports_the_extension_points():
    """baselines/ and partitions/ may import any of bench; bench finds them through its registry."""
    wrong = [
        (name, target)
        for name, targets in graph().items()
        if name.split(".")[0] == "bench"
        for target in targets
        if target.split(".")[0] in ("baselines", "partitions")
    ]
    assert wrong == []


def test_project_imports_at_module_top_unless_a_comment_says_why():
    files = project_files()
    hidden = []
    for name, path in files.items():
        lines = path.read_text().splitlines()
        for target, node in imported_modules(name, path, set(files)):
            text = "\n".join(lines[node.lineno - 1 : node.end_lineno])
            if node.col_offset > 0 and "#" not in text:
                hidden.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {target}")
    assert hidden == []


def _long_functions(path: Path) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]


@pytest.mark.parametrize("package", PACKAGES)
def test_size_limits(package):
    paths = sorted((ROOT / package).rglob("*.py"))
    assert paths
    if package == "bench":
        long_modules = [
            f"{p.relative_to(ROOT)} ({n} lines)"
            for p in paths
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
        ]
        assert long_modules == []
    assert [f for p in paths for f in _long_functions(p)] == []


def test_run_all_is_flags_and_main():
    path = ROOT / "run_all.py"
    assert len(path.read_text().splitlines()) < MAX_RUN_ALL_LINES
    assert _long_functions(path) == []
