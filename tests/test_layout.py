"""The package's shape: no import cycles, and HTTP status codes only where HTTP is spoken.

The import graph is read statically (`ast`) from every module of the package. Every import
statement counts, wherever it is: at module level, inside a function, or under
`if TYPE_CHECKING:`. A deferred or type-only import hides a cycle from the interpreter but
not from a reader, so it is a cycle here too. Importing `rampartd.x.y` from outside the
`rampartd.x` package also runs `rampartd/x/__init__.py`, so that edge is in the graph as well.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "rampartd"
# The layers that speak HTTP. errors.py names each error's status once; web/errors.py renders it.
HTTP_LAYERS = ("rampartd.web", "rampartd.cli")
HTTP_ALLOWED = ("rampartd.errors",)


def module_files() -> dict[str, Path]:
    """Every module of the package by dotted name (a package is its __init__)."""
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool,
              known: Mapping[str, Path]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        anchor = module.split(".")
        if not is_package:
            anchor.pop()
        anchor = anchor[:len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        yield sub if sub in known else base


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (see the module docstring for what counts)."""
    known = module_files()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _imported(node, name, is_package, known):
                parts = target.split(".")
                # The target and the packages it sits in that the importer is not part of.
                for end in range(len(parts), 1, -1):
                    candidate = ".".join(parts[:end])
                    if candidate in known and candidate != name \
                            and not name.startswith(candidate + "."):
                        graph[name].add(candidate)
    return graph


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found is not None:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found is not None:
                return found
    return None


def test_cycle_finder_sees_direct_indirect_and_no_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_graph_counts_function_level_type_only_and_package_imports() -> None:
    graph = import_graph()
    # a few edges known to exist, one of each kind the docstring promises to count
    assert "rampartd.policy.describe" in graph["rampartd.policy.compiler"]
    assert "rampartd.audit" in graph["rampartd.web.app"]  # via rampartd.audit.store
    assert "rampartd.audit" not in graph["rampartd.audit.store"]  # its own package
    assert len(graph) > 60 and all(name.startswith("rampartd") for name in graph)


def test_the_package_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _http_statuses(tree: ast.AST) -> Iterator[int]:
    """Line numbers where an HTTP status (100-599) is set or tested under the name `status`."""
    def is_status(node: ast.AST) -> bool:
        return isinstance(node, ast.Constant) and type(node.value) is int \
            and 100 <= node.value <= 599

    def named_status(node: ast.AST) -> bool:
        return (isinstance(node, ast.Name) and node.id == "status") or \
            (isinstance(node, ast.Attribute) and node.attr == "status")

    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "status" and is_status(node.value):
            yield node.value.lineno
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None \
                and is_status(node.value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(named_status(t) for t in targets):
                yield node.lineno
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(named_status(s) for s in sides) and any(is_status(s) for s in sides):
                yield node.lineno


def test_status_scanner_finds_each_form() -> None:
    source = "Outcome(status=202)\nx.status = 403\nif x.status != 202: pass\nstatus = 'ok'\n"
    assert sorted(_http_statuses(ast.parse(source))) == [1, 2, 3]


def test_no_http_status_outside_web_and_cli() -> None:
    found = []
    for name, path in module_files().items():
        if name.startswith(HTTP_LAYERS) or name in HTTP_ALLOWED:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        found += [f"{path.relative_to(PACKAGE.parent)}:{line}" for line in _http_statuses(tree)]
    assert not found, "HTTP status codes in the core: " + ", ".join(found)


def test_every_app_and_request_key_is_in_web_keys() -> None:
    found = []
    for name, path in module_files().items():
        if name == "rampartd.web.keys":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("AppKey", "RequestKey"):
                found.append(f"{name}:{node.lineno}")
    assert not found, "keys outside rampartd/web/keys.py: " + ", ".join(found)


# NamedTuple's public API is spelt with a leading underscore.
_NAMEDTUPLE_API = frozenset({"_replace", "_make", "_asdict", "_fields"})


def test_tests_read_no_private_attributes() -> None:
    found = []
    for path in sorted(PACKAGE.parent.joinpath("tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not isinstance(node, ast.Attribute) or not node.attr.startswith("_") \
                    or node.attr.startswith("__") or node.attr in _NAMEDTUPLE_API:
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue  # a test helper's own state
            found.append(f"{path.name}:{node.lineno} .{node.attr}")
    assert not found, "tests reading private attributes: " + ", ".join(found)
