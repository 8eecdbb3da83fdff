"""The rendered book in a real browser: every page of the smoke build, in headless Chromium.

The pages are served from 127.0.0.1 and every request to any other host is blocked (and
reported).  A page fails when it

* requests anything off this machine (a CDN, a web font, an analytics beacon, ...);
* leaves math as raw TeX: a math element that MathJax did not typeset, or ``\\(``,
  ``\\[`` or ``\\begin{`` in the text outside code;
* shows an image that did not load, or a local file that answered with an error;
* shows a figure (a cell's output image) at less than 84% of its natural width at desktop
  width, so that its smallest text (7 pt, tests/test_figures_legible.py) reads below 9 CSS px;
* has a cell output that is a bare number (``0``, ``0.25``, ``np.float64(0.25)``), an
  object repr (``<Figure size 640x480 with 1 Axes>``, ``<... at 0x7f...>``) or a traceback;
* logs an error to the console (an exception, ``console.error``, a failed resource);
* has an in-page explorer (book/_static/explorers.js) that does not draw, whose drawing and
  printed statistic do not change when a control moves (by a script and by the keyboard), or
  whose Reset does not restore the control; or self-check questions that do not answer (the
  right option or number marked right, a wrong option marked wrong).

Pages with explorers, questions or cell outputs are checked again at phone width (390 px), where
nothing may be wider than the screen and every figure the column shrinks links to its image at
full size (book/_static/figures.js).

Chromium is driven over the Chrome DevTools Protocol (a websocket, ``websocket-client``);
no browser is downloaded.  Without Chromium the test is skipped (``apt-get install
chromium``); in CI (``CI=true``), where .ci/run installs it, a missing Chromium fails.

Run it on any built site, with screenshots, without pytest:
``python tests/test_browser.py _build/html --screenshots /tmp/shots``.
"""
from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
GET_CHROMIUM = ("no Chromium found: install Debian's chromium (`apt-get install chromium`, "
                "as root) or set CHROMIUM=/path/to/chromium; .ci/run installs it")
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
PAGE_TIMEOUT = 60.0  # seconds for one page to load, typeset and be checked

# What runs in the page once it has loaded: wait for MathJax and the images, then collect
# what the checks need.  Returns a JSON string.
PAGE_PROBE = r"""
(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    try { await MathJax.startup.promise; } catch (e) {}
  }
  for (const img of document.images) { if (img.loading === 'lazy') img.loading = 'eager'; }
  await Promise.all(Array.from(document.images).map(img => img.complete ? null :
    new Promise(r => { img.addEventListener('load', r); img.addEventListener('error', r); })));
  await sleep(50);
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const texts = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.parentElement.closest(skip)) texts.push(n.textContent);
  }
  const math = Array.from(document.querySelectorAll('.math'));
  const raw = math.filter(el => !el.querySelector('mjx-container'))
                  .map(el => el.textContent.trim().slice(0, 60));
  const outputs = [];
  for (const out of document.querySelectorAll('.cell_output .output')) {
    if (out.closest('.cell_input')) continue;
    outputs.push({cls: out.className, text: out.innerText || out.textContent || ''});
  }
  return JSON.stringify({
    mathjax: !!(window.MathJax && MathJax.version),
    math: math.length,
    typeset: document.querySelectorAll('mjx-container').length,
    raw_math: raw,
    text: texts.join(' '),
    broken_images: Array.from(document.images)
      .filter(img => !(img.complete && img.naturalWidth > 0))
      .map(img => img.getAttribute('src')),
    figures: Array.from(document.querySelectorAll('.cell_output img'))
      .filter(img => img.complete && img.naturalWidth > 0)
      .map(img => ({src: img.getAttribute('src'), shown: img.clientWidth, natural: img.naturalWidth,
                    linked: !!img.closest('a') && img.closest('a').getAttribute('href') === img.getAttribute('src')})),
    tracebacks: document.querySelectorAll('.cell_output .traceback, .cell_output .output.error').length,
    interactive: document.querySelectorAll('.mc-explorer, .mc-quiz').length,
    outputs: outputs,
  });
})()
"""

# What runs once the page is checked, where it has explorers or questions: drive each one.
# Returns a JSON string: a list of problems, and how many explorers and questions it tried.
INTERACT_PROBE = r"""
(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const problems = [];
  const until = async (test, ms) => { const end = Date.now() + ms; while (!test() && Date.now() < end) await sleep(25); return test(); };
  const explorers = Array.from(document.querySelectorAll('.mc-explorer'));
  for (const el of explorers) {
    const kind = el.dataset.kind;
    if (!el.querySelector('canvas')) { problems.push(`explorer ${kind}: never started (no canvas)`); continue; }
    if (!await until(() => el.dataset.state === 'done', 20000)) { problems.push(`explorer ${kind}: did not reach its last generation`); continue; }
    const canvas = el.querySelector('canvas'), stat = el.querySelector('.mc-ex-stat');
    if (canvas.width < 100 || canvas.height < 100) problems.push(`explorer ${kind}: canvas ${canvas.width}x${canvas.height}`);
    const before = [canvas.toDataURL(), stat.textContent];
    const slider = el.querySelector('input[type=range][name=M]') || el.querySelector('input[type=range]');
    const spec = JSON.parse(el.dataset.params).controls.find(c => c.name === slider.name);
    const start = String(spec.values ? spec.values.indexOf(spec.value) : spec.value);
    slider.value = String(+slider.value === +slider.min ? +slider.max : +slider.min);
    slider.dispatchEvent(new Event('input', {bubbles: true}));
    if (!await until(() => el.dataset.state === 'done', 20000)) { problems.push(`explorer ${kind}: did not finish after a control moved`); continue; }
    if (canvas.toDataURL() === before[0]) problems.push(`explorer ${kind}: the drawing did not change when ${slider.name} moved`);
    if (stat.textContent === before[1]) problems.push(`explorer ${kind}: the statistic did not change when ${slider.name} moved`);
    el.querySelector('.mc-ex-reset').click();
    if (slider.value !== start) problems.push(`explorer ${kind}: Reset left ${slider.name} at ${slider.value}, not ${start}`);
    await until(() => el.dataset.state === 'done', 20000);
    if (document.documentElement.clientWidth < 500) {
      const r = el.getBoundingClientRect();
      if (r.right > document.documentElement.clientWidth + 1) problems.push(`explorer ${kind}: ${Math.round(r.width)} px wide on a phone`);
    }
  }
  const quizzes = Array.from(document.querySelectorAll('.mc-quiz'));
  let questions = 0;
  for (const el of quizzes) {
    if (el.dataset.ready !== 'true') { problems.push('self-check questions were not built'); continue; }
    const data = JSON.parse(el.dataset.quiz);
    const forms = el.querySelectorAll('form.mc-quiz-q');
    data.forEach((q, i) => {
      const form = forms[i], feedback = form.querySelector('.mc-quiz-feedback');
      questions += 1;
      const submit = () => form.querySelector('button[type=submit]').click();
      if (q.type === 'number') {
        form.querySelector('input').value = q.shown;
        submit();
        if (form.dataset.answered !== 'right') problems.push(`question ${i + 1}: the right number ${q.shown} was not accepted`);
        form.querySelector('input').value = String(q.answer * 3 + 1);
        submit();
        if (form.dataset.answered !== 'wrong') problems.push(`question ${i + 1}: a wrong number was accepted`);
      } else {
        const radios = form.querySelectorAll('input[type=radio]');
        const wrong = q.options.findIndex(o => !o.correct), right = q.options.findIndex(o => o.correct);
        radios[wrong].checked = true; submit();
        if (form.dataset.answered !== 'wrong' || !feedback.textContent.trim()) problems.push(`question ${i + 1}: a wrong option was not marked wrong`);
        radios[right].checked = true; submit();
        if (form.dataset.answered !== 'right') problems.push(`question ${i + 1}: the right option was not marked right`);
      }
    });
  }
  if (document.documentElement.scrollWidth > document.documentElement.clientWidth + 1) {
    problems.push(`the page is ${document.documentElement.scrollWidth} px wide in a ${document.documentElement.clientWidth} px window`);
  }
  const first = explorers[0] || quizzes[0];
  if (first) first.scrollIntoView();
  await sleep(100);
  return JSON.stringify({problems, explorers: explorers.length, questions});
})()
"""
PHONE = dict(width=390, height=844, deviceScaleFactor=2, mobile=True)

# A figure is legible at desktop width when its smallest text renders at 9 CSS px or more.  The
# figures' text is 7 pt or more (tests/test_figures_legible.py) and the inline backend renders
# PNGs at figure.dpi = 110 px per inch (no retina), so 7 pt is 7 x 110/72 = 10.7 image px, and
# the page shows it at 10.7 x clientWidth/naturalWidth CSS px: 7 x 110/72 x 0.84 = 8.98, i.e. 9,
# needs the image shown at 84% of its natural width or more (a figure at most ~800 px, 7.25 in,
# wide in the 672 px column at a 1280 px window).
MIN_FIGURE_SCALE = 0.84
#: pages whose figures are not held to the scale (none: every chapter draws at most 7 in wide)
FIGURE_SCALE_EXEMPT: set = set()


def small_figures(page: dict, rel: str, phone: bool = False) -> list[str]:
    """The figures of ``page`` (the probe's result) shown below :data:`MIN_FIGURE_SCALE` of their
    natural width: at a 1280 px window; on a phone, which shrinks every figure, those that do not
    link to their own image at full size (book/_static/figures.js)."""
    if phone:
        return [f"figure {f['src']} is shrunk to {f['shown']} of its {f['natural']} px on a phone "
                f"and does not link to its full size"
                for f in page.get("figures", [])
                if f["shown"] < MIN_FIGURE_SCALE * f["natural"] and not f.get("linked")]
    if rel in FIGURE_SCALE_EXEMPT:
        return []
    return [f"figure {f['src']} is shown at {f['shown']} of its {f['natural']} px "
            f"({f['shown'] / f['natural']:.0%} < {MIN_FIGURE_SCALE:.0%}): its 7-pt text reads "
            f"below 9 CSS px"
            for f in page.get("figures", []) if f["shown"] < MIN_FIGURE_SCALE * f["natural"]]


# TeX that MathJax never saw: its delimiters, or a command inside $...$ that MyST did not parse
RAW_TEX = re.compile(r"\\\(|\\\[|\\begin\{|\$\$|\$[^$]{0,80}?\\[A-Za-z]{2,}"
                     r"|\$[^$\s][^$]{0,80}?[\^_][^$]{0,80}?\$")
_NUMBER = r"[-+]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"


def bare_number(text: str) -> bool:
    """``0``, ``-1.5e-3``, ``np.float64(0.25)``, ``tensor(3.)``, ``(0.1, 0.2)``: plumbing."""
    t = text.strip()
    if not t or "\n" in t:
        return False
    scalar = rf"(?:(?:np\.|numpy\.)?[A-Za-z_]*\d*\(\s*(?:{_NUMBER})\s*\)|{_NUMBER})"
    return bool(re.fullmatch(rf"{scalar}|\(\s*{scalar}(?:\s*,\s*{scalar})*\s*,?\s*\)"
                             rf"|\[\s*{scalar}(?:\s*,\s*{scalar})*\s*\]", t))


def object_repr(text: str) -> bool:
    """``<Figure size 640x480 with 1 Axes>``, ``<matplotlib.lines.Line2D at 0x7f...>``."""
    t = text.strip()
    return bool(re.fullmatch(r"(\[?<[^<>\n]+ at 0x[0-9a-f]+>(,\s*<[^<>\n]+ at 0x[0-9a-f]+>)*\]?"
                             r"|<Figure size [^<>\n]+>)(\s*<Figure size [^<>\n]+>)*", t))


def find_chromium() -> str | None:
    named = os.environ.get("CHROMIUM")
    if named:
        return named if Path(named).exists() else shutil.which(named)
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


# ----------------------------------------------------------------------------- serving
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextmanager
def serve(directory: Path):
    """The built site on http://127.0.0.1:PORT/ for the duration of the block."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# ----------------------------------------------------------------------------- CDP
class CDP:
    """A minimal Chrome DevTools Protocol client on one page session (flattened)."""

    def __init__(self, ws_url: str):
        import websocket  # websocket-client

        self.ws = websocket.create_connection(ws_url, timeout=PAGE_TIMEOUT, suppress_origin=True,
                                              enable_multithread=False)
        self.ids = 0
        self.session: str | None = None
        self.reset()

    def reset(self):
        self.loaded = False
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.console: list[str] = []

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass

    def _post(self, method: str, params: dict, session: bool = True) -> int:
        self.ids += 1
        msg = {"id": self.ids, "method": method, "params": params}
        if session and self.session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        return self.ids

    def call(self, method: str, timeout: float = PAGE_TIMEOUT, session: bool = True, **params):
        wanted = self._post(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._recv(deadline)
            if msg is None:
                raise TimeoutError(f"{method}: no reply within {timeout:.0f} s")
            if msg.get("id") == wanted:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def pump(self, until, timeout: float):
        """Handle events until ``until()`` is true or ``timeout`` passes; return until()."""
        deadline = time.monotonic() + timeout
        while not until():
            if self._recv(deadline) is None:
                break
        return until()

    def _recv(self, deadline: float):
        import websocket

        left = deadline - time.monotonic()
        if left <= 0:
            return None
        self.ws.settimeout(left)
        try:
            msg = json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            return None
        if "method" in msg:
            self._event(msg["method"], msg.get("params", {}))
        return msg

    def _event(self, method: str, p: dict):
        if method == "Fetch.requestPaused":
            url = p["request"]["url"]
            if urlsplit(url).hostname in LOCAL_HOSTS:
                self._post("Fetch.continueRequest", {"requestId": p["requestId"]})
            else:
                self.blocked.append(url)
                self._post("Fetch.failRequest", {"requestId": p["requestId"],
                                                 "errorReason": "BlockedByClient"})
        elif method == "Page.loadEventFired":
            self.loaded = True
        elif method == "Network.responseReceived":
            r = p["response"]
            if r.get("status", 200) >= 400 and not r["url"].endswith("/favicon.ico"):
                self.failed.append(f"{r['url']} answered {r['status']}")
        elif method == "Network.loadingFailed":
            if p.get("errorText") and p.get("blockedReason") is None \
                    and "ERR_BLOCKED_BY_CLIENT" not in p.get("errorText", "") \
                    and not p.get("canceled"):
                self.failed.append(f"request {p['requestId']} failed: {p['errorText']}")
        elif method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            text = (d.get("exception") or {}).get("description") or d.get("text", "")
            self.console.append(f"uncaught {text.splitlines()[0] if text else 'exception'}"
                                f" ({d.get('url', '')}:{d.get('lineNumber', '?')})")
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
            self.console.append(f"console.{p['type']}: {args[:200]}")
        elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
            e = p["entry"]
            if "ERR_BLOCKED_BY_CLIENT" in e.get("text", "") or e.get("url", "") in self.blocked:
                return  # reported as a request off the machine
            if e.get("url", "").endswith("/favicon.ico"):
                return
            self.console.append(f"{e.get('source', 'log')}: {e.get('text', '')[:200]} {e.get('url', '')}".strip())


@contextmanager
def chromium(executable: str):
    """Headless Chromium with a page session ready: yields a :class:`CDP`."""
    profile = tempfile.mkdtemp(prefix="book-chromium-")
    cmd = [executable, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
           "--disable-dev-shm-usage",
           "--disable-component-update", "--disable-sync", "--disable-extensions",
           "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
           # nothing leaves the machine even if a request slipped past the Fetch hook
           "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
           "--window-size=1280,900", "--remote-debugging-port=0", f"--user-data-dir={profile}",
           "about:blank"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cdp = None
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.poll() is not None else ""
                raise RuntimeError(f"Chromium did not start ({executable}): {err}")
            time.sleep(0.1)
        port, path = port_file.read_text().splitlines()[:2]
        cdp = CDP(f"ws://127.0.0.1:{port}{path}")
        target = cdp.call("Target.createTarget", session=False, url="about:blank")["targetId"]
        cdp.session = cdp.call("Target.attachToTarget", session=False, targetId=target,
                               flatten=True)["sessionId"]
        for method in ("Page.enable", "Runtime.enable", "Log.enable", "Network.enable"):
            cdp.call(method)
        cdp.call("Network.setCacheDisabled", cacheDisabled=True)
        cdp.call("Fetch.enable", patterns=[{"urlPattern": "*"}])
        yield cdp
    finally:
        if cdp is not None:
            cdp.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


# ----------------------------------------------------------------------------- checks
def press_key(cdp: CDP, key: str, code: int) -> None:
    for kind in ("keyDown", "keyUp"):
        cdp.call("Input.dispatchKeyEvent", type=kind, key=key, code=key,
                 windowsVirtualKeyCode=code, nativeVirtualKeyCode=code)


def keyboard_problems(cdp: CDP) -> list[str]:
    """The first explorer's first slider moves with the arrow keys and redraws."""
    value = ("(() => { const el = document.querySelector('.mc-explorer input[type=range]');"
             " return el ? el.value + '|' + document.querySelector('.mc-explorer .mc-ex-stat').textContent : ''; })()")
    focus = "(() => { const el = document.querySelector('.mc-explorer input[type=range]'); el.focus(); return document.activeElement === el; })()"
    before = cdp.call("Runtime.evaluate", expression=value, returnByValue=True)["result"].get("value", "")
    if not before:
        return []
    if not cdp.call("Runtime.evaluate", expression=focus, returnByValue=True)["result"].get("value"):
        return ["the explorer's slider takes no keyboard focus"]
    start = before.split("|")[0]
    cdp.call("Runtime.evaluate", expression="(() => { const el = document.querySelector('.mc-explorer input[type=range]');"
             " if (+el.value === +el.max) { el.value = el.min; } })()")
    press_key(cdp, "ArrowRight", 39)
    cdp.pump(lambda: False, 0.6)
    after = cdp.call("Runtime.evaluate", expression=value, returnByValue=True)["result"].get("value", "")
    if after.split("|")[0] in (start, "") or after.split("|")[1] == before.split("|")[1]:
        return [f"the arrow key did not move the explorer's slider or its statistic ({before[:40]!r})"]
    return []


def check_page(cdp: CDP, url: str, screenshot: Path | None = None, phone: bool = False) -> list[str]:
    """Open ``url`` and return what is wrong with it (an empty list when nothing is); ``phone``
    opens it at 390 px."""
    cdp.reset()
    if phone:
        cdp.call("Emulation.setDeviceMetricsOverride", **PHONE)
    else:
        cdp.call("Emulation.clearDeviceMetricsOverride")
    cdp.call("Page.navigate", url=url)
    if not cdp.pump(lambda: cdp.loaded, PAGE_TIMEOUT):
        return [f"did not finish loading within {PAGE_TIMEOUT:.0f} s"]
    result = cdp.call("Runtime.evaluate", expression=PAGE_PROBE, awaitPromise=True,
                      returnByValue=True)
    if "exceptionDetails" in result:
        return [f"the page probe failed: {result['exceptionDetails'].get('text')}"]
    page = json.loads(result["result"]["value"])
    cdp.pump(lambda: False, 0.3)  # late console messages and requests
    if screenshot is not None:
        shot = cdp.call("Page.captureScreenshot", format="png")
        screenshot.write_bytes(base64.b64decode(shot["data"]))

    problems = []
    if page["interactive"]:
        problems += keyboard_problems(cdp)
        done = cdp.call("Runtime.evaluate", expression=INTERACT_PROBE, awaitPromise=True,
                        returnByValue=True, timeout=PAGE_TIMEOUT * 2)
        if "exceptionDetails" in done:
            problems.append(f"the explorer probe failed: {done['exceptionDetails'].get('text')}")
        else:
            problems += json.loads(done["result"]["value"])["problems"]
        cdp.pump(lambda: False, 0.3)
        if screenshot is not None:
            shot = cdp.call("Page.captureScreenshot", format="png")
            screenshot.with_name(screenshot.stem + "_widgets.png").write_bytes(base64.b64decode(shot["data"]))
    for u in dict.fromkeys(cdp.blocked):
        problems.append(f"requests a resource off this machine: {u}")
    if page["math"] and not page["mathjax"]:
        problems.append(f"MathJax did not load: {page['math']} formulas left as raw TeX")
    elif page["raw_math"]:
        problems.append(f"{len(page['raw_math'])} of {page['math']} formulas not typeset, "
                        f"e.g. {page['raw_math'][0]!r}")
    text = " ".join(page["text"].split())
    raw_tex = RAW_TEX.search(text)
    if raw_tex:
        at = raw_tex.start()
        problems.append(f"raw TeX in the text: ...{text[max(0, at - 30):at + 50]}...")
    for src in page["broken_images"]:
        problems.append(f"image did not load: {src}")
    problems += small_figures(page, urlsplit(url).path.lstrip("/"), phone)
    for f in dict.fromkeys(cdp.failed):
        problems.append(f"failed to load: {f}")
    if page["tracebacks"]:
        problems.append(f"{page['tracebacks']} cell output(s) show a traceback")
    numbers = [o["text"].strip() for o in page["outputs"] if bare_number(o["text"])]
    if numbers:
        shown = ", ".join(repr(n[:40]) for n in numbers[:6]) + (", ..." if len(numbers) > 6 else "")
        problems.append(f"{len(numbers)} cell output(s) are a bare number: {shown}")
    reprs = [o["text"].strip() for o in page["outputs"] if object_repr(o["text"])]
    if reprs:
        problems.append(f"{len(reprs)} cell output(s) are an object repr, e.g. {reprs[0][:60]!r}")
    tb = [o for o in page["outputs"] if "Traceback (most recent call last)" in o["text"]]
    if tb and not page["tracebacks"]:
        problems.append(f"{len(tb)} cell output(s) show a traceback")
    for c in dict.fromkeys(cdp.console):
        problems.append(f"console error: {c}")
    return problems


def site_pages(html: Path) -> list[Path]:
    """Every content page of the built site (not search, genindex, redirects or Sphinx's helpers)."""
    skip = {"search.html", "genindex.html", "py-modindex.html"}
    pages = (p for p in html.rglob("*.html")
             if p.name not in skip and not any(part.startswith("_") for part in p.relative_to(html).parts))
    # index.html only redirects to the first chapter
    return sorted(p for p in pages if 'http-equiv="refresh"' not in p.read_text()[:2000].lower())


def check_site(html: Path, executable: str, screenshots: Path | None = None) -> dict[str, list[str]]:
    """{page: problems} for every page of the site at ``html``."""
    report = {}
    with serve(html) as base, chromium(executable) as cdp:
        for page in site_pages(html):
            rel = page.relative_to(html).as_posix()
            shot = None
            if screenshots is not None:
                screenshots.mkdir(parents=True, exist_ok=True)
                shot = screenshots / (rel.replace("/", "_").removesuffix(".html") + ".png")
            try:
                report[rel] = check_page(cdp, base + rel, shot)
                html_text = page.read_text()
                if any(k in html_text for k in ("mc-explorer", "mc-quiz", "cell_output")):
                    phone_shot = shot.with_name(shot.stem + "_phone.png") if shot else None
                    report[rel] += [f"at 390 px: {p}" for p in
                                    check_page(cdp, base + rel, phone_shot, phone=True)]
            except (TimeoutError, RuntimeError) as e:
                report[rel] = [f"could not be checked: {e}"]
    return report


def widget_pages(html: Path) -> dict[str, int]:
    """{page: number of explorers} of every page with in-page explorers or questions."""
    out = {}
    for page in site_pages(html):
        text = page.read_text()
        if "mc-explorer" in text or "mc-quiz" in text:
            out[page.relative_to(html).as_posix()] = text.count('class="mc-explorer"')
    return out


def format_report(report: dict[str, list[str]]) -> str:
    bad = {page: problems for page, problems in report.items() if problems}
    lines = [f"{len(bad)} of {len(report)} pages fail the browser checks:"]
    for page, problems in bad.items():
        lines.append(f"  {page}:")
        lines.extend(f"    - {p}" for p in problems)
    return "\n".join(lines)


# ----------------------------------------------------------------------------- tests
def test_the_detectors():
    for text in (r"let \(x\) be", r"\[ x \]", r"\begin{align}", r"$W_2^2\big(\N(0, 1)$", "$$x$$",
                 "the $L^2$ metric", "$x_i$"):
        assert RAW_TEX.search(text), text
    for text in ("costs $5 or $7", "plain text", r"C:\b", "x = 1", "snake_case and x^2"):
        assert not RAW_TEX.search(text), text
    for text in ("0", " 0.25\n", "-1.5e-03", "np.float64(0.9155)", "np.int64(3)", "tensor(3.)",
                 "(0.1, 0.2)", "[1, 2, 3]", "nan"):
        assert bare_number(text), text
    for text in ("generation 0: 0.25", "0.25 0.5\n0.1", "Fit 3 models", "", "M = 100"):
        assert not bare_number(text), text
    assert object_repr("<Figure size 640x480 with 1 Axes>")
    assert object_repr("[<matplotlib.lines.Line2D at 0x7f3a2c1d0>]")
    assert not object_repr("<b>bold</b>")
    page = {"figures": [{"src": "a.png", "shown": 672, "natural": 1155},
                        {"src": "b.png", "shown": 672, "natural": 800},
                        {"src": "c.png", "shown": 500, "natural": 500}]}
    assert [p.split()[1] for p in small_figures(page, "book/gmm.html")] == ["a.png"]
    assert [p.split()[1] for p in small_figures(page, "book/gmm.html", phone=True)] == ["a.png"]
    for f in page["figures"]:
        f["linked"] = True
    assert not small_figures(page, "book/gmm.html", phone=True)
    assert 7 * 110 / 72 * MIN_FIGURE_SCALE >= 8.98   # 7 pt at 110 dpi, shown at 84%: 9 CSS px


def test_every_page_in_a_real_browser(smoke_book):
    executable = find_chromium()
    if executable is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(GET_CHROMIUM)
        pytest.skip(GET_CHROMIUM)
    pytest.importorskip("websocket", reason="websocket-client is missing: "
                        "`.venv/bin/pip install -r requirements.txt`")
    pages = site_pages(smoke_book.html) if smoke_book.html.is_dir() else []
    assert pages, ("the smoke build produced no pages (see test_book_builds_without_warnings_at_"
                   "smoke):\n" + smoke_book.log[-3000:])
    report = check_site(smoke_book.html, executable)
    if any(report.values()):
        pytest.fail(format_report(report), pytrace=False)
    # every chapter asks its questions, and the toy chapters and the intro have explorers
    found = widget_pages(smoke_book.html)
    chapters = ("intro", "discrete", "gaussian", "gmm", "vae", "lm", "beyond", "curation", "definitions")
    assert {f"book/{c}.html" for c in chapters} <= set(found), sorted(found)
    assert all(found[f"book/{c}.html"] >= 1 for c in ("intro", "discrete", "gaussian", "definitions")), found


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="check a built book in headless Chromium")
    parser.add_argument("html", type=Path, help="the built site, e.g. _build/html")
    parser.add_argument("--screenshots", type=Path, default=None, help="save a PNG per page here")
    args = parser.parse_args()
    exe = find_chromium()
    if exe is None:
        sys.exit(GET_CHROMIUM)
    rep = check_site(args.html, exe, args.screenshots)
    print(format_report(rep) if any(rep.values()) else f"all {len(rep)} pages pass")
    sys.exit(1 if any(rep.values()) else 0)
