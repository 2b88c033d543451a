"""synth/ is a generator that uses the kitti/ core only; kitti/ imports no other project package."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROJECT = {p.parent.name for p in REPO.glob("*/__init__.py")}


def _project_imports(package: str) -> dict[str, set[str]]:
    """module file -> the project packages it imports (absolute imports, lazy ones included)."""
    out = {}
    for path in sorted((REPO / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        out[path.relative_to(REPO).as_posix()] = names & PROJECT
    return out


def test_synth_uses_the_kitti_core_only():
    imports = _project_imports("synth")
    assert "synth/scene.py" in imports
    assert {f: n - {"synth", "kitti"} for f, n in imports.items() if n - {"synth", "kitti"}} == {}
    assert any("kitti" in n for n in imports.values())


def test_kitti_core_imports_no_other_project_package():
    imports = _project_imports("kitti")
    assert {f: n - {"kitti"} for f, n in imports.items() if n - {"kitti"}} == {}
    assert not list((REPO / "kitti").glob("synthetic/*.py"))  # the generator moved out of the core
