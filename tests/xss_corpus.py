"""Hostile student content, as code: HTML and script a student can aim at
whoever opens their work in a browser (the instructor's formgrader, the
feedback page, the class report, JupyterLab).

Every payload has its own name. If it runs, it appends that name to
``window.top.__pwn`` (and, where it has a network path, calls
``<listener>/hit/<name>`` on a local HTTP listener the test runs), so a
failing test says which payload ran. Payloads that cannot set a window
property from where they run (an opaque-origin frame, a stylesheet, a
meta refresh) only call the listener.

Three students, all brought in as a Canvas download (``spamkit collect
--zip``), so the LMS intake is part of the path:

- ``XSS_OUTPUTS`` (1001): the reference solution, plus outputs of every
  kind from its compile cell, script in its written answer (the ``analysis``
  Markdown cell), a raw HTML cell, widget state in the notebook metadata,
  a cell that raises an exception with HTML in its class name, and an extra
  notebook whose file name is HTML;
- ``XSS_LABELS`` (1002): HTML and rich markup in the plot's x label, legend
  label and title, and in an optimizer's class name, which the checks quote
  back; an ordinary Markdown answer (emphasis, list, code, maths) that must
  keep its formatting;
- ``XSS_NAMES`` (1003): only oddly named notebooks (HTML, rich markup), so
  intake reports the names and nothing is graded.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_raw_cell

SENTINEL = "__pwn"
XSS_OUTPUTS, XSS_LABELS, XSS_NAMES = "1001", "1002", "1003"
GRADED = (XSS_OUTPUTS, XSS_LABELS)
LINK_PREFIX = "pwn-link-"  # text of every javascript: link the browser test clicks
SOLUTION_PATH = "/api/contents/source/spam_transformer/spam_transformer.ipynb"


def mark(name: str, listener: str = "") -> str:
    """JavaScript (no spaces, no double quotes) that records that `name` ran."""
    call = f"fetch('{listener}/hit/{name}');" if listener else ""
    return f"{call}window.top.{SENTINEL}=(window.top.{SENTINEL}||'')+'|{name}';"


def ran(value: str) -> list[str]:
    """The payload names a page's ``window.__pwn`` holds."""
    return sorted({name for name in (value or "").split("|") if name})


# --- outputs of the student's code (compile cell of XSS_OUTPUTS) -------------------------


def html_outputs(listener: str) -> dict[str, str]:
    """name -> text/html the student's code displays."""
    m = lambda name: mark(name, listener)  # noqa: E731
    xsrf = "(document.cookie.match(/_xsrf=([^;]+)/)||[])[1]||''"
    return {
        "out_script": f"<script>{m('out_script')}</script>",
        "out_onerror": f'<img src=x onerror="{m("out_onerror")}">',
        "out_jslink": f'<a href="javascript:{m("out_jslink")}">{LINK_PREFIX}out_jslink</a>',
        "out_svg_inline": f'<svg><script>{m("out_svg_inline")}</script></svg><svg onload="{m("out_svg_inline")}"></svg>',
        "out_srcdoc": f'<iframe srcdoc="<script>{m("out_srcdoc")}</script>"></iframe>',
        "out_iframe_data": f"<iframe src=\"data:text/html,<script>fetch('{listener}/hit/out_iframe_data')</script>\"></iframe>",
        "out_details": f'<details open ontoggle="{m("out_details")}"><summary>s</summary></details>',
        "out_alert": "<img src=x onerror=\"alert('out_alert')\">",
        "out_base": f'<base href="{listener}/hit/out_base/">',
        "out_css": (
            f"<style>@import url('{listener}/hit/out_css_import');</style>"
            f"<div style=\"background-image:url('{listener}/hit/out_css_url')\">styled</div>"
        ),
        "out_fetch_solution": (
            f"<img src=x onerror=\"fetch('{SOLUTION_PATH}').then(r=>r.text()).then(t=>{{{m('out_fetch_solution')}}})\">"
        ),
        "out_start_kernel": (
            f"<img src=x onerror=\"fetch('/api/kernels',{{method:'POST',headers:{{'X-XSRFToken':{xsrf}}}}})"
            f'.then(r=>{{{m("out_start_kernel")}}})">'
        ),
    }


def svg_output(listener: str) -> str:
    name = "out_svg_output"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20" onload="{mark(name, listener)}">'
        f'<script>{mark(name, listener)}</script><rect width="20" height="20"/></svg>'
    )


WIDGET_VIEW = {"model_id": "pwn-widget", "version_major": 2, "version_minor": 0}


def widget_state(listener: str) -> dict:
    """Notebook metadata: an HTML widget whose value is script (nbconvert would load widget JS for it)."""
    model = {
        "model_name": "HTMLModel",
        "model_module": "@jupyter-widgets/controls",
        "model_module_version": "2.0.0",
        "state": {"value": f'<img src=x onerror="{mark("widget_state", listener)}">'},
    }
    return {
        "application/vnd.jupyter.widget-state+json": {
            "version_major": 2,
            "version_minor": 0,
            "state": {"pwn-widget": model},
        }
    }


def output_code(listener: str) -> str:
    """Code appended to the compile cell: one display per payload, then a print of HTML."""
    lines = [
        "",
        "# --- hostile outputs (tests/xss_corpus.py) ---",
        "from IPython.display import HTML, Javascript, Markdown, display",
    ]
    lines += [f"display(HTML({html!r}))" for html in html_outputs(listener).values()]
    lines.append(f"display({{'image/svg+xml': {svg_output(listener)!r}, 'text/plain': 'an SVG'}}, raw=True)")
    lines.append(f"display(Javascript({mark('out_appjs', listener)!r}))")
    lines.append(
        f"display({{'application/vnd.jupyter.widget-view+json': {WIDGET_VIEW!r}, 'text/plain': 'a widget'}}, raw=True)"
    )
    markdown = f'<img src=x onerror="{mark("out_markdown", listener)}">'
    lines.append(f"display(Markdown({markdown!r}))")
    printed = f"<script>{mark('out_stdout', listener)}</script>"
    lines.append(f"print({printed!r})")
    return "\n".join(lines) + "\n"


def error_cell(listener: str) -> str:
    """A cell of its own that fails with HTML in the exception's class name and message."""
    name = f'<img src=x onerror="{mark("out_traceback", listener)}">'
    return f"raise type({name!r}, (Exception,), {{}})({name!r})\n"


def kernel_outputs(listener: str) -> list:
    """The outputs ``output_code`` and ``error_cell`` make when run, built directly (no kernel)."""
    from nbformat.v4 import new_output

    outputs = [
        new_output("display_data", data={"text/html": html, "text/plain": "<IPython.core.display.HTML object>"})
        for html in html_outputs(listener).values()
    ]
    outputs += [
        new_output("display_data", data={"image/svg+xml": svg_output(listener), "text/plain": "an SVG"}),
        new_output(
            "display_data",
            data={
                "application/javascript": mark("out_appjs", listener),
                "text/plain": "<IPython.core.display.Javascript object>",
            },
        ),
        new_output(
            "display_data", data={"application/vnd.jupyter.widget-view+json": WIDGET_VIEW, "text/plain": "a widget"}
        ),
        new_output(
            "display_data",
            data={
                "text/markdown": f'<img src=x onerror="{mark("out_markdown", listener)}">',
                "text/plain": "<IPython.core.display.Markdown object>",
            },
        ),
        new_output(
            "display_data",
            data={"text/html": "<b>x</b>", "text/plain": "isolated"},
            metadata={"text/html": {"isolated": True}},
        ),
        new_output("stream", name="stdout", text=f"<script>{mark('out_stdout', listener)}</script>\n"),
    ]
    name = f'<img src=x onerror="{mark("out_traceback", listener)}">'
    outputs.append(new_output("error", ename=name, evalue=name, traceback=[f"\x1b[0;31m{name}\x1b[0m: {name}"]))
    return outputs


# --- the student's written answer ------------------------------------------------------------


def markdown_answer(listener: str) -> str:
    m = lambda name: mark(name, listener)  # noqa: E731
    return "\n\n".join(
        [
            "My analysis: the model *learns* quickly.",
            f"<script>{m('md_script')}</script>",
            f'<img src=x onerror="{m("md_onerror")}">',
            f"[{LINK_PREFIX}md_jslink](javascript:{m('md_jslink')})",
            f"[{LINK_PREFIX}md_entity_link](&#106;avascript:{m('md_entity_link')})",
            f"<svg><script>{m('md_svg')}</script></svg>",
            f'<iframe srcdoc="<script>{m("md_srcdoc")}</script>"></iframe>',
            f'<details open ontoggle="{m("md_details")}"><summary>more</summary></details>',
            f'```mermaid\n<img src=x onerror="{m("md_mermaid")}">\n```',
            f'<meta http-equiv="refresh" content="2;url={listener}/hit/md_meta_refresh">',
            "<img src=x onerror=\"alert('md_alert')\">",
            f'![attached](attachment:evil.svg) and inline <b onmouseover="{m("md_inline")}">bold</b>',
        ]
    )


def svg_attachment(listener: str) -> dict:
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" onload="{mark("md_attachment", listener)}">'
        f"<script>{mark('md_attachment', listener)}</script></svg>"
    )
    return {"evil.svg": {"image/svg+xml": base64.b64encode(svg.encode()).decode()}}


ORDINARY_ANSWER = (
    "The model reaches a *high* validation AUC after **one** epoch.\n\n"
    "- the loss falls\n- the `val_auc` rises above 0.97\n\n"
    "A line of maths: $\\mathrm{AUC} = P(s_+ > s_-)$, and a comparison in code: `auc < 1`.\n"
)


# --- what the checks quote back (XSS_LABELS) -----------------------------------------------


def label_payloads(listener: str) -> dict[str, str]:
    """Short (no listener call): long labels make big figures, and the kit caps a cell's outputs at 200 kB."""
    return {
        "label_xlabel": f'<img src=x onerror="{mark("label_xlabel")}">',
        "label_legend": f'<svg onload="{mark("label_legend")}">[/red]',
        "label_title": f"<script>{mark('label_title')}</script>",
        "label_class": f'<img src=x onerror="{mark("label_class")}">',
    }


def plot_cell(reference: str, listener: str) -> str:
    """The reference plot with the x label, the validation line's label and the title replaced by HTML
    (the curves are unchanged; the checks quote the x label and the line labels back)."""
    labels = label_payloads(listener)
    swaps = {
        'ax.set_xlabel("Epoch")': f"ax.set_xlabel({labels['label_xlabel']!r})",
        'label=f"val_{metric}"': f"label={labels['label_legend']!r}",
        'ax.set_title(f"{metric} per epoch")': f"ax.set_title({labels['label_title']!r})",
    }
    cell = reference
    for old, new in swaps.items():
        assert old in cell, f"the reference plot_history cell no longer has {old}"
        cell = cell.replace(old, new)
    return cell


def compile_cell_with_odd_class(reference: str, listener: str) -> str:
    """The reference compile, with Adam swapped for a subclass whose name is HTML."""
    name = label_payloads(listener)["label_class"]
    swapped = reference.replace("keras.optimizers.Adam(", f"type({name!r}, (keras.optimizers.Adam,), {{}})(")
    assert swapped != reference, "the reference compile cell no longer uses keras.optimizers.Adam("
    return swapped


# --- notebooks and the LMS download --------------------------------------------------------


def _cell_index(nb, grade_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def outputs_notebook(released, answers: dict, listener: str):
    from kit_testing import fill

    nb = fill(
        released,
        {**answers, "compile": answers["compile"] + output_code(listener), "analysis": markdown_answer(listener)},
    )
    analysis = nb.cells[_cell_index(nb, "analysis")]
    analysis["attachments"] = svg_attachment(listener)
    # extra cells of the student's own: a failing one, a raw HTML one
    nb.cells.insert(_cell_index(nb, "test_plot") + 1, new_code_cell(error_cell(listener)))
    nb.cells.append(
        new_raw_cell(f"<script>{mark('raw_cell', listener)}</script>", metadata={"raw_mimetype": "text/html"})
    )
    nb.cells.append(
        new_markdown_cell(
            f'<img src=x onerror="{mark("md_extra_cell", listener)}">',
            metadata={"jupyter": {"source_hidden": True}, "tags": ['"><script>']},
        )
    )
    nb.metadata["widgets"] = widget_state(listener)
    return nb


def labels_notebook(released, answers: dict, listener: str):
    from kit_testing import fill

    return fill(
        released,
        {
            **answers,
            "compile": compile_cell_with_odd_class(answers["compile"], listener),
            "plot_history": plot_cell(answers["plot_history"], listener),
            "analysis": ORDINARY_ANSWER,
        },
    )


def odd_file_names(listener: str) -> dict[str, list[str]]:
    """Extra notebook file names per student (no slashes: they are file names)."""
    return {
        XSS_OUTPUTS: [f'<img src=x onerror="{mark("name_extra")}">.ipynb'],
        XSS_NAMES: [f'<svg onload="{mark("name_only")}">.ipynb', "[red]pwn[link=javascript:alert(1)]x.ipynb"],
    }


def canvas_zip(notebooks: dict[str, object], extra_names: dict[str, list[str]], released) -> bytes:
    """A Canvas "Download Submissions" zip: lastfirst_<user id>_<submission id>_<file name>."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        submission = 500
        for student in sorted({*notebooks, *extra_names}):
            files = []
            if student in notebooks:
                files.append(("spam_transformer.ipynb", nbformat.writes(notebooks[student])))
            files += [(name, nbformat.writes(released)) for name in extra_names.get(student, [])]
            for file_name, text in files:
                submission += 1
                archive.writestr(f"student{student}_{student}_{submission}_{file_name}", text)
    return buffer.getvalue()


def payload_names(listener: str) -> list[str]:
    """Every payload name the corpus plants (for the report and for sanity checks)."""
    names = [
        *html_outputs(listener),
        "out_svg_output",
        "out_appjs",
        "widget_state",
        "out_markdown",
        "out_stdout",
        "out_traceback",
        "md_script",
        "md_onerror",
        "md_jslink",
        "md_entity_link",
        "md_svg",
        "md_srcdoc",
        "md_details",
        "md_mermaid",
        "md_meta_refresh",
        "md_alert",
        "md_attachment",
        "md_inline",
        "raw_cell",
        "md_extra_cell",
        *label_payloads(listener),
        "name_extra",
        "name_only",
    ]
    return names


def dumps(obj) -> str:
    return json.dumps(obj, indent=1)
