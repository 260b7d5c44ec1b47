"""Which submissions run identical code, so that one run can grade them all.

Grading is deterministic under a job (fixed seed, fixed CPU threads, the
lab's ``enable_op_determinism``): the same code gives the same check records.
So two notebooks whose *executed code* is the same get the same result, and
the kit runs it once. What may differ between them is what cannot change
what the code does:

- comments and blank lines: each code cell goes through IPython's input
  transformations (``TransformerManager().transform_cell``: magics and shell
  escapes become calls, as the kernel runs them), then Python's tokenizer
  finds the comments; they are cut, trailing spaces stripped, and lines left
  empty dropped. Everything else stays as written, indentation and spaces
  inside a line included; lines inside a multi-line string are kept verbatim;
- Markdown and raw cells; outputs, execution counts and metadata.

The rule has two limits, both decided in favour of running again:

1. **Code that can see its own source is compared as written.** Dropping a
   comment or a blank line changes the text and the line numbers of the cell,
   which code can read: IPython's input history (``In``, ``_ih``, ``_i3``,
   ``get_ipython()``), frames and code objects (``inspect``, ``sys``,
   ``traceback``, ``__code__``, ``lineno``), warnings and logging records,
   and anything reached by a computed name (``globals()``, ``getattr``,
   ``eval``, ``__import__``, ``gc``, ...). A notebook whose own cells (not the
   lab's locked given cells, which are the instructor's and the same for
   all) mention any of these names, as a name or as a string, gets a key of
   its exact code: only a character-for-character twin shares its run.
   Docstrings are strings like any other and stay in the compared text. The
   notebook file itself is not in the sandbox while the kernel runs (the
   runner reads it and removes it first), and the student's other files are
   part of the key.
2. **A run whose outputs show source is shared only by exact twins.** A
   traceback (any error output) prints lines of the cell, comments included,
   with their line numbers, and so does a warning raised in a cell. Such a
   result is reused for a notebook with exactly the same code only; a
   differently commented twin runs on its own (``can_stand_for``).

``code_key`` gives both digests: the normalised code (the group) and the code
as written.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import re
import tokenize
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..model import GradingResult

# Names through which code can read its own source, line numbers or the kernel's input history, or reach
# them by a computed name. A cell that mentions one (as a name, an attribute or a string) is compared as
# written. The list errs on the side of running again: a false alarm costs one run, a miss a wrong merge.
SOURCE_AWARE = frozenset(
    """
    In Out _ih _oh _dh _i _ii _iii get_ipython IPython ipykernel history_manager __main__
    inspect linecache traceback tokenize dis ast sys faulthandler warnings logging pdb breakpoint
    _getframe f_lineno f_code f_back f_globals f_locals f_trace tb_lineno tb_frame tb_next tb_lasti
    gi_frame gi_code cr_frame cr_code ag_frame ag_code
    __traceback__ exc_info __code__ __globals__ __closure__ __module__ __file__ __spec__ __loader__
    co_filename co_firstlineno co_lines co_positions co_lnotab co_linetable co_code co_consts
    lineno end_lineno pathname getsource getsourcelines getfile findsource getframeinfo currentframe
    settrace setprofile gettrace catch_warnings formatwarning showwarning
    globals locals vars dir eval exec compile getattr __getattribute__ __getattr__ __dict__ __builtins__
    builtins __import__ importlib gc ctypes operator attrgetter methodcaller marshal
    __class__ __subclasses__ __bases__ __base__ __mro__ __reduce__ __reduce_ex__ __self__ __func__ __wrapped__
    open os io pathlib Path shutil subprocess glob
""".split()
)
# In a string or after a dot, a word counts when it names the input history or has an underscore
# (f_lineno, __code__): expression evaluators (pandas.eval, DataFrame.query, numexpr) resolve names in
# the caller's frame, and attributes reach frames and code objects; a bare name counts from the whole list.
_IN_STRINGS = frozenset({"In", "Out", "get_ipython"} | {name for name in SOURCE_AWARE if "_" in name})
_HISTORY_NAME = re.compile(r"^_i+\d*$|^_\d+$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@functools.lru_cache(maxsize=1)
def _transformer():
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


def _tokens(text: str) -> list[tokenize.TokenInfo] | None:
    try:
        return list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None


def transformed(source: str) -> str:
    """The cell as the kernel runs it: IPython's input transformations applied."""
    try:
        return _transformer().transform_cell(source)
    except Exception:  # noqa: BLE001 - a cell IPython cannot transform is compared as written
        return source


def normal_code(source: str) -> str:
    """The cell without comments and blank lines (after IPython's transformations); else as written.

    A cell the tokenizer cannot read (a syntax error, an unclosed bracket) is returned as written.
    """
    text = transformed(source)
    tokens = _tokens(text)
    if tokens is None:
        return source
    lines = text.splitlines(keepends=True)
    cut: dict[int, int] = {}  # row -> column where its comment starts
    inside: set[int] = set()  # rows within a multi-line token (kept verbatim, even if blank)
    for tok in tokens:
        if tok.type == tokenize.COMMENT:
            cut[tok.start[0]] = tok.start[1]
        elif tok.end[0] > tok.start[0]:
            inside.update(range(tok.start[0] + 1, tok.end[0] + 1))
    kept = []
    for row, line in enumerate(lines, start=1):
        body = line.rstrip("\r\n")
        if row in cut:
            body = body[: cut[row]].rstrip()
        elif row not in inside:
            body = body.rstrip()
        if body or row in inside:
            kept.append(body)
    return "\n".join(kept)


def sees_own_source(source: str) -> bool:
    """Whether a cell mentions a name through which code can read its own source (``SOURCE_AWARE``)."""
    text = transformed(source)
    tokens = _tokens(text)
    if tokens is None:  # cannot tell: compared as written
        return True
    previous = None
    for tok in tokens:
        if tok.type == tokenize.NAME:
            attribute = previous is not None and previous.type == tokenize.OP and previous.string == "."
            # after a dot only the names of frames, code objects and dunders count (model.compile is no compile())
            if (tok.string in (_IN_STRINGS if attribute else SOURCE_AWARE)) or _HISTORY_NAME.match(tok.string):
                return True
        if tok.type == tokenize.STRING and any(
            word in _IN_STRINGS or _HISTORY_NAME.match(word) for word in _WORD.findall(tok.string)
        ):
            return True
        if tok.type not in (tokenize.NL, tokenize.COMMENT):
            previous = tok
    return False


def code_key(cells: list[dict], files: dict[str, bytes], given: frozenset[str] = frozenset()) -> tuple[str, str]:
    """(normalised digest, exact digest) of a notebook's code cells and the student's files.

    ``cells`` are the notebook's cells (nbformat dicts); ``given`` the sources of the lab's locked cells,
    which are the same for every student and never make a notebook compared as written.
    """
    code = [c.get("source", "") for c in cells if c.get("cell_type") == "code"]
    aware = any(sees_own_source(s) for s in code if s not in given)
    exact = hashlib.sha256()
    normal = hashlib.sha256()
    exact.update(json.dumps(code).encode())
    normal.update(json.dumps(code if aware else [normal_code(s) for s in code]).encode())
    for name in sorted(files):
        entry = name.encode() + b"\0" + hashlib.sha256(files[name]).digest()
        exact.update(entry)
        normal.update(entry)
    return normal.hexdigest(), exact.hexdigest()


def shows_source(executed_json: str | None) -> bool:
    """Whether a run's outputs print source lines: an error (traceback), or stderr naming a cell."""
    if not executed_json:
        return False
    try:
        cells = json.loads(executed_json).get("cells", [])
    except (ValueError, AttributeError):
        return True
    for cell in cells:
        for output in cell.get("outputs") or []:
            if output.get("output_type") == "error":
                return True
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                text = output.get("text", "")
                text = "".join(text) if isinstance(text, list) else str(text)
                if "ipykernel_" in text or "Cell In[" in text or "<ipython-input" in text:
                    return True
    return False


def can_stand_for(result: GradingResult, code: str) -> bool:
    """Whether ``result`` grades a submission of identical code whose code as written is ``code``:
    always for the same text; for another (comments, blank lines) only if no output shows source."""
    return result.code == code or not shows_source(result.executed)


def matching_code_cells(nb_cells: list, ran_cells: list) -> list[tuple]:
    """Pairs (cell, cell it ran as) of two notebooks' code cells, in order, where their code is the same.

    Empty when the notebooks do not have the same number of code cells.
    """
    mine = [c for c in nb_cells if c.get("cell_type") == "code"]
    ran = [c for c in ran_cells if c.get("cell_type") == "code"]
    if len(mine) != len(ran):
        return []
    return [
        (a, b)
        for a, b in zip(mine, ran)
        if a.get("source") == b.get("source") or normal_code(a.get("source", "")) == normal_code(b.get("source", ""))
    ]
