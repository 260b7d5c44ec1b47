"""CSV cells that a spreadsheet shows as text, never runs as a formula.

Names, ids and e-mail addresses in the kit's CSV files come from students (a
Canvas display name, a Moodle full name, a file name in an LMS download).
Excel, LibreOffice and Google Sheets run a cell that starts with ``=``,
``+``, ``-`` or ``@`` (and, after a tab or carriage return, the same) as a
formula ("CSV injection", OWASP). ``text_cell`` prefixes such a cell with an
apostrophe, the spreadsheet convention for "this is text". Numbers are
written as numbers: a grade is never student text.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value) -> str:
    """``value`` as a CSV cell that cannot start a formula (None is an empty cell)."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def number_cell(value: float | None) -> str:
    """A score as the shortest exact decimal ('' for no score)."""
    if value is None:
        return ""
    return repr(float(value)) if float(value) != int(value) else str(int(value))
