"""The house's shape, read from the source's own import statements: no import cycle among the
project's modules (module level or inside functions), bench never imports the extension points
(`baselines/`, `partitions/`), project imports at module top unless a comment says why, and the
size limits that keep each room readable."""

from __future__ import annotations

import ast
import re
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


# docs/ARCHITECTURE.md's map, top (entry points) to bottom (the ground floor); an import may
# point down or sideways, and up only where the map names the arrow
LAYERS = ("compare", "report", "protocol", "engine", "federation", "model", "synth", "data")
GROUND = ("errors", "registry", "config", "config_checks", "store", "metrics", "seeding")
KNOWN_UP = {("bench.config", "bench.federation.compress"), ("bench.data.__main__", "bench.synth.cache")}


def _floor(module: str) -> int | None:
    """A bench module's place in the map (0 the top; bench.run above it all), else None."""
    parts = module.split(".")
    if parts[0] != "bench" or len(parts) < 2:
        return None
    if parts[1] == "run":
        return -1
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else len(LAYERS) if parts[1] in GROUND else None


def upward(edges: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {
        (name, target)
        for name, targets in edges.items()
        for target in targets
        if None not in (_floor(name), _floor(target)) and _floor(target) < _floor(name)
    }


def test_imports_point_down_the_map_but_for_its_known_arrows():
    """No package cycle either: protocol and report imported each other (the patience check,
    a command that re-runs a study and compares it, sat in protocol and read report's tables)."""
    assert upward({"bench.protocol.x": {"bench.report.y", "bench.engine.z"}}) == {
        ("bench.protocol.x", "bench.report.y")
    }
    assert upward(graph()) == KNOWN_UP
    assert [name for name in project_files() if name.startswith("bench.") and _floor(name) is None] == []


def test_the_map_in_architecture_md_lists_the_floors_in_this_order():
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    folders = re.findall(r"^    bench/(\w+)/ ", text, flags=re.MULTILINE)
    assert [f for f in folders if f != "grids"] == list(LAYERS)
    (ground,) = re.findall(r"^    bench/  ([a-z_ ]+?)  ", text, flags=re.MULTILINE)
    assert ground.split() == list(GROUND)


def _called(call: ast.Call) -> str | None:
    """The name a call calls (`f(...)`, `x.f(...)`)."""
    return getattr(call.func, "attr", getattr(call.func, "id", None))


def test_the_registry_holds_benchs_one_dynamic_import():
    """README: bench/registry.py's discovery is the one dynamic import in bench, so the import
    graph above sees every other dependency (an importlib.import_module("baselines.lora") in the
    engine would hide one from it)."""
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for name, path in project_files().items()
        if name.split(".")[0] == "bench"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and _called(node) in ("import_module", "__import__")
    ]
    assert len(found) == 1 and found[0].startswith("bench/registry.py:"), found


def test_project_imports_at_module_top_unless_a_comment_says_why():
    files = project_files()
    hidden = []
    for name, path in files.items():
        lines = path.read_text().splitlines()
        for target, node in imported_modules(name, path, set(files)):
            text = "\n".join(lines[node.lineno - 1 : node.end_lineno])
            # the comment's words, a linter's `noqa: CODE` aside (a code says no why)
            why = re.sub(r"noqa(: ?[A-Z0-9, ]+)?", "", text.partition("#")[2]).strip(" ()#")
            if node.col_offset > 0 and not why:
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


SYNTH_MAY_READ = {"bench.data.layouts", "bench.data.spans", "bench.data.registry", "bench.data.types"}


def _reached(edges: dict[str, set[str]], start: str) -> set[str]:
    """Every project module `start` imports, directly or through others."""
    seen, todo = set(), [start]
    while todo:
        for target in edges.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _loaders(files: dict[str, Path]) -> set[str]:
    """bench.data modules that register a task (`@register_task(...)`), and the package that imports them all."""
    found = {"bench.data"}
    for name, path in files.items():
        if name.startswith("bench.data."):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef) and any(
                    isinstance(d, ast.Call) and getattr(d.func, "id", None) == "register_task"
                    for d in node.decorator_list
                ):
                    found.add(name)
    return found


def test_synth_and_the_loaders_never_import_each_other():
    """README (design notes): the release layouts sit in bench/data/layouts.py, read by loaders and
    synthetic writers alike, so `synth` never imports a loader; the fallback is chosen in
    bench/synth/cache.py, so no loader imports `synth` (only the `python -m bench.data` command does)."""
    files, edges = project_files(), graph()
    loaders = _loaders(files)
    assert {"bench.data.conll", "bench.data.i2b2_2010", "bench.data.i2b2_2014", "bench.data.mimic3"} <= loaders
    synth = [name for name in files if name.split(".")[:2] == ["bench", "synth"]]
    assert len(synth) > 5
    read = {t for name in synth for t in edges[name] if t.split(".")[:2] == ["bench", "data"]}
    assert read and read <= SYNTH_MAY_READ  # directly: only the shared layout, span, registry and type modules
    assert [(n, sorted(_reached(edges, n) & loaders)) for n in synth if _reached(edges, n) & loaders] == []
    data = [n for n in files if n.split(".")[:2] == ["bench", "data"]]
    assert "bench.synth.cache" in edges["bench.data.__main__"]  # the one that may: the check sees such an edge
    reaches_synth = [
        n for n in data if n != "bench.data.__main__" and any(t.startswith("bench.synth") for t in _reached(edges, n))
    ]
    assert reaches_synth == []


def _is_seed(node: ast.AST) -> bool:
    """A variable or attribute named as a seed (`seed`, `cfg.seed`, `base_seed`), not a string key."""
    return "seed" in (getattr(node, "id", None) or getattr(node, "attr", None) or "").lower()


def test_stream_tags_live_only_in_seeding():
    """README (design notes): bench/seeding.py is the only place the random streams' tags live: no
    other module writes one of its tag numbers, seeds numpy from a literal list or tuple of keys,
    or offsets a seed by a number (`seed + 5`: a new stream's tag outside seeding)."""
    seeding = ROOT / "bench" / "seeding.py"
    (purposes,) = [
        node.value
        for node in ast.parse(seeding.read_text()).body
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "PURPOSES"
    ]
    tags = {tag for tag in ast.literal_eval(purposes).values() if tag is not None}
    assert len(tags) >= 8
    found = []
    for name, path in project_files().items():
        if path == seeding:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and type(node.value) is int and node.value in tags:
                found.append(f"{name}:{node.lineno} tag {node.value}")
            if (
                isinstance(node, ast.Call)
                and _called(node) == "default_rng"
                and any(isinstance(sub, ast.List | ast.Tuple) for arg in node.args for sub in ast.walk(arg))
            ):
                found.append(f"{name}:{node.lineno} {ast.unparse(node)}")
            if (  # a stream made by offsetting a seed (`seed + 5`): a tag by another name
                isinstance(node, ast.BinOp)
                and any(_is_seed(side) for side in (node.left, node.right))
                and any(isinstance(side, ast.Constant) and type(side.value) is int for side in (node.left, node.right))
            ):
                found.append(f"{name}:{node.lineno} {ast.unparse(node)}")
    assert found == []
