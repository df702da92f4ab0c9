"""The package's module-level imports form no cycle (imports inside functions and under
``TYPE_CHECKING`` are not module-level and do not count)."""

from __future__ import annotations

import ast
from pathlib import Path

import dropprior

ROOT = Path(dropprior.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules ``name`` imports at module level; ``from pkg import sub`` counts as
    an import of the submodule ``pkg.sub`` only."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        body = [node]
        if isinstance(node, ast.If):
            if "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            body = node.body
        for stmt in body:
            if isinstance(stmt, ast.Import):
                found.update(alias.name for alias in stmt.names)
            elif isinstance(stmt, ast.ImportFrom):
                base = stmt.module or ""
                if stmt.level:
                    package = name.split(".") if path.name == "__init__.py" else \
                        name.split(".")[:-1]
                    package = package[:len(package) - stmt.level + 1]
                    base = ".".join(package + ([stmt.module] if stmt.module else []))
                subs = {f"{base}.{a.name}" for a in stmt.names} & modules.keys()
                found.update(subs if subs and len(subs) == len(stmt.names) else {base})
    edges = set()
    for target in found:
        while target not in modules and "." in target:
            target = target.rsplit(".", 1)[0]
        if target in modules and target != name:
            edges.add(target)
    return edges


def test_no_import_cycles() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert "dropprior.nn.lstm" in graph["dropprior.nn"]  # the graph sees the package's imports
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)
