"""The import graph of src/difflab has no circle, type-only imports included, and kinds stay plug-ins.

Every `import difflab.x` and `from difflab.x import y` counts, wherever it stands (inside a function or under
TYPE_CHECKING too), so a circle cannot hide behind a lazy import.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "difflab"
KIND_PACKAGES = ("difflab.points", "difflab.images")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Module → the difflab modules it imports (a `from package import name` counts the submodule if one exists)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                    for a in node.names
                ]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def test_no_module_imports_itself_through_others() -> None:
    graph = imports()
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import circle: " + " -> ".join([*path[path.index(nxt) :], nxt]))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_only_the_registry_names_the_kind_packages() -> None:
    """Outside points/ and images/, only the registry (and the package's docstring-only __init__) imports them."""
    graph = imports()
    outside = {
        name: sorted(t for t in targets if t.startswith(KIND_PACKAGES))
        for name, targets in graph.items()
        if not name.startswith(KIND_PACKAGES) and name != "difflab.kinds"
    }
    assert {name: t for name, t in outside.items() if t} == {}
