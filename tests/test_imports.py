"""The house's import graph: no circle among the project's modules, and no stage package importing
another stage (only pipeline/ wires stages: the design's rule).

The graph is read from the source with ``ast`` (nothing is imported): every ``import`` statement of
a module, at module level or inside a function (a lazy import is still a dependency; the circle
that the AVOD and detect commands once made was two lazy ones), except those under
``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p.name for p in REPO.iterdir() if (p / "__init__.py").is_file())
#: stage packages: each may import only kitti/, backbones/ (and a shared training engine package).
STAGES = ("depth", "pseudolidar", "detect2d", "detection", "kitti_eval")
SHARED = ("kitti", "backbones", "engine", "training")


def _module_name(path: Path, repo: Path) -> str:
    parts = list(path.relative_to(repo).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(repo: Path) -> dict[str, Path]:
    packages = (p for p in repo.iterdir() if (p / "__init__.py").is_file())
    return {_module_name(p, repo): p for pkg in packages for p in pkg.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, int]]:
    """(imported name, line) of every import statement: ``a.b`` for ``import a.b``; ``a.b.c`` or
    ``a.b`` for ``from a.b import c`` (resolved later); relative imports made absolute."""
    out: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend((a.name, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".") if is_package else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            out.extend((f"{base}.{a.name}" if a.name != "*" else base, node.lineno) for a in node.names)
            out.append((base, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


@lru_cache(maxsize=None)
def import_graph(repo: Path = REPO) -> dict[str, dict[str, int]]:
    """module -> {imported project module: first line} of the packages under ``repo``."""
    modules = _modules(repo)
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges: dict[str, int] = {}
        for target, line in _imports(tree, name, path.name == "__init__.py"):
            # ``from a.b import c``: the module a.b.c when it exists, else a.b (c is a name in it)
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                edges.setdefault(target, line)  # a package's own __init__ is not a dependency of it
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One cycle of ``graph`` as [m0, m1, ..., m0], or None (iterative DFS)."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    for start in sorted(graph):
        if state.get(start):
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                stack.append((nxt, iter(sorted(graph.get(nxt, {})))))
                path.append(nxt)
    return None


def test_the_graph_sees_the_projects_modules():
    graph = import_graph()
    assert {"pipeline", "kitti", "detection", "depth"} <= set(PACKAGES)
    assert "pipeline.detectors" in graph["pipeline.keys"]
    assert "pipeline.detectors" in graph["pipeline.commands.detect_cmd"]
    # a lazy import inside a function counts
    assert "detection.frustum_pointnet.train" in graph["pipeline.detectors"]


def test_find_cycle_finds_a_lazy_circle():
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 3}, "d": {"a": 1}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": 1}, "b": {}, "c": {"a": 1, "b": 2}}) is None
    tree = ast.parse("def f():\n    from pipeline.commands import detect_cmd\n")
    assert ("pipeline.commands.detect_cmd", 2) in _imports(tree, "pipeline.commands.avod_cmd", False)


def test_no_import_circle_among_the_projects_modules():
    graph = import_graph()
    cycle = find_cycle(graph)
    if cycle:
        steps = [f"{a} (line {graph[a][b]}) -> {b}" for a, b in zip(cycle, cycle[1:])]
        pytest.fail("import circle: " + "; ".join(steps))


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_package_imports_no_other_stage(stage):
    graph = import_graph()
    bad = sorted(f"{m} line {line}: {t}" for m, edges in graph.items() if m.split(".")[0] == stage
                 for t, line in edges.items()
                 if t.split(".")[0] != stage and t.split(".")[0] not in SHARED)
    assert not bad, f"{stage} imports outside kitti/backbones: {bad}"
