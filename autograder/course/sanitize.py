"""Student content is data, never markup: what may reach a browser, and the preprocessor that enforces it.

Whatever a student controls (every output of their code, every Markdown or
raw cell they write, cell and notebook metadata, text the checks quote back)
is rendered later by people with more rights than the student: the
instructor's formgrader runs on the instructor's own Jupyter server, the
feedback page and the class report open in anyone's browser. So:

- outputs keep only plain text, tracebacks, PNG/JPEG images, LaTeX, and
  HTML cleaned by bleach with a small allow-list (formatting and tables; no
  script, event handlers, ``style``, frames, images, SVG or ``<base>``;
  links only to http/https/mailto); what is not allowed is escaped, so the
  grader reads it as text. JavaScript, SVG, widget views and any other type
  go; an output left with nothing keeps a plain-text note;
- Markdown is parsed with nbconvert's own parser (the one formgrader and
  feedback render with). An answer with no raw HTML, no link or image
  outside http/https/mailto (or its own PNG/JPEG attachments) and no
  ``mermaid`` block is left byte for byte; any other is shown whole as
  plain text in a fenced block, so the grader still reads what was written;
- attachments keep PNG/JPEG only; cell metadata keeps ``nbgrader``,
  ``editable`` and ``deletable``; notebook metadata keeps ``kernelspec`` and
  ``language_info`` (``widgets`` would make nbconvert load widget code).

``SanitizeStudentContent`` is an nbconvert preprocessor. course_config.py
puts it after ``GradeSubmission`` in ``Autograde.autograde_preprocessors``
(so the autograded notebook on disk is clean, before nbgrader scores it) and
in ``HTMLExporter.preprocessors``, which formgrader's exporter and
generate_feedback's exporter both read.
``FeedbackExporter`` (``GenerateFeedback.exporter_class``) adds a
Content-Security-Policy to the feedback page. Also here: CSV fields that
cannot start a spreadsheet formula, and file names and ids from an LMS
download without markup characters.
"""

from __future__ import annotations

import base64
import binascii
import html
import re

import bleach
from nbconvert.exporters import HTMLExporter
from nbconvert.filters.markdown_mistune import MarkdownWithMath
from nbconvert.preprocessors import Preprocessor
from nbformat import from_dict
from traitlets import Bool, Unicode

HTML_TAGS = frozenset(
    {
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "caption",
        "code",
        "dd",
        "del",
        "div",
        "dl",
        "dt",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "ins",
        "kbd",
        "li",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "u",
        "ul",
        "var",
    }
)
HTML_ATTRIBUTES = {
    "a": ["href", "title"],
    "abbr": ["title"],
    "td": ["colspan", "rowspan"],
    "th": ["colspan", "rowspan"],
}
LINK_PROTOCOLS = frozenset({"http", "https", "mailto"})
IMAGE_MIMETYPES = frozenset({"image/png", "image/jpeg"})
KEPT_MIMETYPES = frozenset({"text/plain", "text/html", "text/markdown", "text/latex", *IMAGE_MIMETYPES})
CELL_METADATA = ("nbgrader", "editable", "deletable")
NOTEBOOK_METADATA = ("kernelspec", "language_info")

# Markdown syntax nbconvert renders into escaped, inert HTML (raw HTML tokens are not among them).
MARKDOWN_TOKENS = frozenset(
    {
        "paragraph",
        "text",
        "emphasis",
        "strong",
        "codespan",
        "linebreak",
        "softbreak",
        "blank_line",
        "heading",
        "list",
        "list_item",
        "block_text",
        "block_quote",
        "thematic_break",
        "block_code",
        "link",
        "image",
        "inline_math",
        "block_math",
        "multiline_math",
        "latex_environment",
        "strikethrough",
        "table",
        "table_head",
        "table_body",
        "table_row",
        "table_cell",
        "task_list_item",
        "def_list",
        "def_list_head",
        "def_list_item",
    }
)
# The feedback page runs no script of its own; MathJax comes from its CDN and evaluates its configuration.
FEEDBACK_CSP = (
    "default-src 'none'; script-src https://cdnjs.cloudflare.com 'unsafe-eval'; "
    "style-src 'unsafe-inline' https://cdnjs.cloudflare.com; img-src data:; "
    "font-src data: https://cdnjs.cloudflare.com; base-uri 'none'; form-action 'none'; "
    "frame-src 'none'; object-src 'none'"
)
SHOWN_AS_TEXT = (
    "*The grader shows this text as it was written: it holds HTML or a link that could run in a reader's browser.*"
)

_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]+")
_IMAGE_DATA_URL = re.compile(r"data:image/(png|jpeg);base64,")
_BACKTICKS = re.compile(r"`+")
_FORMULA_START = ("=", "+", "-", "@")
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
_FILE_NAME_UNSAFE = re.compile(r"[^\w .()+,-]")
SAFE_ID = re.compile(r"[\w.@+-]+")  # student ids from an LMS download: no markup characters


def clean_html(text: str) -> str:
    """HTML with only formatting left; anything else is escaped, so it shows as text."""
    cleaner = bleach.sanitizer.Cleaner(
        tags=HTML_TAGS, attributes=HTML_ATTRIBUTES, protocols=LINK_PROTOCOLS, strip=False, strip_comments=True
    )  # one per call: not thread-safe
    return cleaner.clean(text)


def _is_base64(data) -> bool:
    try:
        base64.b64decode(_CONTROL_OR_SPACE.sub("", data), validate=True)
    except (binascii.Error, TypeError, ValueError):
        return False
    return True


def _url_is_safe(url: str, image: bool, attachments) -> bool:
    squeezed = _CONTROL_OR_SPACE.sub("", html.unescape(url)).lower()  # as a browser reads a URL
    scheme = _SCHEME.match(squeezed)
    if scheme is None or scheme.group(1) in LINK_PROTOCOLS:
        return True
    if image and scheme.group(1) == "attachment":
        return url.strip()[len("attachment:") :] in attachments
    return image and _IMAGE_DATA_URL.match(squeezed) is not None


def _markdown_problems(tokens, attachments) -> list[str]:
    problems = []
    for token in tokens:
        kind = token.get("type")
        if kind not in MARKDOWN_TOKENS:
            problems.append(kind)
        elif kind == "block_code" and (token.get("attrs") or {}).get("info", "").strip().lower().startswith("mermaid"):
            problems.append("mermaid block")  # nbconvert puts its text in the page unescaped
        elif kind in ("link", "image") and not _url_is_safe(
            token["attrs"].get("url", ""), kind == "image", attachments
        ):
            problems.append(f"{kind} {token['attrs'].get('url', '')[:40]!r}")
        problems += _markdown_problems(token.get("children") or [], attachments)
    return problems


def markdown_problems(source: str, attachments=frozenset()) -> list[str]:
    """What in a Markdown text could act in a browser, as nbconvert parses it (empty if nothing)."""
    try:
        tokens = MarkdownWithMath(renderer=None)(source)
    except Exception as exc:  # noqa: BLE001 - text the parser chokes on is shown as plain text
        return [f"unparsable ({type(exc).__name__})"]
    return _markdown_problems(tokens, attachments)


def safe_markdown(source: str, attachments=frozenset()) -> str:
    """The text unchanged if its Markdown is inert; else the whole text as a plain-text block."""
    if not markdown_problems(source, attachments):
        return source
    fence = "`" * max(3, 1 + max((len(run) for run in _BACKTICKS.findall(source)), default=0))
    return f"{SHOWN_AS_TEXT}\n\n{fence}text\n{source.rstrip(chr(10))}\n{fence}\n"


def csv_cell(value) -> str:
    """A CSV field a spreadsheet shows as text: a leading =, +, -, @, tab or CR gets a quote (numbers stay)."""
    text = "" if value is None else str(value)
    if text.startswith(("\t", "\r")):
        return "'" + text
    if text.startswith(_FORMULA_START):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def safe_file_name(name: str) -> str:
    """A file name with every character that could be markup (HTML, rich) replaced by "_"."""
    return _FILE_NAME_UNSAFE.sub("_", name)


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _clean_output(output) -> bool:
    """Sanitise one display_data / execute_result output in place; True if it changed."""
    data = output.get("data", {})
    kept = {}
    for mime, value in data.items():
        if mime not in KEPT_MIMETYPES:
            continue
        text = _text(value)
        if mime == "text/html":
            kept[mime] = clean_html(text)
        elif mime == "text/markdown":
            kept[mime] = safe_markdown(text)
        elif mime in IMAGE_MIMETYPES:
            if _is_base64(text):
                kept[mime] = value
        else:
            kept[mime] = value
    removed = sorted(set(data) - set(kept))
    if removed and "text/plain" not in kept:
        kept["text/plain"] = f"[output removed by the grader: {', '.join(removed)} can run in a browser]"
    metadata = {
        mime: {
            k: v
            for k, v in (output.get("metadata", {}).get(mime) or {}).items()
            if k in ("width", "height") and isinstance(v, (int, float))
        }
        for mime in IMAGE_MIMETYPES
        if mime in kept and mime in output.get("metadata", {})
    }
    changed = kept != data or metadata != output.get("metadata", {})
    output["data"], output["metadata"] = from_dict(kept), from_dict(metadata)
    return changed


class SanitizeStudentContent(Preprocessor):
    """Leave nothing in a notebook that a browser would run: see the module's docstring."""

    enabled = Bool(True, help="sanitise (off only for a course that trusts every student)").tag(config=True)

    def preprocess(self, nb, resources):
        self._changed = 0
        dropped = [key for key in nb.metadata if key not in NOTEBOOK_METADATA]
        for key in dropped:
            del nb.metadata[key]
        nb, resources = super().preprocess(nb, resources)
        if self._changed or dropped:
            self.log.info(
                "Student content made safe to display: %d cell(s) changed%s",
                self._changed,
                f", notebook metadata {dropped} dropped" if dropped else "",
            )
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        before = len(cell.metadata)
        cell.metadata = from_dict({key: value for key, value in cell.metadata.items() if key in CELL_METADATA})
        changed = len(cell.metadata) != before
        if cell.cell_type == "markdown":
            attachments = {
                name: {
                    mime: data for mime, data in bundle.items() if mime in IMAGE_MIMETYPES and _is_base64(_text(data))
                }
                for name, bundle in (cell.get("attachments") or {}).items()
            }
            attachments = {name: bundle for name, bundle in attachments.items() if bundle}
            if "attachments" in cell and attachments != cell.attachments:
                changed = True
                if attachments:
                    cell.attachments = from_dict(attachments)
                else:
                    del cell["attachments"]
            source = safe_markdown(cell.source, set(attachments))
            changed |= source != cell.source
            cell.source = source
        elif cell.cell_type == "raw":
            source = clean_html(cell.source)
            changed |= source != cell.source
            cell.source = source
        elif cell.cell_type == "code":
            for output in cell.get("outputs", []):
                if output.get("output_type") in ("display_data", "execute_result"):
                    changed |= _clean_output(output)
        self._changed += changed
        return cell, resources


class FeedbackExporter(HTMLExporter):
    """The feedback page as nbgrader renders it (its ``feedback`` template), with a Content-Security-Policy
    first in its ``<head>``: markup that got past the sanitiser would still not run or call out."""

    content_security_policy = Unicode(FEEDBACK_CSP, help="the page's Content-Security-Policy").tag(config=True)

    def from_notebook_node(self, nb, resources=None, **kw):
        output, resources = super().from_notebook_node(nb, resources, **kw)
        meta = f'<meta http-equiv="Content-Security-Policy" content="{html.escape(self.content_security_policy)}">'
        output, found = _HEAD.subn(lambda head: f"{head.group(0)}\n{meta}", output, count=1)
        if not found:
            raise ValueError("the feedback template wrote no <head>: the Content-Security-Policy has no place")
        return output, resources


def terminal_text(text: str) -> str:
    """Text a terminal shows as it is, acting on nothing: control characters replaced by visible ones.

    Student text (ids, file names, cell names, error messages, logs) can hold escape sequences that
    clear the screen, rewrite what is shown, set the clipboard (OSC 52) or hide a link (OSC 8), and
    bidi overrides that reorder what is read. Chosen by Unicode property, not by a list of sequences:
    a C0 control (category Cc below U+0020, except newline and tab) shows as its Control Picture
    (ESC as U+241B), DEL as U+2421; a C1 control (Cc, U+0080-U+009F), a lone surrogate (Cs, from an
    undecodable file name) and a bidi embedding, override or isolate (bidi class LRE, RLE, PDF, LRO,
    RLO, LRI, RLI, FSI, PDI) as U+FFFD. A CRLF line end is a newline. Every other character is kept:
    accents, CJK, emoji and their joiners (ZWJ, tag characters) are unchanged. One character for one,
    apart from CRLF, so styles laid over a text still fit it.
    """
    if text.isprintable():  # nothing of category C or Z but the space: the common case
        return text
    import unicodedata

    shown = []
    for char in text.replace("\r\n", "\n"):
        if char.isprintable() or char in "\n\t":
            shown.append(char)
            continue
        category = unicodedata.category(char)
        if category == "Cc":
            code = ord(char)
            shown.append(chr(0x2400 + code) if code < 0x20 else "\u2421" if code == 0x7F else "\ufffd")
        elif category == "Cs" or unicodedata.bidirectional(char) in (
            "LRE",
            "RLE",
            "PDF",
            "LRO",
            "RLO",
            "LRI",
            "RLI",
            "FSI",
            "PDI",
        ):
            shown.append("\ufffd")
        else:
            shown.append(char)
    return "".join(shown)
