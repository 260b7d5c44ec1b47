"""The kit's packages import only downwards, and never in a cycle.

Every import in ``autograder/`` is read with ``ast`` (module level, inside
functions and under ``TYPE_CHECKING`` alike: an import put off to run time is
still a dependency). The layers, bottom to top; a module may import modules of
its own layer or of a lower one, never of a higher one:

0. ``autograder.internals``: the third-party private names, fenced (a leaf:
   it imports nothing of the kit), and the package's own ``__init__``;
1. ``autograder.errors``, ``autograder.settings``, ``autograder.model``: what
   every part speaks (exceptions, traitlets settings, statuses and results);
2. ``autograder.sandbox``: runs one notebook isolated from the course; its
   ``payload/`` runs inside the sandbox and imports nothing of the kit
   (``internals`` at most, which is self-contained);
3. ``autograder.grading``: decides a grade (the job, the engine, the checks);
4. ``autograder.course``: operates a course (intake, batch, gradebook, exports);
5. the ways in: ``autograder.api`` (the kit as functions),
   ``autograder.nbgrader_plugins`` (the classes nbgrader loads) and
   ``autograder.hub`` (the course on JupyterHub);
6. ``autograder.cli`` (``spamkit``, which lists the hub's settings too) and
   ``autograder.__main__``.

Within a layer, the packages and modules import each other without a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

KIT = Path(__file__).resolve().parents[2] / "autograder"
LAYERS = {
    "autograder": 0,  # the package's __init__ only (longer names match first)
    "autograder.internals": 0,
    "autograder.errors": 1,
    "autograder.settings": 1,
    "autograder.model": 1,
    "autograder.sandbox": 2,
    "autograder.grading": 3,
    "autograder.course": 4,
    "autograder.api": 5,
    "autograder.nbgrader_plugins": 5,
    "autograder.hub": 5,
    "autograder.cli": 6,
    "autograder.__main__": 6,
}
PAYLOAD = "autograder.sandbox.payload"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(KIT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(KIT.rglob("*.py"))}


def imports_of(name: str, source: str) -> list[tuple[int, str]]:
    """(line, kit module) of every import of the kit in a module's source, wherever it stands."""
    is_package = MODULES.get(name, Path()).name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # ``from . import seccomp``: the module, where it is one
                submodule = f"{target}.{alias.name}"
                found.append((node.lineno, submodule if submodule in MODULES else target))
    return [(line, target) for line, target in found if target == "autograder" or target.startswith("autograder.")]


def unit(name: str) -> str:
    """The part of the kit a module belongs to: its package or top-level module (``autograder.grading``)."""
    return ".".join(name.split(".")[:2])


def layer(name: str) -> int:
    return LAYERS[max((prefix for prefix in LAYERS if name == prefix or name.startswith(prefix + ".")), key=len)]


def edges() -> list[tuple[str, int, str]]:
    return [
        (name, line, target)
        for name, path in MODULES.items()
        for line, target in imports_of(name, path.read_text(encoding="utf-8"))
    ]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node, or with a self-loop (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def where(name: str, line: int) -> str:
    return f"{MODULES[name].relative_to(KIT.parent)}:{line}"


def test_the_reader_sees_every_kind_of_import():
    source = (
        "import autograder.model\nfrom . import seccomp, nothing\nfrom ..errors import KitError\n"
        "def later():\n    from autograder.grading import job\n    import json\n"
        "if TYPE_CHECKING:\n    from ..course.store import ResultStore\n"
    )
    assert sorted(imports_of("autograder.sandbox.bwrap", source)) == [
        (1, "autograder.model"),
        (2, "autograder.sandbox"),
        (2, "autograder.sandbox.seccomp"),
        (3, "autograder.errors"),
        (5, "autograder.grading.job"),
        (8, "autograder.course.store"),
    ]


def test_every_module_of_the_kit_has_a_layer():
    assert len(MODULES) > 50
    assert [name for name in MODULES if name != "autograder" and unit(name) not in LAYERS] == []
    assert [target for _, _, target in edges() if target not in MODULES] == []


def test_imports_point_down_the_layers():
    upward = [
        f"{where(name, line)}: {unit(name)} (layer {layer(name)}) imports {target} (layer {layer(target)})"
        for name, line, target in edges()
        if layer(target) > layer(name)
    ]
    assert not upward, "imports that point up:\n" + "\n".join(dict.fromkeys(upward))


def test_the_internals_are_a_leaf_and_the_payload_imports_nothing_of_the_kit():
    leaf = [
        f"{where(name, line)}: {target}"
        for name, line, target in edges()
        if unit(name) == "autograder.internals" and unit(target) != "autograder.internals"
    ]
    assert not leaf, "autograder.internals imports the kit:\n" + "\n".join(leaf)
    payload = [
        f"{where(name, line)}: {target}"
        for name, line, target in edges()
        if name.startswith(PAYLOAD) and not target.startswith((PAYLOAD, "autograder.internals"))
    ]
    assert not payload, "the sandbox's payload imports the kit:\n" + "\n".join(payload)


def test_no_import_cycle_between_the_kit_s_packages():
    graph: dict[str, set[str]] = {}
    for name, _, target in edges():
        if unit(name) != unit(target):
            graph.setdefault(unit(name), set()).add(unit(target))
    found = cycles(graph)
    detail = [
        f"{where(name, line)}: {name} imports {target}"
        for name, line, target in edges()
        if any(unit(name) in c and unit(target) in c and unit(name) != unit(target) for c in found)
    ]
    assert not found, f"cycles {found}:\n" + "\n".join(dict.fromkeys(detail))


def test_no_import_cycle_between_the_kit_s_modules():
    graph: dict[str, set[str]] = {}
    for name, _, target in edges():
        if name != target:
            graph.setdefault(name, set()).add(target)
    found = cycles(graph)
    assert not found, f"cycles between modules: {found}"
