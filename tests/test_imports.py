"""The shape of the package, read from its source: the engine never imports a model zoo,
no module imports another in a cycle (imports inside functions count), and no private
name crosses a package boundary.

Imports are read with `ast`, so an import inside a function is seen as well as one at
the top; imports under `if TYPE_CHECKING:` are left out, since they never run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "memflops"
ZOO = "memflops.zoo"
ZOO_LIBRARIES = ("transformers", "timm", "torchvision")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node that can run: the bodies of `if TYPE_CHECKING:` are skipped."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                yield child
                yield from _runtime_nodes(child)
            continue
        yield node
        yield from _runtime_nodes(node)


def imports_of(name: str) -> list[tuple[str, str | None]]:
    """(module imported, name taken from it or None) for every run-time import of `name`."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, str | None]] = []
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found += [(base, alias.name) for alias in node.names]
    return found


def edges(name: str) -> set[str]:
    """The memflops modules `name` imports (a submodule taken by `from pkg import mod` too)."""
    targets = set()
    for module, attr in imports_of(name):
        if attr is not None and f"{module}.{attr}" in MODULES:
            targets.add(f"{module}.{attr}")
        elif module in MODULES:
            targets.add(module)
    return targets


def _is_engine(name: str) -> bool:
    return not (name == ZOO or name.startswith(ZOO + "."))


def test_the_walk_sees_imports_inside_functions() -> None:
    # zoo.torchvision imports its detection package inside `load`, and hides
    # nothing at the top; capture.values.masks names KnownValues only for typing.
    assert "memflops.zoo.torchvision.detection" in edges("memflops.zoo.torchvision")
    assert "memflops.capture.values.known" not in edges("memflops.capture.values.masks")


@pytest.mark.parametrize("name", [n for n in MODULES if _is_engine(n)])
def test_engine_never_imports_a_zoo(name: str) -> None:
    for module, _ in imports_of(name):
        assert not (module == ZOO or module.startswith(ZOO + ".")), f"{name} imports {module}"
        assert module.split(".")[0] not in ZOO_LIBRARIES, f"{name} imports {module}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module, or with a self-import."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert _cycles(graph) == [["a", "b", "c"], ["e"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    graph = {name: edges(name) - {name} for name in MODULES}
    assert _cycles(graph) == []


def _package_of(name: str) -> str:
    return name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]


def test_no_private_name_crosses_a_package() -> None:
    crossings = [
        f"{name} imports {attr} from {module}"
        for name in MODULES
        for module, attr in imports_of(name)
        if attr is not None and attr.startswith("_") and not attr.startswith("__")
        and module.startswith("memflops") and _package_of(name) != module.rpartition(".")[0]
        and _package_of(name) != module
    ]
    assert crossings == []


def test_tests_import_each_other_as_pytest_puts_them_on_the_path() -> None:
    """`pytest` (what CI runs) puts tests/ on sys.path, not the repository root, so a test
    module imports a neighbour as `from memory import nets`; `from tests.memory import ...`
    passes only under `python -m pytest` and fails in CI."""
    tests = Path(__file__).resolve().parent
    wrong = []
    for path in sorted(tests.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            )
            if any(name == "tests" or name.startswith("tests.") for name in names):
                wrong.append(f"{path.relative_to(tests)}:{node.lineno}")
    assert not wrong, wrong
