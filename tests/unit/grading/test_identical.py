"""Which notebooks run identical code: the normalisation, what it refuses to merge, and the store's lookup."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from autograder.course.store import ResultStore
from autograder.grading.identical import can_stand_for, code_key, normal_code, sees_own_source, shows_source
from autograder.grading.submission import Submission
from autograder.model import GradingResult, Status

COMPILE = (
    "learning_rate = 1e-3  # you may tune this\n"
    "\n"
    "model.compile(\n"
    "    optimizer=keras.optimizers.Adam(learning_rate=learning_rate),  # Adam\n"
    '    loss="binary_crossentropy",\n'
    '    metrics=["accuracy", keras.metrics.AUC(name="auc")],\n'
    ")\n"
)
RECOMMENTED = (
    "# Exercise 1, my way\n"
    "learning_rate = 1e-3\n"
    "\n\n"
    "model.compile(\n"
    "    optimizer=keras.optimizers.Adam(learning_rate=learning_rate),\n"
    "\n"
    '    loss="binary_crossentropy",   # the loss for 0/1 labels\n'
    '    metrics=["accuracy", keras.metrics.AUC(name="auc")],\n'
    ")   \n"
)


def test_comments_and_blank_lines_are_all_that_is_dropped():
    assert normal_code(COMPILE) == normal_code(RECOMMENTED)
    assert normal_code(COMPILE).splitlines()[0] == "learning_rate = 1e-3"
    assert normal_code("learning_rate = 1e-3\n    \n\n") == "learning_rate = 1e-3"  # blank lines dropped
    assert normal_code("learning_rate=1e-3") != "learning_rate = 1e-3"  # spacing in a line kept
    assert normal_code("learning_rate = 0.001") != "learning_rate = 1e-3"  # same value, other code
    assert normal_code("if x:\n  y = 1\n") != normal_code("if x:\n    y = 1\n")  # indentation kept
    assert normal_code("  x = 1\n") == "x = 1"  # IPython runs a cell indented as a whole as if it were not
    text = 'x = """a\n\n# not a comment\n  """  # a comment\n'
    assert normal_code(text) == 'x = """a\n\n# not a comment\n  """'  # a string keeps every line
    assert normal_code("'# not a comment'") == "'# not a comment'"
    # IPython's syntax first: a magic gets its line as a string, comment and all, so that is kept
    assert normal_code("%time x = 1\n\n") == "get_ipython().run_line_magic('time', 'x = 1')"
    assert normal_code("%time x = 1  # magic\n") != normal_code("%time x = 1\n")
    assert normal_code("model.fit(\n# unclosed") == "model.fit(\n# unclosed"  # unreadable: as written


@pytest.mark.parametrize(
    "code",
    [
        "print(In[3])",
        "print(_ih[-1])",
        "x = _i3",
        "y = _ii",
        "get_ipython().history_manager",
        "import inspect\nprint(inspect.getsource(plot_history))",
        "import sys",
        "f.__code__.co_firstlineno",
        "try:\n    1 / 0\nexcept Exception as e:\n    n = e.__traceback__.tb_lineno",
        "import traceback",
        "globals()['I' + 'n']",
        "getattr(obj, name)",
        "eval(text)",
        "__import__('os')",
        "import warnings\nwarnings.warn('x')",
        "import logging",
        "pd.eval('In[1]')",
        "df.query('@_i1 == 1')",
        "%history",
        "!cat spam_transformer.ipynb",
        "open('spam_transformer.ipynb').read()",
        "gen.gi_frame.f_lineno",
        "().__class__.__base__.__subclasses__()",
    ],
)
def test_code_that_can_see_its_own_source_is_compared_as_written(code):
    assert sees_own_source(code)
    nb = [{"cell_type": "code", "source": code}]
    twin = [{"cell_type": "code", "source": "# a comment\n" + code}]
    assert code_key(nb, {})[0] != code_key(twin, {})[0]


@pytest.mark.parametrize(
    "code",
    [
        COMPILE,
        "history = model.fit(train_ds, validation_data=val_ds, epochs=epochs)",
        "def plot_history(history, metric='accuracy'):\n    '''Plot it.'''\n    "
        "ax.plot(history.history[metric], label=f'train_{metric}')\n    plt.show()",
    ],
)
def test_ordinary_lab_code_is_not_source_aware(code):
    assert not sees_own_source(code)


def cells(*sources, markdown="An answer."):
    return [{"cell_type": "markdown", "source": markdown}, *({"cell_type": "code", "source": s} for s in sources)]


def test_the_key_covers_code_and_files_not_markdown():
    normal, exact = code_key(cells(COMPILE, "history = 1"), {"notes.txt": b"n"})
    twin_normal, twin_exact = code_key(cells(RECOMMENTED, "history = 1", markdown="My own words."), {"notes.txt": b"n"})
    assert normal == twin_normal and exact != twin_exact
    assert code_key(cells(COMPILE, "history = 1", markdown="Other."), {"notes.txt": b"n"}) == (normal, exact)
    assert code_key(cells(COMPILE, "history = 2"), {"notes.txt": b"n"})[0] != normal
    assert code_key(cells(COMPILE, "history = 1"), {"notes.txt": b"other"})[0] != normal
    assert code_key(cells(COMPILE, "history = 1"), {})[0] != normal
    assert code_key(cells("history = 1", COMPILE), {"notes.txt": b"n"})[0] != normal  # order of cells counts


def test_the_lab_s_locked_cells_never_make_a_notebook_source_aware():
    given = "import os\nimport warnings\nwarnings.filterwarnings('ignore')\n"
    mine, theirs = cells(given, COMPILE), cells(given, RECOMMENTED)
    assert code_key(mine, {})[0] != code_key(theirs, {})[0]  # "warnings": as written
    assert code_key(mine, {}, frozenset({given}))[0] == code_key(theirs, {}, frozenset({given}))[0]
    edited = cells(given + "print(In)\n", COMPILE)
    assert (
        code_key(edited, {}, frozenset({given}))[0]
        != code_key(cells(given + "print(In)\n", RECOMMENTED), {}, frozenset({given}))[0]
    )


def executed(*outputs) -> str:
    nb = new_notebook(cells=[new_markdown_cell("x"), new_code_cell("x = 1", outputs=list(outputs))])
    return nbformat.writes(nb)


def test_outputs_that_show_source():
    assert not shows_source(None) and not shows_source(executed())
    assert not shows_source(executed(new_output("stream", name="stdout", text="Epoch 1/1\n")))
    assert not shows_source(executed(new_output("stream", name="stderr", text="WARNING: absl ...\n")))
    assert shows_source(executed(new_output("error", ename="ValueError", evalue="x", traceback=["Cell In[3], line 2"])))
    assert shows_source(
        executed(
            new_output("stream", name="stderr", text="/tmp/ipykernel_12/3456.py:2: UserWarning: careful\n  x = f()\n")
        )
    )


def result(code: str, executed_json: str | None) -> GradingResult:
    return GradingResult(Status.OK, "", True, 1.0, 1.0, 0.0, 1.0, executed_json, [], code=code, graded_for="ann")


def test_a_result_stands_for_its_own_text_always_and_for_another_only_if_no_output_shows_source():
    quiet = result("ann-code", executed(new_output("stream", name="stdout", text="Epoch 1/1\n")))
    loud = result("ann-code", executed(new_output("error", ename="NameError", evalue="Adam", traceback=["Cell In[5]"])))
    assert can_stand_for(quiet, "ann-code") and can_stand_for(quiet, "bob-code")
    assert can_stand_for(loud, "ann-code") and not can_stand_for(loud, "bob-code")
    assert can_stand_for(result("ann-code", None), "bob-code")  # no executed notebook: nothing shows source


def test_the_store_finds_a_run_of_identical_code_unless_it_shows_a_different_text(tmp_path):
    store = ResultStore(tmp_path)
    ann = Submission("{}", {}, key="k" * 64, digest="d1", exact_key="a" * 64, code="ann-code")
    bob = Submission("{}", {}, key="k" * 64, digest="d2", exact_key="b" * 64, code="bob-code")  # other comments
    eve = Submission("{}", {}, key="k" * 64, digest="d3", exact_key="a" * 64, code="ann-code")  # ann's very text
    assert store.find(ann) == (ann.key, None)
    store.put(ann.key, result("ann-code", executed()))
    assert store.find(bob)[0] == ann.key and store.find(bob)[1].graded_for == "ann"

    with_error = executed(new_output("error", ename="NameError", evalue="Adam", traceback=["Cell In[5], line 2"]))
    store.put(ann.key, result("ann-code", with_error))
    assert store.find(eve)[0] == ann.key and store.find(eve)[1] is not None  # an exact twin still shares it
    assert store.find(bob) == (bob.exact_key, None)  # a traceback of ann's text is not bob's: own run
    assert store.place(bob) == bob.exact_key and store.place(ann) == ann.key
    store.put(bob.exact_key, result("bob-code", with_error))
    assert store.find(bob)[0] == bob.exact_key and store.find(bob)[1].code == "bob-code"
    stored = json.loads((tmp_path / ".kit" / "store" / f"{ann.key}.json").read_text())
    assert stored["code"] == "ann-code" and stored["graded_for"] == "ann"
