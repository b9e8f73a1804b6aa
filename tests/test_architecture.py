"""The apps import one another in one direction only (docs/architecture.md).

`make lint` enforces the layers with import-linter; this test walks every import itself
(module level and inside functions) so that a cycle between apps fails the suite too, with
the import that closes it in the message.
"""

import ast
import itertools
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = sorted(
    p.name
    for p in ROOT.iterdir()
    if (p / "__init__.py").exists() and p.name not in {"tests", "bench"}
)


def app_imports() -> dict[str, dict[str, str]]:
    """For each package, the packages it imports, each with one example import."""
    edges: dict[str, dict[str, str]] = defaultdict(dict)
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    target = module.partition(".")[0]
                    if target in PACKAGES and target != package:
                        where = f"{path.relative_to(ROOT)}:{node.lineno} imports {module}"
                        edges[package].setdefault(target, where)
    return edges


def find_cycle(edges: dict[str, dict[str, str]]) -> list[str] | None:
    """A cycle of packages as a path that returns to its start, or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(edges.get(node, {})):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for package in sorted(edges):
        if package not in state and (found := visit(package)):
            return found
    return None


def test_the_walk_sees_imports_between_apps():
    edges = app_imports()
    assert "billing" in edges["agents"]
    assert "agents" in edges["usage"]


def test_find_cycle_reports_a_cycle():
    assert find_cycle({"a": {"b": ""}, "b": {"c": ""}, "c": {"a": ""}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": ""}, "b": {}}) is None


def test_no_cycle_between_apps():
    edges = app_imports()
    cycle = find_cycle(edges)
    assert cycle is None, "apps import each other in a cycle:\n" + "\n".join(
        edges[a][b] for a, b in itertools.pairwise(cycle)
    )
