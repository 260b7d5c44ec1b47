"""nbgrader (and, under its Execute, nbconvert) internals the kit relies on.

Self-contained (the standard library only, nbgrader imported inside
functions): the sandbox's runner loads this file by its path, where the kit's
package is not importable; the course's intake imports it as usual.
"""

import importlib.util
import os
import sys
import types

FENCED = (
    # ``execute_preprocessor`` imports these modules under empty stand-ins of their packages, so it relies on
    # what each imports from its package's __init__ (given to the stand-in before it runs). ``import nbgrader``
    # starts its server extensions and ``import nbconvert`` every exporter: about 2.5 s of CPU in every sandbox,
    # and neither package offers a lighter entry point to Execute.
    "nbconvert.preprocessors.execute:ExecutePreprocessor",
    "nbconvert.preprocessors.execute:CellExecutionError",
    "nbconvert.preprocessors.execute:Preprocessor",
    "nbgrader.preprocessors.base:NbGraderPreprocessor",
    "nbgrader.preprocessors.execute:Execute",
    # Where zip_collect extracted the archives, as ZipCollectApp works it out: it is configuration-dependent
    # (collect_directory_structure) and nbgrader exposes no public accessor.
    "nbgrader.apps.zipcollectapp:ZipCollectApp._format_collect_path",
)

_STAND_INS = (
    "nbgrader",
    "nbgrader.preprocessors",
    "nbconvert",
    "nbconvert.utils",
    "nbconvert.preprocessors",
    "nbconvert.exporters",
)


def execute_preprocessor():
    """nbgrader's own Execute preprocessor, imported without running the ``__init__`` of its packages.

    The packages are stood in for by empty packages on their real folders
    while the few modules Execute needs run, unchanged; then every module
    imported under a stand-in leaves ``sys.modules``, so a later import gets
    the real packages. When nbgrader or nbconvert is imported already, the
    real Execute.
    """
    if "nbgrader" in sys.modules or "nbconvert" in sys.modules:
        from nbgrader.preprocessors import Execute

        return Execute
    try:
        for name in _STAND_INS:
            package = types.ModuleType(name)
            parent, _, child = name.rpartition(".")
            package.__path__ = (
                [os.path.join(sys.modules[parent].__path__[0], child)]
                if parent
                else importlib.util.find_spec(name).submodule_search_locations
            )
            sys.modules[name] = package
        # each module gets what it imports from a package's __init__ before it runs
        from nbconvert.preprocessors.execute import CellExecutionError, ExecutePreprocessor, Preprocessor

        vars(sys.modules["nbconvert.preprocessors"]).update(
            Preprocessor=Preprocessor, ExecutePreprocessor=ExecutePreprocessor, CellExecutionError=CellExecutionError
        )
        from nbgrader.preprocessors.base import NbGraderPreprocessor

        sys.modules["nbgrader.preprocessors"].NbGraderPreprocessor = NbGraderPreprocessor
        from nbgrader.preprocessors.execute import Execute
    finally:
        for name in list(sys.modules):
            if name.partition(".")[0] in ("nbgrader", "nbconvert"):
                del sys.modules[name]
    return Execute


def extracted_path(app, step: str) -> str:
    """The folder of zip_collect's ``step`` (e.g. its ``extracted_directory``) for the running ZipCollectApp."""
    return app._format_collect_path(step)
