"""The project's import layers, read from the source with `ast` (nothing is imported):

* domain/ is pure: it imports the standard library and other domain modules only, never a
  database driver, gRPC, Temporal, or the workflows, activities, services and cms packages;
* message modules (workflows/*_messages.py, activities/*_messages.py) import only the standard library and other message
  modules, so a client, the API or the data converter loads the types without the workflows;
* services never import the worker's activities (shared reads live in the owning service's
  repository module);
* no project module imports another in a cycle (imports inside functions count; those under
  `if TYPE_CHECKING:` do not, since they never run).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = ("domain", "workflows", "activities", "services", "cms", "bench", "scripts")
STDLIB = set(sys.stdlib_module_names) | {"__future__"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PROJECT_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            modules[module_name(path)] = path
    return modules


def _under_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return True
    return False


def imported_names(path: Path, module: str, known: frozenset[str] = frozenset()) -> Iterator[str]:
    """Every module `path` imports at run time (absolute names; relative imports resolved).
    `from package import name` counts as importing package.name when that is a module in
    `known`, else as importing the package."""
    tree = ast.parse(path.read_text(), filename=str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if _under_type_checking(node, parents):
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known]
            yield from submodules
            if len(submodules) < len(node.names):
                yield base


def project_imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        known = frozenset(modules)
        graph[module] = {name for name in imported_names(path, module, known) if name in modules and name != module}
    return graph


def top_level(name: str) -> str:
    return name.split(".")[0]


def test_the_domain_imports_nothing_but_the_standard_library_and_itself() -> None:
    modules = project_modules()
    offences = [f"{module} imports {name}"
                for module, path in modules.items() if top_level(module) == "domain"
                for name in imported_names(path, module)
                if top_level(name) not in STDLIB and top_level(name) != "domain"]
    assert offences == []


def test_message_modules_import_only_the_standard_library_and_other_message_modules() -> None:
    modules = project_modules()
    messages = {m for m in modules if m.split(".")[0] in ("workflows", "activities") and m.endswith("_messages")}
    assert {"workflows.case_messages", "workflows.change_messages", "activities.case_messages"} <= messages
    offences = [f"{module} imports {name}"
                for module in sorted(messages)
                for name in imported_names(modules[module], module, frozenset(modules))
                if top_level(name) not in STDLIB and name not in messages]
    assert offences == []


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the groups of modules that import each other in a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
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
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def test_no_project_module_imports_another_in_a_cycle() -> None:
    modules = project_modules()
    graph = project_imports(modules)
    assert strongly_connected(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_services_do_not_reach_into_the_worker_s_activities() -> None:
    """A service owns its schema and answers over gRPC; what activities and services both read of
    a schema lives in that service's repository module, never in activities/."""
    modules = project_modules()
    offences = [f"{module} imports {name}"
                for module, path in modules.items() if top_level(module) == "services"
                for name in imported_names(path, module, frozenset(modules)) if top_level(name) == "activities"]
    assert offences == []
