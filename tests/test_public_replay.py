"""Safe replay (issue 29, item 3): a real ``archiver serve`` with its app and replay ports, opened in
Debian's Chromium through Playwright.

- an anonymous visitor opens a published record and sees the captured text inside the replay frame,
  whose document the replay origin served (a plain capture, and the ``--browser`` capture of the JS
  page with its script-built text and its stylesheet);
- a private record and a never-issued ID give byte-identical 404s on the replay origin;
- a hostile capture (its script reads ``document.cookie``, fetches the app's API with credentials and
  assigns ``top.location``), replayed while the visitor is logged in to the app in the same browser:
  no app cookie is readable, the API answers no data, the top page stays where it was.

ReplayWeb.page comes through ``archiver.replayassets.setup`` (``tests/test_replaywebpage.replaywebpage``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from archiver.api import Archive
from archiver.capture.browser import BrowserOptions
from archiver.demo.server import SampleSite, send
from archiver.options import CaptureOptions
from tests.services import free_port
from tests.test_replaywebpage import ARGS, CACHE, CHROMIUM, replaywebpage
from tests.test_web_pages import axe_check

needs_chromium = pytest.mark.skipif(CHROMIUM is None,
                                    reason="Chromium is not installed (make test installs Debian's chromium)")
ARCHIVER = [sys.executable, "-m", "archiver.cli"]
EXPECT_PLAIN = "Even if you opt-out, we will use Inputs and"
EXPECT_JS = "This clause was built by JavaScript."
#: The hostile script's attempts on the app's API (keys of what it writes into its DOM).
API_TRIES = ("fetch", "xhr", "frame_fetch", "worker_fetch", "escaped_fetch")


def hostile_page(app: str) -> bytes:
    """A page whose script, when replayed, tries to read the app's cookies, read the app's API with the
    visitor's credentials and move the top page; it writes what it saw into its own DOM (``#out``)
    after each step, the navigation attempts last (they may replace this document)."""
    return ("""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Hostile capture</title></head>
<body><h1>Hostile capture</h1><pre id="out">pending</pre>
<script>
(function () {
  var APP = "__APP__";
  var out = {cookie: null, fetch: null, xhr: null, frame_fetch: null, worker_fetch: null, top: []};
  function show() { document.getElementById("out").textContent = "RESULT " + JSON.stringify(out); }
  try { out.cookie = document.cookie; } catch (e) { out.cookie = "error " + e.name; }
  show();
  var xhr = new XMLHttpRequest();
  try {
    xhr.open("GET", APP + "/api/v1/records", true);
    xhr.withCredentials = true;
    xhr.onload = function () {
      out.xhr = "status " + xhr.status + " body " + String(xhr.responseText).slice(0, 200); show(); };
    xhr.onerror = function () { out.xhr = "network error (status " + xhr.status + ")"; show(); };
    xhr.send();
  } catch (e) { out.xhr = "threw " + e.name; }
  function grab(key, p) {
    return p.then(function (r) { return r.text().then(function (t) {
      out[key] = "status " + r.status + " type " + r.type + " body " + t.slice(0, 200); }); })
      .catch(function (e) { out[key] = "rejected " + e; }).then(show);
  }
  // a fetch of a fresh frame (the rewriting of the replay may not reach it) and a worker's fetch
  var frameFetch;
  try {
    var f = document.createElement("iframe"); document.body.appendChild(f);
    frameFetch = grab("frame_fetch", f.contentWindow.fetch(APP + "/api/v1/records", {credentials: "include"}));
  } catch (e) { out.frame_fetch = "threw " + e.name; frameFetch = Promise.resolve(); }
  var workerDone = new Promise(function (ok) {
    try {
      var src = "fetch(" + JSON.stringify(APP + "/api/v1/records") + ", {credentials: 'include'})" +
        ".then(function (r) { return r.text().then(function (t) {" +
        " postMessage('status ' + r.status + ' type ' + r.type + ' body ' + t.slice(0, 200)); }); })" +
        ".catch(function (e) { postMessage('rejected ' + e); });";
      var w = new Worker(URL.createObjectURL(new Blob([src], {type: "text/javascript"})));
      w.onmessage = function (m) { out.worker_fetch = String(m.data); show(); ok(); };
      w.onerror = function (e) { out.worker_fetch = "worker error " + (e.message || ""); show(); ok(); };
    } catch (e) { out.worker_fetch = "threw " + e.name; ok(); }
    setTimeout(function () { if (!out.worker_fetch) { out.worker_fetch = "no answer in 8 s"; } ok(); }, 8000);
  });
  // climb out of the replay's rewriting to a window of the replay origin that ReplayWeb.page does not
  // control (the embed page) and use its fetch: a request that really goes to the app, with cookies
  var host = null, hostFetch, hostPost;
  var realParent = function (x) {  // past the replay's own `parent`: the browser's getter, then frameElement
    var d = Object.getOwnPropertyDescriptor(Window.prototype, "parent");
    var p = d && d.get ? d.get.call(x) : null;
    if ((!p || p === x) && x.frameElement) { p = x.frameElement.ownerDocument.defaultView; }
    return p;
  };
  try {
    var w = window, path = [];
    for (var i = 0; i < 6 && !host; i++) {
      var p = realParent(w);
      if (!p || p === w) { break; }
      w = p;
      path.push(String(w.location.pathname).slice(0, 30));
      if (String(w.location.pathname).indexOf("/embed/") === 0) { host = w; }
    }
    out.climb = path;
  } catch (e) { out.escape = "threw " + e.name + " " + e.message; }
  out.escape = host ? String(host.location.href) : (out.escape || "no window outside the replay");
  if (host) {
    hostFetch = grab("escaped_fetch", host.fetch(APP + "/api/v1/records", {credentials: "include"}));
    // a state change with the visitor's session: a new admin token (a simple request, no CSRF header)
    hostPost = host.fetch(APP + "/api/v1/tokens", {method: "POST", mode: "no-cors", credentials: "include",
        headers: {"Content-Type": "text/plain"}, body: JSON.stringify({name: "pwned", role: "admin"})})
      .then(function (r) { out.escaped_post = "type " + r.type + " status " + r.status; })
      .catch(function (e) { out.escaped_post = "rejected " + e; }).then(show);
  } else { out.escaped_fetch = "not tried"; out.escaped_post = "not tried"; }
  Promise.all([grab("fetch", fetch(APP + "/api/v1/records", {credentials: "include"})), frameFetch, workerDone,
               hostFetch, hostPost])
    .then(function () {
      show();
      setTimeout(function () {
        try { top.location = APP + "/hijacked-1"; out.top.push("top.location assigned"); }
        catch (e) { out.top.push("top.location threw " + e.name); }
        show();
        try { window["to" + "p"].location.href = APP + "/hijacked-2"; out.top.push("window['top'] assigned"); }
        catch (e) { out.top.push("window['top'] threw " + e.name); }
        show();
        out.top.push("done");
        show();
      }, 300);
    });
})();
</script></body></html>""").replace("__APP__", app).encode("utf-8")


@dataclass
class Deployment:
    app: str  # what the visitor types: http://localhost:<port>
    replay: str  # the replay origin: http://localhost:<port + 1>
    plain: str
    js: str
    hostile: str
    private: str
    token: str
    output: str
    root: Path


def _wait(url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {proc.stdout.read() if proc.stdout else ''}") from None
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in 30 s")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, site: SampleSite) -> Iterator[Deployment]:
    replaywebpage()  # skips when the registry cannot be reached
    port = free_port()
    replay_port = free_port()
    app = f"http://localhost:{port}"
    root = tmp_path_factory.mktemp("replay") / "store"
    a, _ = Archive.init(root, operator="Test Operator")
    a.config.set("capture.allow_private", "true")
    a.config.set("replay.cache_dir", str(CACHE))
    with SampleSite({"/attack": lambda h: send(h, 200, hostile_page(app), "text/html; charset=utf-8")}) as bad:
        plain = a.capture(site.base_url + "/plain").record_id
        js = a.capture(site.base_url + "/js-page", CaptureOptions(browser=BrowserOptions(timeout=20))).record_id
        hostile = a.capture(bad.base_url + "/attack").record_id
    private = a.capture(site.base_url + "/chunked").record_id
    a.publications.publish([plain, js, hostile], actor="test", passphrase=lambda: None)
    token = a.tokens.create("tester", "admin", actor="test").token
    # one app process: the tests count what the app answered on its /metrics, which are per process
    proc = subprocess.Popen([*ARCHIVER, "serve", "--store", str(root), "--port", str(port), "--replay-port",
                             str(replay_port), "--http-workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        _wait(f"http://127.0.0.1:{port}/healthz", proc)
        _wait(f"http://127.0.0.1:{replay_port}/", proc)
        yield Deployment(app, f"http://localhost:{replay_port}", plain, js, hostile, private, token, "", root)
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        print("archiver serve said:", out)


def _browser(pw: Any) -> Any:
    return pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)


def _find_frame(page: Any, text: str, timeout: float = 60.0) -> Any:
    """The (nested, cross-origin) frame whose body shows ``text``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for frame in page.frames:
            if frame is page.main_frame:
                continue
            try:
                if text in frame.locator("body").inner_text(timeout=500):
                    return frame
            except Exception:  # a frame that is navigating or not ready: ask again
                continue
        page.wait_for_timeout(250)
    raise AssertionError(f"{text!r} not shown in any frame of {page.url}: "
                         f"{[f.url for f in page.frames]}")


def public_page(d: Deployment, rid: str) -> str:
    """The public record page that frames the replay."""
    return f"{d.app}/r/{rid}"


def test_serve_announces_the_replay_origin_and_warns_it_is_the_same_site(deployment: Deployment) -> None:
    r = requests.get(deployment.replay + "/", timeout=10)
    assert r.status_code == 200 and "ReplayWeb.page 2.4.6" in r.text and "AGPL-3.0-or-later" in r.text
    assert "set-cookie" not in r.headers
    lic = requests.get(deployment.replay + "/replaywebpage/LICENSE", timeout=10)
    assert lic.status_code == 200 and "GNU AFFERO GENERAL PUBLIC LICENSE" in lic.text
    src = requests.get(deployment.replay + "/replaywebpage/SOURCE.json", timeout=10).json()
    assert src["version"] == "2.4.6" and src["source"].startswith("https://github.com/webrecorder/replayweb.page")
    sw = requests.get(deployment.replay + "/replay/sw.js", timeout=10)
    assert sw.status_code == 200 and sw.headers["service-worker-allowed"] == "/replay/"


@needs_chromium
@pytest.mark.parametrize("which,expect", [("plain", EXPECT_PLAIN), ("js", EXPECT_JS)])
def test_anonymous_visitor_sees_the_captured_text_inside_the_replay_frame(deployment: Deployment, which: str,
                                                                         expect: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    rid = getattr(deployment, which)
    with sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            resp = page.goto(public_page(deployment, rid))
            assert resp is not None and resp.status == 200
            assert page.context.cookies() == []  # anonymous: nothing set by either origin
            frame = _find_frame(page, expect)
            outer_frame = page.locator("iframe.replay-frame")
            outer_frame.scroll_into_view_if_needed()
            page.wait_for_timeout(1500)
            frame = _find_frame(page, expect)  # still there once the embed has settled
            assert frame.get_by_text(expect).first.is_visible()
            shots = Path(os.environ.get("ARCHIVER_SHOTS") or tmp_path)  # where to keep them (e.g. for review)
            page.screenshot(path=str(shots / f"public-replay-{which}.png"))
            # the replayed document is the replay origin's (served through its service worker), not the app's
            assert frame.url.startswith(deployment.replay + "/replay/"), frame.url
            assert page.url == public_page(deployment, rid)
            outer = page.locator("iframe").first
            assert outer.get_attribute("src") == f"{deployment.replay}/embed/{rid}"
            assert set((outer.get_attribute("sandbox") or "").split()) == {"allow-scripts", "allow-same-origin"}
            findings: dict[str, list[str]] = {}
            axe_check(page, f"public record with replay ({which})", findings)  # the frame has its title
            print("axe findings (any impact):", findings)
            if which == "js":
                style = frame.locator("body").evaluate(
                    "b => [getComputedStyle(b).backgroundColor, getComputedStyle(b.querySelector('#policy')).color]")
                assert style == ["rgb(255, 255, 204)", "rgb(0, 51, 153)"], style  # style.css was replayed
            assert page.context.cookies() == []
        finally:
            browser.close()


def test_private_and_unknown_ids_get_byte_identical_404s(deployment: Deployment) -> None:
    answers = {}
    for label, rid in (("private", deployment.private), ("unknown", "ZZZZ-ZZZZ"), ("malformed", "nope")):
        for path in (f"/w/{rid}.wacz", f"/embed/{rid}"):
            r = requests.get(deployment.replay + path, timeout=10)
            answers[f"{label} {path.split('/')[1]}"] = (r.status_code, r.content,
                                                        {k: v for k, v in r.headers.items() if k.lower() != "date"})
    assert len({json.dumps(a, sort_keys=True, default=str) for a in answers.values()}) == 1, answers
    status, body, _ = next(iter(answers.values()))
    assert status == 404 and body == b"Not found\n"
    # the public one is there, with byte ranges and CORS for the app's origin only
    r = requests.get(f"{deployment.replay}/w/{deployment.plain}.wacz", headers={"Range": "bytes=0-3",
                                                                               "Origin": deployment.app}, timeout=30)
    assert r.status_code == 206 and r.content == b"PK\x03\x04" and r.headers["content-range"].startswith("bytes 0-3/")
    assert r.headers["access-control-allow-origin"] == deployment.app
    other = requests.get(f"{deployment.replay}/w/{deployment.plain}.wacz", headers={"Range": "bytes=0-3",
                                                                                   "Origin": "https://evil.example"},
                         timeout=30)
    assert other.headers["access-control-allow-origin"] != "https://evil.example"


def _api_hits(d: Deployment) -> dict[str, int]:
    """How many times the app answered each API and record-page route, by method and status (its
    /metrics counters)."""
    text = requests.get(f"{d.app}/metrics", timeout=10).text
    hits = {}
    for line in text.splitlines():
        if line.startswith("archiver_http_requests_total{") and ('route="/api/v1/' in line or
                                                                'route="/records/' in line):
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', line))
            method, route, status = (labels[k] for k in ("method", "route", "status"))
            key = f"{method} {route} {status}"
            hits[key] = int(float(line.rsplit(" ", 1)[1]))
    return hits


def _login(page: Any, d: Deployment) -> None:
    page.goto(f"{d.app}/login")
    page.fill("#token", d.token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{d.app}/**")
    names = {c["name"]: c for c in page.context.cookies()}
    assert names["archiver_session"]["httpOnly"] is True, names


@needs_chromium
def test_hostile_capture_cannot_read_the_session_use_it_or_move_the_page(deployment: Deployment,
                                                                         tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    d = deployment
    with sync_playwright() as pw:
        browser = _browser(pw)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1000})
            page = context.new_page()
            _login(page, d)
            # a readable cookie of the same host (as any same-site page could set): proves the replay
            # frame can read this host's cookies at all, so the session's absence below means HttpOnly
            context.add_cookies([{"name": "visible_marker", "value": "1", "url": d.app}])
            app_requests: list[str] = []
            context.on("request", lambda r: app_requests.append(f"{r.method} {r.url}")
                       if r.url.startswith(d.app + "/api/") else None)
            logs: list[str] = []
            page.on("console", lambda m: logs.append(m.text))
            before = _api_hits(d)
            target = public_page(d, d.hostile)
            page.goto(target)
            frame = _find_frame(page, "RESULT")
            deadline = time.monotonic() + 30
            seen: dict[str, Any] = {}
            while time.monotonic() < deadline:
                try:
                    text = frame.locator("#out").inner_text(timeout=1000)
                except Exception:
                    break  # the frame navigated away (an attempt on `top` that landed on the frame itself)
                seen = json.loads(text.removeprefix("RESULT "))
                if all(seen.get(k) for k in API_TRIES) and "done" in seen.get("top", []):
                    break
                page.wait_for_timeout(250)
            page.wait_for_timeout(2000)  # give a navigation of the top page time to happen
            page.screenshot(path=str(tmp_path / "hostile.png"))
            after = _api_hits(d)
            print("hostile script saw:", json.dumps(seen), "\nframe url:", frame.url,
                  "\nrequests to the app's API seen by the browser:", app_requests,
                  "\nAPI requests the app answered during the attack (method route status: count):",
                  {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)},
                  "\nconsole:", logs[-15:])
            assert frame.url.startswith(d.replay + "/replay/"), frame.url
            assert page.url == target  # the top page stayed
            assert all(seen.get(k) for k in API_TRIES), seen
            cookie = str(seen["cookie"])
            assert "archiver_session" not in cookie and "archiver_login_csrf" not in cookie, seen
            for what in API_TRIES:
                assert '"records"' not in str(seen[what]) and d.plain not in str(seen[what]), seen
            assert all(not u.endswith("/hijacked-1") and not u.endswith("/hijacked-2") for u in app_requests)
            # the sandbox itself, without ReplayWeb.page's rewriting in the way: a script in the embed
            # page (the replay origin, inside the sandboxed frame) can neither move the top page nor
            # open a window
            embed = next(f for f in page.frames if f.url.startswith(f"{d.replay}/embed/"))
            tried = embed.evaluate(SANDBOX_JS, d.app)
            page.wait_for_timeout(1000)
            print("from the embed frame:", tried)
            assert tried["top"].startswith("threw"), tried
            assert tried["popup"] == "blocked", tried
            assert page.url == target
            # the state change with the session was refused (no CSRF token): no token was made
            tokens = subprocess.run([*ARCHIVER, "tokens", "list", "--json", "--store", str(d.root)], text=True,
                                    capture_output=True, check=True).stdout
            assert [t["name"] for t in json.loads(tokens)] == ["tester"], tokens
        finally:
            browser.close()


SANDBOX_JS = """(app) => {
  const out = {};
  try { top.location.href = app + "/hijacked-3"; out.top = "assigned"; } catch (e) { out.top = "threw " + e.name; }
  try { out.popup = window.open(app + "/popup") ? "opened" : "blocked"; } catch (e) { out.popup = "threw " + e.name; }
  return out;
}"""

ESCAPED_JS = """async ({app, rid}) => {
  const out = {cookie: document.cookie};
  try {
    const r = await fetch(app + "/api/v1/records", {credentials: "include"});
    out.read = "status " + r.status + " body " + (await r.text()).slice(0, 200);
  } catch (e) { out.read = "rejected " + e; }
  try {
    const r = await fetch(app + "/api/v1/tokens", {method: "POST", mode: "no-cors", credentials: "include",
      headers: {"Content-Type": "text/plain"}, body: JSON.stringify({name: "pwned", role: "admin"})});
    out.write = "type " + r.type + " status " + r.status;
  } catch (e) { out.write = "rejected " + e; }
  try {  // the record page's form, a simple form-encoded request as a <form> would send it
    const r = await fetch(app + "/records/" + rid + "/unpublish", {method: "POST", mode: "no-cors",
      credentials: "include", body: new URLSearchParams({reason: "pwned"})});
    out.form = "type " + r.type + " status " + r.status;
  } catch (e) { out.form = "rejected " + e; }
  return out;
}"""


@needs_chromium
def test_a_script_loose_on_the_replay_origin_can_neither_read_nor_use_the_session(deployment: Deployment) -> None:
    """The worst case on a laptop: a script that got past ReplayWeb.page's rewriting and runs on the
    replay origin (same site as the app: the browser sends the app's cookies there too). The session
    cookie is HttpOnly, so it cannot read it; its credentialed read of the API reaches the app but
    CORS keeps the answer from it; its state change carries the cookie but no CSRF token, so the app
    refuses it (the API's JSON route and the record page's form alike)."""
    from playwright.sync_api import sync_playwright

    d = deployment
    with sync_playwright() as pw:
        browser = _browser(pw)
        try:
            context = browser.new_context()
            page = context.new_page()
            _login(page, d)
            page.goto(d.replay + "/")
            before = _api_hits(d)
            seen = page.evaluate(ESCAPED_JS, {"app": d.app, "rid": d.hostile})
            after = _api_hits(d)
        finally:
            browser.close()
    answered = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    print("script on the replay origin saw:", seen, "\napp answered:", answered)
    assert "archiver_session" not in seen["cookie"], seen
    assert seen["read"].startswith("rejected TypeError"), seen  # CORS: the app names no other origin
    # opaque at best; the app's Cross-Origin-Resource-Policy: same-origin turns it into a network error
    assert seen["write"] in ("type opaque status 0", "rejected TypeError: Failed to fetch"), seen
    # the cookie did travel (same site): the read ran as the logged-in user, and the write was refused
    assert answered.get("GET /api/v1/records 200") == 1, answered
    assert answered.get("POST /api/v1/tokens 403") == 1, answered
    assert answered.get("POST /records/{record_id}/unpublish 403") == 1, answered
    assert Archive.open(d.root).publications.is_public(d.hostile)
    tokens = subprocess.run([*ARCHIVER, "tokens", "list", "--json", "--store", str(d.root)], text=True,
                            capture_output=True, check=True).stdout
    assert [t["name"] for t in json.loads(tokens)] == ["tester"], tokens


# ---- the parts, without a browser -----------------------------------------------------------------
def _fake_tarball(path: Path, version: str = "2.4.6") -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in (("ui.js", b"//ui"), ("sw.js", b"//sw"), ("LICENSE", b"AGPL"),
                           ("package.json", json.dumps({"version": version, "license": "AGPL-3.0-or-later"}).encode())):
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def test_setup_refuses_a_tarball_that_is_not_the_pinned_one(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    from archiver import replayassets

    _fake_tarball(tmp_path / "replaywebpage-2.4.6.tgz")  # right name, other bytes (a proxy, a mirror)
    r = cli("replay", "setup", "--cache", str(tmp_path))
    assert r.code == 1 and "not the pinned sha512-" in r.err, r.err
    assert not (tmp_path / "replaywebpage-2.4.6.tgz").exists()  # deleted, never reused
    assert not (tmp_path / "2.4.6").exists() and replayassets.installed(tmp_path) is None


def test_setup_fetches_the_pinned_release_with_npm(tmp_path: Path) -> None:
    """The real path of ``archiver replay setup`` into an empty cache: ``npm pack`` from the registry."""
    import shutil

    from archiver import replayassets
    from archiver.errors import RemoteServiceError

    if shutil.which("npm") is None:
        pytest.skip("npm is not installed (make test installs Debian's nodejs and npm)")
    try:
        assets = replayassets.setup(tmp_path / "cache")
    except RemoteServiceError as exc:
        pytest.skip(f"the npm registry cannot be reached: {exc}")
    tgz = tmp_path / "cache" / "replaywebpage-2.4.6.tgz"
    assert replayassets.integrity_of(tgz.read_bytes()) == replayassets.INTEGRITY
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["2.4.6", "replaywebpage-2.4.6.tgz"]
    meta = json.loads((Path(assets.directory) / "SOURCE.json").read_text("utf-8"))
    assert meta["version"] == "2.4.6" and meta["license"] == "AGPL-3.0-or-later"
    assert json.loads((Path(assets.directory) / "package.json").read_text("utf-8"))["name"] == "replaywebpage"
    assert replayassets.setup(tmp_path / "cache") == assets  # idempotent: nothing fetched again


def test_installed_files_are_checked_against_what_setup_unpacked(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from archiver import replayassets
    from archiver.errors import IntegrityError

    data = _fake_tarball(tmp_path / "replaywebpage-2.4.6.tgz")
    monkeypatch.setattr(replayassets, "INTEGRITY", replayassets.integrity_of(data))
    assets = replayassets.setup(tmp_path)
    assert sorted(p.name for p in Path(assets.directory).iterdir()) == sorted([*replayassets.FILES, "SOURCE.json"])
    assert assets.license == "AGPL-3.0-or-later" and assets.source.endswith("/tree/v2.4.6")
    (Path(assets.directory) / "sw.js").write_bytes(b"//changed")
    with pytest.raises(IntegrityError, match="changed since"):
        replayassets.installed(tmp_path)


@pytest.mark.parametrize("app,replay,same", [
    ("http://localhost:8000", "http://localhost:8001", True),  # ports do not separate cookies
    ("https://evidence.example.org", "https://replay.example.org", True),  # one registrable domain
    ("https://evidence.example.co.uk", "https://replay.example.co.uk", True),
    ("https://evidence.example.org", "https://example-replay.net", False),  # as Perma: another domain
    ("http://127.0.0.1:8000", "http://localhost:8001", False),
])
def test_same_site(app: str, replay: str, same: bool) -> None:
    from archiver.web.replay import same_site

    assert same_site(app, replay) is same


def test_serve_plans_the_replay_origin_and_warns_on_one_site(archive: Archive) -> None:
    from archiver.errors import UsageError
    from archiver.web.serve import plan_replay

    plan = plan_replay(archive, "127.0.0.1", 8000, 8001)
    assert plan.base == "http://localhost:8001" and "http://localhost:8000" in plan.app_origins
    assert plan.warning is not None and "laptop only" in plan.warning and "\n" not in plan.warning
    archive.config.set("web.public_url", "https://evidence.example.org")
    archive.config.set("web.replay_url", "https://replay.example.org")
    assert "laptop only" in (plan_replay(archive, "0.0.0.0", 8000, 8001).warning or "")
    archive.config.set("web.replay_url", "https://evidence-replay.example.net")
    plan = plan_replay(archive, "0.0.0.0", 8000, 8001)
    assert plan.warning is None and plan.app_origins == ("https://evidence.example.org",)
    archive.config.set("web.replay_url", "https://evidence.example.org")
    with pytest.raises(UsageError, match="the app's own origin"):
        plan_replay(archive, "0.0.0.0", 8000, 8001)


def test_page_csp_frames_the_replay_origin_only() -> None:
    from archiver.web.security import CSP, page_csp

    assert page_csp(None) == CSP and "frame-src" not in CSP
    assert page_csp("https://replay.example.net/base").endswith("; frame-src https://replay.example.net")
    with pytest.raises(ValueError):
        page_csp("https://replay.example.net; script-src *")


def test_every_state_change_made_with_a_session_needs_the_csrf_token(archive: Archive, site: SampleSite) -> None:
    """What the laptop layout relies on (the replay origin is the app's site, so the browser sends the
    session cookie along with anything a replayed script sends): every route that changes something
    refuses a session request without the session's CSRF token — walked over every non-GET route of
    the app as an admin, with plausible bodies, so a route added later without the check fails here."""
    from fastapi.testclient import TestClient

    from archiver import matters
    from archiver.web import create_app
    from archiver.web.deps import policies
    from archiver.web.security import SAFE_METHODS

    rid = archive.capture(site.base_url + "/plain").record_id
    matters.create(archive, "m1", actor="test")
    matters.add(archive, "m1", [rid], actor="test")
    token = archive.tokens.create("boss", "admin", actor="test").token
    app = create_app(archive, start_jobs=False)
    checked = []
    with TestClient(app, base_url="http://localhost") as client:
        client.get("/login")
        r = client.post("/login", data={"token": token, "csrf_token": client.cookies.get("archiver_login_csrf"),
                                        "next": "/"}, follow_redirects=False)
        assert r.status_code == 303 and client.cookies.get("archiver_session")
        before = sum(1 for _ in archive.custody.entries())  # the token login made is the last act
        for path, methods, _policy in policies(app.routes):
            for method in sorted(methods - SAFE_METHODS):
                if path == "/login":  # no session yet there: its own nonce cookie (checked in test_web_api)
                    continue
                url = path.replace("{record_id}", rid).replace("{name}", "boss").replace("{job}", "x") \
                    .replace("{matter}", "m1")
                form = {"url": site.base_url + "/plain", "reason": "x", "name": "x", "role": "viewer",
                        "declarant": "x", "sha256": "0" * 64, "record_ids": rid, "record_id": rid, "text": "x",
                        "tags": "x"}
                r = client.request(method, url, data=form)
                checked.append(f"{method} {path} {r.status_code}")
                assert r.status_code == 403, checked[-1] + " " + r.text[:200]
        assert sum(1 for _ in archive.custody.entries()) == before  # nothing done, nothing logged
    assert archive.publications.is_public(rid) is False and [t.name for t in archive.tokens.all()] == ["boss"]
    print("refused without the CSRF token:", checked)
    assert len(checked) >= 15, checked
    app.state.web.runner.shutdown(wait=True)
