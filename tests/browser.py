"""Check a built book in headless Chromium, as a reader would see it: every page served from a local HTTP server.

For each HTML page of the site (redirect stubs are checked statically) it checks that:

- the page has a title and a first-level heading, and the heading is part of the title;
- every image loads (lazy images are forced to load first), and every image of the text is a figure with a caption;
- math is typeset: every ``.math`` element holds MathJax output (``mjx-container``), no MathJax error, and no raw
  ``\\(``, ``\\[`` or ``$$`` is left in the text outside code;
- the page asks no host but the local server for anything (scripts, styles, fonts, images...), and every request it
  makes to the local server succeeds (network events of the Chrome DevTools protocol);
- every internal link points to a file of the site, and its ``#fragment`` to an element of the target page;
- the side navigation lists the same pages on every page;
- nothing overflows the text column at 1280 px or at 400 px: a table, code block, figure or formula wider than the
  column sits in a box that scrolls sideways, and the page itself never does;

and saves a full-page screenshot (PNG) of each page for review (very tall pages in parts). A static pass also reads
the URLs that the HTML and CSS files would fetch (``<script src>``, ``<link href>``, ``<img src>``, CSS ``url()`` and
``@import``) and reports any on an outside host.

Chromium is driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``), so only the standard library
and Debian's ``chromium`` are needed. Run it on a built site with::

    python tests/browser.py _build/html            # screenshots go to _build/html/_screenshots/
"""
from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import http.server
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote, urljoin, urlsplit

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
VIEWPORT = (1280, 900)
MAX_SCREENSHOT_HEIGHT = 16000  # px; Chromium cannot capture much taller surfaces in one piece
SCREENSHOT_DIR = "_screenshots"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # the tests run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--no-proxy-server",
    # Outside hosts never resolve: a page that asks one fails fast (and is reported) instead of waiting on the network.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}",
    "--force-device-scale-factor=1",
    "--lang=en-US",
)


class BrowserError(RuntimeError):
    """Chromium could not be started, stopped answering, or a DevTools command failed."""


def find_chromium() -> str:
    """Path of a Chromium executable: ``$CHROMIUM`` if set, else the first of ``CHROMIUM_NAMES`` on ``PATH``.

    Raises:
        BrowserError: none is installed (with the command that installs it).
    """
    candidates = [os.environ["CHROMIUM"]] if os.environ.get("CHROMIUM") else list(CHROMIUM_NAMES)
    for name in candidates:
        path = shutil.which(name)
        if path:
            return path
    raise BrowserError(
        f"no Chromium found (looked for {candidates} on PATH): run `make browser`, "
        "or `apt-get install chromium` on Debian, or set CHROMIUM to the browser's path"
    )


# --------------------------------------------------------------------------------------------------------------------
# Local server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder without logging each request; tells browsers not to cache."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 (a free port) in a thread; yields the base URL ending in ``/``."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="book-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --------------------------------------------------------------------------------------------------------------------
# Chromium over the DevTools protocol


class Chromium:
    """Headless Chromium with one tab, driven over ``--remote-debugging-pipe`` (messages are JSON ended by NUL).

    Use as a context manager. ``call`` sends a command and returns its result; events of the tab are kept in
    ``events`` (a list of ``(method, params)``) until ``clear_events``.
    """

    def __init__(self, executable: str | None = None, timeout: float = 60.0) -> None:
        self.executable = executable or find_chromium()
        self.timeout = timeout
        self.events: list[tuple[str, dict]] = []
        self._messages: queue.Queue[dict | None] = queue.Queue()
        self._next_id = 0
        self._session: str | None = None
        self._process: subprocess.Popen | None = None
        self._profile: tempfile.TemporaryDirectory | None = None
        self._log = None

    def __enter__(self) -> Chromium:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start Chromium with a new empty profile and open one blank tab (Page, Runtime, Network enabled)."""
        self._profile = tempfile.TemporaryDirectory(prefix="book-chromium-")
        self._log = open(Path(self._profile.name) / "chromium.log", "wb")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        # Chromium reads commands on fd 3 and writes answers on fd 4: a small Python launcher moves the pipe ends
        # there (from fds >= 10, so neither is already 3 or 4) and executes Chromium.
        child_ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser_read, from_browser_write)]
        os.close(to_browser_read)
        os.close(from_browser_write)
        launcher = "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); " \
                   "os.execv(sys.argv[3], sys.argv[3:])"
        command = [sys.executable, "-c", launcher, *map(str, child_ends), self.executable, *CHROMIUM_FLAGS,
                   f"--user-data-dir={self._profile.name}", "--remote-debugging-pipe", "about:blank"]
        try:
            self._process = subprocess.Popen(command, pass_fds=child_ends, stdin=subprocess.DEVNULL,
                                             stdout=self._log, stderr=self._log)
        finally:
            for fd in child_ends:
                os.close(fd)
        threading.Thread(target=self._read_messages, name="chromium-pipe", daemon=True).start()
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self._session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                  session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self.call(f"{domain}.enable")
        self.call("Network.setCacheDisabled", {"cacheDisabled": True})
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": VIEWPORT[0], "height": VIEWPORT[1], "deviceScaleFactor": 1, "mobile": False})

    def close(self) -> None:
        """Ask Chromium to quit, kill it if it does not, and remove its profile."""
        if self._process is not None:
            with contextlib.suppress(Exception):
                self.call("Browser.close", session=False, timeout=10)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None
        for fd in ("_to_browser", "_from_browser"):
            with contextlib.suppress(OSError, AttributeError):
                os.close(getattr(self, fd))
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._profile is not None:
            self._profile.cleanup()
            self._profile = None

    def _read_messages(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                self._messages.put(None)
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for message in messages:
                self._messages.put(json.loads(message))

    def _log_tail(self) -> str:
        if self._profile is None:
            return ""
        with contextlib.suppress(OSError):
            return (Path(self._profile.name) / "chromium.log").read_text(errors="replace")[-2000:]
        return ""

    def call(self, method: str, params: dict | None = None, *, session: bool = True,
             timeout: float | None = None) -> dict:
        """Send a DevTools command (to the tab unless ``session=False``) and return its result.

        Raises:
            BrowserError: the command failed, Chromium exited, or no answer came within ``timeout`` seconds.
        """
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self._session
        try:
            os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        except OSError as error:
            raise BrowserError(f"Chromium is gone ({error}); its log ends with:\n{self._log_tail()}") from error
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            answer = self._next_message(deadline, f"an answer to {method}")
            if answer.get("id") == message["id"]:
                if "error" in answer:
                    raise BrowserError(f"{method} failed: {answer['error']}")
                return answer.get("result", {})

    def _next_message(self, deadline: float, waiting_for: str) -> dict:
        """The next message from Chromium; events of the tab are recorded on the way."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrowserError(f"timed out waiting for {waiting_for}")
        try:
            message = self._messages.get(timeout=remaining)
        except queue.Empty:
            raise BrowserError(f"timed out waiting for {waiting_for}") from None
        if message is None:
            raise BrowserError(f"Chromium exited while waiting for {waiting_for}; its log ends with:\n"
                               f"{self._log_tail()}")
        if "method" in message and message.get("sessionId") == self._session:
            self.events.append((message["method"], message.get("params", {})))
        return message

    def clear_events(self) -> None:
        self.events.clear()

    def wait_for_event(self, method: str, timeout: float | None = None) -> dict:
        """Wait until the tab sends ``method`` (already received events count); returns its parameters."""
        deadline = time.monotonic() + (timeout or self.timeout)
        seen = 0
        while True:
            for name, params in self.events[seen:]:
                if name == method:
                    return params
            seen = len(self.events)
            self._next_message(deadline, method)

    def pump(self, seconds: float) -> None:
        """Record the tab's events for ``seconds``."""
        deadline = time.monotonic() + seconds
        with contextlib.suppress(BrowserError):
            while True:
                self._next_message(deadline, "events")

    def evaluate(self, expression: str, timeout: float | None = None) -> Any:
        """Evaluate JavaScript in the tab (awaiting a promise) and return its JSON value.

        Raises:
            BrowserError: the script threw.
        """
        result = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(f"script failed: {details.get('exception', {}).get('description') or details}")
        return result["result"].get("value")

    def navigate(self, url: str, timeout: float | None = None) -> str:
        """Open ``url`` in the tab and wait for its load event; returns the navigation's loader id."""
        self.clear_events()
        result = self.call("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"could not open {url}: {result['errorText']}")
        self.wait_for_event("Page.loadEventFired", timeout)
        return result.get("loaderId", "")

    def screenshot(self, path: Path) -> list[Path]:
        """Save PNGs of the whole page: ``path`` and, for a page taller than ``MAX_SCREENSHOT_HEIGHT`` px, the parts
        below it as ``<stem>-2.png``, ``<stem>-3.png``...; returns the files written.

        The viewport is made as tall as the page (or one part) for the capture and restored afterwards
        (``captureBeyondViewport`` shifts this theme's layout).
        """
        def set_height(height: int) -> None:
            self.call("Emulation.setDeviceMetricsOverride",
                      {"width": VIEWPORT[0], "height": height, "deviceScaleFactor": 1, "mobile": False})
            self.evaluate("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")

        height, page_height = VIEWPORT[1], VIEWPORT[1]
        for _ in range(3):  # a taller viewport can change the page's height (elements sized by the viewport)
            page_height = max(VIEWPORT[1], int(self.call("Page.getLayoutMetrics")["cssContentSize"]["height"]))
            wanted = min(page_height, MAX_SCREENSHOT_HEIGHT)
            if wanted == height:
                break
            height = wanted
            set_height(height)
        paths = []
        try:
            for index, top in enumerate(range(0, page_height, height)):
                self.evaluate(f"window.scrollTo(0, {top}); "
                              "new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
                clip = {"x": 0, "y": top, "width": VIEWPORT[0], "height": min(height, page_height - top), "scale": 1}
                shot = self.call("Page.captureScreenshot", {"format": "png", "clip": clip})
                part = path if index == 0 else path.with_name(f"{path.stem}-{index + 1}{path.suffix}")
                part.parent.mkdir(parents=True, exist_ok=True)
                part.write_bytes(base64.b64decode(shot["data"]))
                paths.append(part)
        finally:
            self.evaluate("window.scrollTo(0, 0)")
            set_height(VIEWPORT[1])
        return paths


# --------------------------------------------------------------------------------------------------------------------
# One page

# Runs in the page once it has loaded: forces lazy images to load, waits for images, MathJax and fonts.
SETTLE_SCRIPT = r"""
(async () => {
  const withTimeout = (promise, ms) => Promise.race([promise, new Promise(done => setTimeout(done, ms))]);
  for (const img of document.images) { img.loading = 'eager'; }
  await withTimeout(Promise.all([...document.images].map(img => img.complete ? null :
      new Promise(done => { img.addEventListener('load', done); img.addEventListener('error', done); }))), 20000);
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await withTimeout(MathJax.startup.promise, 30000);
  }
  await withTimeout(document.fonts.ready, 10000);
  await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
  return true;
})()
"""

# Collects what the checks need from the rendered page.
FACTS_SCRIPT = r"""
(() => {
  const clean = text => text.replace(/[#¶\uf0c1]/g, '').replace(/\s+/g, ' ').trim();
  const skipped = 'pre, code, script, style, textarea, mjx-container, .highlight, .math';
  const raw = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.nodeValue;
    if (/\\\(|\\\[|\$\$/.test(text) && !node.parentElement.closest(skipped)) { raw.push(text.trim().slice(0, 80)); }
  }
  const math = [...document.querySelectorAll('.math')];
  return {
    url: location.href,
    title: document.title.trim(),
    headings: [...document.querySelectorAll('h1')].map(h => clean(h.textContent)).filter(text => text),
    images: [...document.images].map(
        img => ({src: img.currentSrc || img.src, loaded: img.complete && img.naturalWidth > 0})),
    uncaptioned: [...(document.querySelector('article') || document.body).querySelectorAll('img')].filter(img => {
      const caption = img.closest('figure') && img.closest('figure').querySelector('figcaption');
      return !caption || !clean(caption.textContent);
    }).map(img => img.getAttribute('src')),
    mathjax: Boolean(window.MathJax && window.MathJax.version),
    math: math.length,
    untypeset: math.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.trim().slice(0, 80)),
    mathErrors: [...document.querySelectorAll('mjx-container')]
        .map(e => e.querySelector('[data-mjx-error], mjx-merror')).filter(e => e)
        .map(e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 120)),
    raw,
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    navigation: [...new Set([...document.querySelectorAll('nav.bd-docs-nav li.toctree-l1 > a[href]')].map(
        a => a.href.split('#')[0]))],
    tableRowLines: [...(document.querySelector('article') || document.body).querySelectorAll('table')].map(table =>
        Math.max(0, ...[...table.rows].map(row => Math.max(0, ...[...row.cells].map(cell => {
          const style = getComputedStyle(cell);
          const line = parseFloat(style.lineHeight) || 1.5 * parseFloat(style.fontSize);
          const inner = cell.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
          return Math.round(inner / line);
        }))))),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id).concat(
        [...document.querySelectorAll('a[name]')].map(a => a.getAttribute('name'))),
  };
})()
"""

# Lists what overflows the text column at the current width: an element of the article whose right edge passes the
# column's, and that no horizontally scrolling box (overflow-x auto or scroll) inside the column holds; and whether
# the whole document scrolls sideways. A box that clips (overflow hidden) does not count: its content is cut off.
OVERFLOW_SCRIPT = r"""
(() => {
  const column = document.querySelector('article') || document.querySelector('main') || document.body;
  const edge = column.getBoundingClientRect().right + 1;
  const scrolled = el => {
    for (let box = el.parentElement; box && box !== column.parentElement; box = box.parentElement) {
      const style = getComputedStyle(box).overflowX;
      if ((style === 'auto' || style === 'scroll') && box.getBoundingClientRect().right <= edge) { return true; }
    }
    return false;
  };
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      (typeof el.className === 'string' && el.className.trim() ? '.' + el.className.trim().split(/\s+/)[0] : '');
  const wide = [];
  for (const el of column.querySelectorAll('table, pre, img, svg, figure, mjx-container, .cell_output, p, li, dl')) {
    const box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > edge && !scrolled(el)) {
      wide.push(`${name(el)} ${Math.round(box.right - edge)} px past the column`);
    }
  }
  const page = document.documentElement;
  return {wide: [...new Set(wide)].slice(0, 8), sideways: page.scrollWidth > page.clientWidth + 1};
})()
"""
OVERFLOW_WIDTHS = (1280, 400)  # a laptop and a phone


def overflow_problems(browser: Chromium) -> list[str]:
    """What overflows the text column at each of :data:`OVERFLOW_WIDTHS` (the page is laid out again at each)."""
    problems = []
    try:
        for width in OVERFLOW_WIDTHS:
            browser.call("Emulation.setDeviceMetricsOverride",
                         {"width": width, "height": VIEWPORT[1], "deviceScaleFactor": 1, "mobile": False})
            browser.evaluate("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
            facts = browser.evaluate(OVERFLOW_SCRIPT)
            problems += [f"overflows its column at {width} px: {item}" for item in facts["wide"]]
            if facts["sideways"]:
                problems.append(f"scrolls sideways at {width} px")
    finally:
        browser.call("Emulation.setDeviceMetricsOverride",
                     {"width": VIEWPORT[0], "height": VIEWPORT[1], "deviceScaleFactor": 1, "mobile": False})
    return problems


@dataclass
class PageCheck:
    """What one page showed in the browser, and what is wrong with it (``problems``, empty when all is well)."""

    page: str  # path relative to the site root, e.g. "book/01_encoding.html"
    title: str = ""
    headings: list[str] = field(default_factory=list)
    n_images: int = 0
    n_math: int = 0
    n_requests: int = 0
    links: list[str] = field(default_factory=list)
    navigation: list[str] = field(default_factory=list)  # the pages the book's side navigation lists (absolute URLs)
    table_row_lines: list[int] = field(default_factory=list)  # per table of the text: lines of its tallest row
    ids: set[str] = field(default_factory=set)
    screenshots: list[Path] = field(default_factory=list)  # the page's PNG, in parts if it is very tall
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


def is_local(url: str) -> bool:
    """True for URLs that fetch nothing from a network host (relative, ``data:``, ``blob:``...) or a loopback host."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "javascript", "mailto", "chrome", "devtools"):
        return True
    if not parts.netloc:
        return True
    return parts.hostname in LOCAL_HOSTS


def request_problems(events: list[tuple[str, dict]], loader_id: str | None = None) -> tuple[int, list[str]]:
    """From the tab's Network events: the number of requests, and each request to an outside host or that failed.

    With ``loader_id``, only the requests of that navigation count (not late ones of the page before).
    """
    urls: dict[str, str] = {}
    problems = []
    for method, params in events:
        if method != "Network.requestWillBeSent" and params.get("requestId") not in urls:
            continue
        if method == "Network.requestWillBeSent":
            if loader_id and params.get("loaderId") != loader_id:
                continue
            url = params["request"]["url"]
            urls[params["requestId"]] = url
            if not is_local(url):
                problems.append(f"asks an outside host for a {params.get('type', 'resource').lower()}: {url}")
        elif method == "Network.responseReceived":
            status = params["response"]["status"]
            # The browser asks the server root for /favicon.ico by itself when a page declares no icon.
            if status >= 400 and urlsplit(params["response"]["url"]).path != "/favicon.ico":
                problems.append(f"HTTP {status} for {params['response']['url']}")
        elif method == "Network.loadingFailed":
            url = urls.get(params["requestId"], "?")
            if is_local(url) and not params.get("canceled"):
                problems.append(f"request failed ({params.get('errorText')}): {url}")
    return len(urls), problems


def check_page(browser: Chromium, base_url: str, page: str, screenshot: Path | None = None) -> PageCheck:
    """Open ``base_url + page`` and check it (title, images, math, requests); links are checked by ``check_book``."""
    started = time.perf_counter()
    result = PageCheck(page)
    url = urljoin(base_url, page)
    try:
        loader_id = browser.navigate(url)
        browser.evaluate(SETTLE_SCRIPT, timeout=90)
        browser.pump(0.3)  # late requests, e.g. fonts asked for by the typeset math
        facts = browser.evaluate(FACTS_SCRIPT)
        if screenshot is not None:
            result.screenshots = browser.screenshot(screenshot)
        overflow = overflow_problems(browser)
    except BrowserError as error:
        result.problems.append(f"could not check the page: {error}")
        return result
    result.title, result.headings = facts["title"], facts["headings"]
    result.n_images, result.n_math = len(facts["images"]), facts["math"]
    result.links, result.ids, result.navigation = facts["links"], set(facts["ids"]), facts["navigation"]
    result.table_row_lines = facts["tableRowLines"]
    problems = result.problems
    if facts["url"] != url:
        problems.append(f"opened {facts['url']} instead")
    if not result.title:
        problems.append("has no <title>")
    if not result.headings:
        problems.append("has no first-level heading")
    elif result.headings[0] not in result.title:
        problems.append(f"heading {result.headings[0]!r} is not in the title {result.title!r}")
    problems += [f"image does not load: {image['src']}" for image in facts["images"] if not image["loaded"]]
    problems += [f"figure without a caption: {src}" for src in facts["uncaptioned"]]
    if facts["math"] and not facts["mathjax"]:
        problems.append(f"has {facts['math']} math elements but MathJax did not load")
    problems += [f"math not typeset: {text!r}" for text in facts["untypeset"]]
    problems += [f"MathJax error: {text!r}" for text in facts["mathErrors"]]
    problems += [f"raw math delimiters left in the text: {text!r}" for text in facts["raw"]]
    result.n_requests, network = request_problems(browser.events, loader_id)
    problems += network + overflow
    result.seconds = time.perf_counter() - started
    return result


# --------------------------------------------------------------------------------------------------------------------
# Static reading of the HTML and CSS files

_FETCHING_LINK_RELS = {"stylesheet", "preload", "modulepreload", "prefetch", "icon", "shortcut", "apple-touch-icon",
                       "manifest", "mask-icon"}
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""")


class _FetchedURLs(HTMLParser):
    """Collects the URLs an HTML page fetches on load (not plain links), and a meta refresh target."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self.refresh: str | None = None
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "script" and values.get("src"):
            self.urls.append(values["src"])
        elif tag == "link" and set(values.get("rel", "").lower().split()) & _FETCHING_LINK_RELS:
            self.urls.append(values.get("href", ""))
        elif tag in ("img", "source", "iframe", "embed", "video", "audio", "track", "input"):
            self.urls += [values[name] for name in ("src", "poster") if values.get(name)]
            for name in ("srcset", "imagesrcset"):
                self.urls += [entry.split()[0] for entry in values.get(name, "").split(",") if entry.strip()]
        elif tag == "object" and values.get("data"):
            self.urls.append(values["data"])
        elif tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            match = re.search(r"url\s*=\s*['\"]?([^'\";]+)", values.get("content", ""), re.IGNORECASE)
            self.refresh = match.group(1).strip() if match else None
        if tag == "style":
            self._in_style = True
        if values.get("style"):
            self.urls += css_urls(values["style"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.urls += css_urls(data)


def css_urls(css: str) -> list[str]:
    """URLs in CSS ``url(...)`` and ``@import``."""
    return [a or b for a, b in _CSS_URL.findall(css)]


def read_page(path: Path) -> _FetchedURLs:
    parser = _FetchedURLs()
    parser.feed(path.read_text(errors="replace"))
    return parser


def outside_references(html_dir: Path) -> list[str]:
    """Every URL on an outside host that an HTML or CSS file of the site would fetch, as ``"file: url"``."""
    html_dir = Path(html_dir)
    found = []
    for path in sorted(html_dir.rglob("*")):
        if path.suffix == ".html":
            urls = read_page(path).urls
        elif path.suffix == ".css":
            urls = css_urls(path.read_text(errors="replace"))
        else:
            continue
        found += [f"{path.relative_to(html_dir)}: {url}" for url in urls if not is_local(url)]
    return found


# --------------------------------------------------------------------------------------------------------------------
# The whole site


def site_pages(html_dir: Path) -> tuple[list[str], dict[str, str]]:
    """The site's HTML pages (outside folders named ``_*``) in order, and its redirect stubs (page -> target)."""
    html_dir = Path(html_dir)
    pages, redirects = [], {}
    for path in sorted(html_dir.rglob("*.html")):
        relative = path.relative_to(html_dir)
        if any(part.startswith("_") for part in relative.parts[:-1]):
            continue
        target = read_page(path).refresh
        if target is not None:
            redirects[relative.as_posix()] = target
        else:
            pages.append(relative.as_posix())
    return pages, redirects


@dataclass
class BookCheck:
    pages: list[PageCheck]
    redirects: dict[str, str]
    problems: list[str]  # site-wide: outside references in files, broken links and redirects

    @property
    def all_problems(self) -> list[str]:
        return self.problems + [f"{page.page}: {problem}" for page in self.pages for problem in page.problems]

    def summary(self) -> str:
        lines = [f"{'page':40s} {'title':44s} {'img':>4s} {'math':>5s} {'req':>4s} {'s':>5s}"]
        for page in self.pages:
            lines.append(f"{page.page:40s} {page.title[:44]:44s} {page.n_images:4d} {page.n_math:5d} "
                         f"{page.n_requests:4d} {page.seconds:5.1f}")
        problems = self.all_problems
        lines.append(f"{len(problems)} problem(s)" + "".join(f"\n  - {problem}" for problem in problems))
        return "\n".join(lines)


def _target_file(html_dir: Path, path: str) -> Path:
    target = html_dir / unquote(path).lstrip("/")
    return target / "index.html" if path.endswith("/") or target.is_dir() else target


def link_problems(html_dir: Path, base_url: str, pages: list[PageCheck]) -> list[str]:
    """Internal links whose file is missing, or whose ``#fragment`` is no element id of the target page."""
    ids = {page.page: page.ids for page in pages}
    base = urlsplit(base_url)
    problems = []
    for page in pages:
        for link in sorted(set(page.links)):
            parts = urlsplit(link)
            if parts.scheme not in ("http", "https") or parts.netloc != base.netloc:
                continue  # links to other sites are not fetched by the reader's browser on load
            target = _target_file(html_dir, parts.path)
            if not target.is_file():
                problems.append(f"{page.page}: link to a missing file: {link}")
                continue
            relative = target.relative_to(html_dir).as_posix()
            if parts.fragment and relative in ids and unquote(parts.fragment) not in ids[relative]:
                problems.append(f"{page.page}: link to a missing anchor: {link}")
    return problems


def navigation_problems(pages: list[PageCheck]) -> list[str]:
    """Pages whose side navigation lists other pages than most pages do (e.g. left stale by an incremental build)."""
    lists = [tuple(sorted(page.navigation)) for page in pages if page.navigation]
    if not lists:
        return []
    usual, count = Counter(lists).most_common(1)[0]
    problems = []
    for page in pages:
        listed = set(page.navigation)
        if page.navigation and listed != set(usual):
            missing = sorted(urlsplit(url).path for url in set(usual) - listed)
            extra = sorted(urlsplit(url).path for url in listed - set(usual))
            problems.append(f"{page.page}: its navigation differs from that of {count} other pages (missing "
                            f"{missing}, extra {extra})")
    return problems


def check_book(html_dir: Path, screenshot_dir: Path | None = None, *, executable: str | None = None,
               log=print) -> BookCheck:
    """Serve ``html_dir``, open every page in headless Chromium, check it and (optionally) save its screenshot.

    Screenshots go to ``screenshot_dir/<page>.png`` (default: ``html_dir/_screenshots``).
    """
    html_dir = Path(html_dir).resolve()
    if not (html_dir / "index.html").exists():
        raise FileNotFoundError(f"html_dir={html_dir} holds no built site (index.html is missing)")
    screenshot_dir = Path(screenshot_dir) if screenshot_dir is not None else html_dir / SCREENSHOT_DIR
    pages, redirects = site_pages(html_dir)
    problems = [f"asks an outside host: {reference}" for reference in outside_references(html_dir)]
    for page, target in redirects.items():
        if not is_local(target) or not _target_file(html_dir, urlsplit(urljoin(f"/{page}", target)).path).is_file():
            problems.append(f"{page}: redirects to a missing page: {target}")
    checks = []
    with serve(html_dir) as base_url, Chromium(executable) as browser:
        for page in pages:
            check = check_page(browser, base_url, page, screenshot_dir / Path(page).with_suffix(".png"))
            log(f"[browser] {page}: {check.seconds:.1f} s, {len(check.problems)} problem(s)")
            checks.append(check)
        problems += link_problems(html_dir, base_url, checks) + navigation_problems(checks)
    return BookCheck(checks, redirects, problems)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("html_dir", type=Path, help="the built site (e.g. _build/html)")
    parser.add_argument("--screenshots", type=Path, default=None, help="folder for the PNGs (default: <html_dir>/"
                        f"{SCREENSHOT_DIR})")
    args = parser.parse_args(argv)
    report = check_book(args.html_dir, args.screenshots)
    print(report.summary())
    return 1 if report.all_problems else 0


if __name__ == "__main__":
    sys.exit(main())
