"""Sentinels for the hostile-content corpus (tests/xss_corpus.py) in a browser.

A page is clean when none of these saw anything:
- ``window.__pwn`` of the page (payloads append their name to it);
- the local HTTP listener (payloads call ``/hit/<name>``; a ``<base>``
  or a meta refresh sends the page there);
- dialogs (``alert``/``confirm`` payloads);
- requests from the page to the Jupyter server's ``/api/contents``,
  ``/api/kernels``, ``/api/sessions`` or ``/api/terminals`` (not for
  JupyterLab, which uses them itself), or to a widget CDN;
- live markup left in the DOM: an event handler, ``srcdoc``, ``style`` or
  ``<base>`` carrying a payload, a ``javascript:``/``data:`` URL, a
  ``<script>`` with a payload, widget script tags. Sanitised payloads only
  appear as text (a plain http link to the listener is not live: JupyterLab
  makes links of URLs in printed text).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from xss_corpus import LINK_PREFIX, SENTINEL, ran

FORBIDDEN_API = ("/api/contents", "/api/kernels", "/api/sessions", "/api/terminals")
WIDGET_CDN = ("unpkg.com", "cdn.jsdelivr.net")

LIVE_MARKUP_JS = f"""() => {{
  const found = [];
  const payload = v => v.includes('{SENTINEL}') || v.includes('/hit/');
  const url = v => v.replace(/[\\x00-\\x20]+/g, '').toLowerCase();
  for (const el of document.querySelectorAll('*')) {{
    for (const attr of el.attributes) {{
      const name = attr.name.toLowerCase(), value = attr.value;
      const live = (name.startsWith('on') || ['srcdoc', 'style'].includes(name) || el.tagName === 'BASE')
        ? payload(value)
        : ['href', 'src', 'action', 'formaction', 'data', 'xlink:href'].includes(name)
          && /^(javascript|vbscript|data:text)/.test(url(value));
      if (live) found.push(el.tagName.toLowerCase() + '[' + name + ']');
    }}
    if (el.tagName === 'SCRIPT' && el.textContent.includes('{SENTINEL}')) found.push('script');
    if (el.tagName === 'SCRIPT' && (el.type || '').startsWith('application/vnd.jupyter.widget'))
      found.push('script[type=' + el.type + ']');
  }}
  return found;
}}"""


class Listener:
    """An HTTP server on 127.0.0.1 that records every path it is asked for."""

    def __init__(self):
        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                hits.append(self.path)
                self.send_response(204)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Watch:
    """Everything one page does that a payload could cause, from the moment it is made."""

    listener: Listener
    api_forbidden: bool = True  # False for JupyterLab, which calls these APIs itself
    dialogs: list = field(default_factory=list)
    requests: list = field(default_factory=list)

    def attach(self, page) -> Watch:
        self._first_hit = len(self.listener.hits)
        page.on("dialog", self._dialog)
        page.context.on("request", lambda request: self.requests.append((request.method, request.url)))
        return self

    def _dialog(self, dialog):
        if dialog.type == "beforeunload":  # JupyterLab asks before leaving a changed notebook: leave
            dialog.accept()
            return
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def click_links(self, page) -> int:
        """Click every link the corpus planted (javascript: links before sanitising)."""
        clicked = 0
        for frame in page.frames:
            try:
                links = frame.locator(f"a:has-text('{LINK_PREFIX}')")
                for i in range(links.count()):
                    links.nth(i).click(timeout=3000, force=True, no_wait_after=True)
                    clicked += 1
            except Exception:  # noqa: BLE001 - a frame that went away, a link a payload moved or hid
                continue
        return clicked

    def findings(self, page, settle_ms: int = 2500) -> dict[str, list]:
        """What ran or reached out; empty lists everywhere on a clean page."""
        page.wait_for_timeout(settle_ms)  # async payloads: fetch().then(), a delayed meta refresh
        found = {"window.__pwn": [], "live markup": []}
        for frame in page.frames:
            try:
                found["window.__pwn"] += ran(frame.evaluate(f"() => window.{SENTINEL} || ''"))
                found["live markup"] += frame.evaluate(LIVE_MARKUP_JS)
            except Exception:  # noqa: BLE001 - a frame that navigated away or an opaque origin
                continue
        found["window.__pwn"] = sorted(set(found["window.__pwn"]))
        found["listener hits"] = self.listener.hits[self._first_hit :]
        found["dialogs"] = list(self.dialogs)
        found["api or widget requests"] = [
            f"{method} {url}"
            for method, url in self.requests
            if (self.api_forbidden and urlsplit(url).path.startswith(FORBIDDEN_API))
            or any(cdn in urlsplit(url).netloc for cdn in WIDGET_CDN)
        ]
        return found


def assert_clean(findings: dict[str, list], where: str) -> None:
    dirty = {key: value for key, value in findings.items() if value}
    assert not dirty, f"student content ran or reached out in {where}: {dirty}"
