"""The fences of third-party internals (``autograder/internals/``).

* Every ``FENCED`` name of every fence module resolves at the installed (pinned) versions; a failure names
  the library, its version and the fence to look at. Each fence's names are resolved in a Python process of
  their own (Keras starts TensorFlow: about 6 s of CPU; the other libraries about 1 s each).
* No private name of a library is used in the kit outside the fences: an AST scan of ``autograder/`` and
  ``tests/conftest.py`` for imports of private modules (``keras.src``, ``x._y``), the private names the
  fences list (as attributes, method overrides or strings) and ``keras.src`` paths in strings.
* The payload gets the fences it loads copied into the sandbox, and those fences import nothing of the kit.
* pyproject.toml declares a range for every library the kit fences, and every declared range holds the pin
  of requirements.txt.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import json
import pkgutil
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import autograder.internals
from autograder.sandbox.spec import INTERNALS, PAYLOAD, PAYLOAD_INTERNALS

REPO = Path(__file__).resolve().parents[2]
FENCES = sorted(name for _, name, _ in pkgutil.iter_modules(autograder.internals.__path__))
ENTRY = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")

# Run in a fresh process: resolve each "module:attr.path" by import and getattr. The last part may be an
# instance attribute, which no import can reach: then the class's source must assign ``self.<part>``.
RESOLVE = textwrap.dedent("""
    import importlib, inspect, json, re, sys
    found = {}
    for entry in json.loads(sys.argv[1]):
        module_name, _, path = entry.partition(":")
        try:
            obj = importlib.import_module(module_name)
            parts = path.split(".")
            for i, part in enumerate(parts):
                if hasattr(obj, part):
                    obj = getattr(obj, part)
                elif (i == len(parts) - 1 and inspect.isclass(obj)
                      and re.search(r"\\bself\\." + re.escape(part) + r"\\s*[:=]", inspect.getsource(obj))):
                    obj = None   # an instance attribute the class sets
                else:
                    raise AttributeError(module_name + "." + ".".join(parts[:i + 1]) + " does not exist")
            found[entry] = None
        except Exception as exc:
            found[entry] = type(exc).__name__ + ": " + str(exc)[:300]
    print(json.dumps(found))
""")


def fence(name: str):
    return importlib.import_module(f"autograder.internals.{name}")


def library_of(entry: str) -> str:
    """The distribution that provides ``entry``'s top-level module, with its installed version."""
    top = entry.split(":", 1)[0].split(".", 1)[0]
    dists = importlib.metadata.packages_distributions().get(top, [top])
    try:
        return f"{dists[0]} {importlib.metadata.version(dists[0])}"
    except importlib.metadata.PackageNotFoundError:
        return f"{top} (not installed)"


def test_the_fences_are_found():
    assert {"keras", "matplotlib", "nbclient", "nbgrader", "jupyter_client", "xdist", "canvasapi"} <= set(FENCES)


@pytest.mark.parametrize("name", FENCES)
def test_every_fenced_name_resolves_at_the_installed_versions(name):
    entries = fence(name).FENCED
    assert isinstance(entries, tuple) and entries, f"autograder/internals/{name}.py lists no FENCED names"
    malformed = [e for e in entries if not isinstance(e, str) or not ENTRY.fullmatch(e)]
    assert not malformed, f"not 'module:attr.path': {malformed}"
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-c", RESOLVE, json.dumps(list(entries))],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    moved = [f"{library_of(entry)}: {entry} ({why})" for entry, why in found.items() if why is not None]
    assert not moved, f"private names that autograder/internals/{name}.py fences have moved:\n  " + "\n  ".join(moved)


# --- no private name outside the fences -------------------------------------------------------------------


def fenced_private_names() -> set[str]:
    """The private parts (``_x``, not dunders) of every fenced name, e.g. ``_compile_config``, ``_pylab_helpers``."""
    names = set()
    for name in FENCES:
        for entry in fence(name).FENCED:
            names |= {part for part in re.split(r"[.:]", entry) if part.startswith("_") and not part.startswith("__")}
    return names


def private_uses(source: str, private: set[str]) -> list[str]:
    """Where ``source`` imports a private module of a library or uses one of ``private`` (``line: what``)."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    stdlib = set(sys.stdlib_module_names)

    def private_module(module: str) -> bool:
        parts = module.split(".")
        return (
            parts[0] not in stdlib
            and parts[0] != "autograder"
            and (
                module == "keras.src"
                or module.startswith("keras.src.")
                or any(p.startswith("_") and not p.startswith("__") for p in parts[1:])
            )
        )

    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            found += [f"{line}: import {a.name}" for a in node.names if private_module(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if private_module(node.module):
                found.append(f"{line}: from {node.module} import")
            found += [f"{line}: from {node.module} import {a.name}" for a in node.names if a.name in private]
        elif isinstance(node, ast.Attribute) and node.attr in private:
            found.append(f"{line}: .{node.attr}")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in private:
            found.append(f"{line}: def {node.name} (an override)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words = set(re.findall(r"[\w.]+", node.value))
            if "keras.src" in node.value or any(
                w in private or private_module(w) for w in words if "." in w or w in private
            ):
                found.append(f"{line}: {node.value[:60]!r}")
    return sorted(found, key=lambda f: int(f.split(":", 1)[0]))


def test_the_scan_finds_private_names():
    """The scan below is not vacuous: the uses the fences took out of the kit are each found."""
    source = textwrap.dedent('''
        """A docstring may name model._compile_config and keras.src.models freely."""
        import keras.src.models.model
        from matplotlib._pylab_helpers import Gcf
        config = model._compile_config.config
        where = "keras.src.optimizers.adam"
        class Client(NotebookClient):
            async def _async_handle_timeout(self, timeout, cell=None):
                pass
        ''')
    found = private_uses(source, fenced_private_names())
    assert [f.split(":", 1)[0] for f in found] == ["3", "4", "5", "6", "8"], found


def test_no_private_name_is_used_outside_the_fences():
    private = fenced_private_names()
    files = [p for p in sorted((REPO / "autograder").rglob("*.py")) if INTERNALS not in p.parents]
    files.append(REPO / "tests" / "conftest.py")
    uses = {
        str(p.relative_to(REPO)): found
        for p in files
        if (found := private_uses(p.read_text(encoding="utf-8"), private))
    }
    assert not uses, f"library internals used outside autograder/internals/ (fence them there): {uses}"


# --- the payload's fences ----------------------------------------------------------------------------------


def test_the_sandbox_gets_every_fence_the_payload_loads():
    runner = (PAYLOAD / "runner.py").read_text(encoding="utf-8")
    capture = ast.parse((PAYLOAD / "capture.py").read_text(encoding="utf-8"))
    loaded = set(re.findall(r'_internals\("(\w+)"\)', runner))
    loaded |= {
        library
        for node in ast.walk(capture)
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "CAPTURE_INTERNALS" for t in node.targets)
        for library in ast.literal_eval(node.value)
    }
    assert {"nbgrader", "nbclient", "jupyter_client", "keras", "matplotlib"} <= loaded
    assert loaded == set(PAYLOAD_INTERNALS)


@pytest.mark.parametrize("name", PAYLOAD_INTERNALS)
def test_a_payload_fence_imports_nothing_of_the_kit(name):
    """The sandbox has one file of each (internals/<name>.py next to runner.py), not the kit's package."""
    tree = ast.parse((INTERNALS / f"{name}.py").read_text(encoding="utf-8"))
    kit = [
        node.lineno
        for node in ast.walk(tree)
        if (isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("autograder")))
        or (isinstance(node, ast.Import) and any(a.name.startswith("autograder") for a in node.names))
    ]
    assert not kit, f"autograder/internals/{name}.py imports the kit at lines {kit}"


def test_nbgrader_s_execute_comes_without_the_packages_init():
    """The stand-in packages give nbgrader's real Execute and leave no stand-in behind."""
    script = textwrap.dedent(f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("fence", {str(INTERNALS / "nbgrader.py")!r})
        fence = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(fence)
        Execute = fence.execute_preprocessor()
        left = sorted(m for m in sys.modules if m.partition(".")[0] in ("nbgrader", "nbconvert"))
        from nbgrader.preprocessors import Execute as real
        print(Execute.__module__, Execute.__qualname__, left, real.__qualname__ == Execute.__qualname__)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["nbgrader.preprocessors.execute", "Execute", "[]", "True"]


# --- declared dependencies --------------------------------------------------------------------------------


def declared() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [
        Requirement(r)
        for r in project["dependencies"]
        + [r for extra in project.get("optional-dependencies", {}).values() for r in extra]
    ]


def pins() -> dict[str, str]:
    found = {}
    for line in (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            found[canonicalize_name(name)] = version.strip()
    return found


def test_every_declared_range_holds_the_pin_of_requirements_txt():
    pinned = pins()
    outside = [
        f"{r} (pinned {pinned.get(canonicalize_name(r.name))})"
        for r in declared()
        if canonicalize_name(r.name) not in pinned or pinned[canonicalize_name(r.name)] not in r.specifier
    ]
    assert not outside, f"pyproject.toml ranges that miss requirements.txt's pin: {outside}"


def test_every_fenced_library_is_declared():
    names = {canonicalize_name(r.name) for r in declared()}
    missing = set()
    for name in FENCES:
        for entry in fence(name).FENCED:
            top = entry.split(".", 1)[0].split(":", 1)[0]
            dist = importlib.metadata.packages_distributions().get(top, [top])[0]
            if canonicalize_name(dist) not in names:
                missing.add(dist)
    assert not missing, f"libraries the kit fences but pyproject.toml does not declare: {sorted(missing)}"
