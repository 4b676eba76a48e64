"""What a Python source file imports, read from its text (no import runs): every import statement,
those under `if TYPE_CHECKING:` and inside functions included, relative ones resolved."""

from __future__ import annotations

import ast
from pathlib import Path


def module_name(path: Path, root: Path) -> str:
    """`bench/caller.py` under `root` is `bench.caller`; a package's `__init__.py` is the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path) -> set[str]:
    """Every module `path` imports; `from cdk import zones` counts as cdk.zones when that is a module."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = _package(path, root)[: 1 - node.level or None] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            if module:
                modules.add(module)
            for alias in node.names:
                candidate = f"{module}.{alias.name}" if module else alias.name
                if (root / (candidate.replace(".", "/") + ".py")).exists() or (
                    root / candidate.replace(".", "/") / "__init__.py"
                ).exists():
                    modules.add(candidate)
    return modules


def _package(path: Path, root: Path) -> list[str]:
    """The package a relative import in `path` starts from."""
    name = module_name(path, root).split(".")
    return name if path.name == "__init__.py" else name[:-1]


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as [a, b, ..., a], or [] when there is none (depth-first search)."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return []
        for neighbour in sorted(graph[node]):
            if cycle := visit(neighbour, [*path, node]):
                return cycle
        done.add(node)
        return []

    for start in sorted(graph):
        if cycle := visit(start, []):
            return cycle
    return []
