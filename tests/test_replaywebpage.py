"""Our bundles in the real ReplayWeb.page: the npm package ``replaywebpage`` (fetched at test time through
``archiver.replayassets.setup``, the path ``archiver replay setup`` uses: ``npm pack`` of the pinned version,
SHA-512 checked, never vendored), served with a bundle from 127.0.0.1 and opened in Debian's Chromium
through Playwright. Skipped, with the reason, when npm, Chromium or the registry is not available.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from archiver.api import Archive
from archiver.demo.server import SampleSite
from archiver.replayassets import ReplayAssets

CHROMIUM = os.environ.get("ARCHIVER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
NPM = shutil.which("npm")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make test installs Debian's chromium)"),
    pytest.mark.skipif(NPM is None, reason="npm is not installed (make test installs Debian's nodejs and npm)"),
]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
CACHE = Path(os.environ.get("ARCHIVER_TEST_CACHE", Path.home() / ".cache" / "archiver-tests"))


def replaywebpage() -> ReplayAssets:
    """The pinned ``replaywebpage`` release, through the one fetch path ``archiver replay setup`` uses
    (``npm pack`` into a cache directory, SHA-512 checked, reused when present); skips the test when
    the registry cannot be reached."""
    from archiver.errors import RemoteServiceError, UsageError
    from archiver.replayassets import setup

    try:
        return setup(CACHE)
    except (RemoteServiceError, UsageError) as exc:
        pytest.skip(f"ReplayWeb.page could not be fetched (registry unreachable?): {exc}")


@pytest.fixture(scope="module")
def rwp() -> Path:
    """The directory holding ReplayWeb.page's ui.js and sw.js."""
    return Path(replaywebpage().directory)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with byte ranges (ReplayWeb.page reads a WACZ by ranges)."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        rng = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
        if m is None or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        start, end = int(m.group(1)), int(m.group(2) or size - 1)
        end = min(end, size - 1)
        fh = open(path, "rb")  # closed by the caller of send_head
        fh.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        self._remaining = end - start + 1
        return fh

    def copyfile(self, source, outputfile) -> None:  # type: ignore[no-untyped-def]
        remaining = getattr(self, "_remaining", None)
        if remaining is None:
            return super().copyfile(source, outputfile)
        while remaining > 0:
            chunk = source.read(min(remaining, 1 << 16))
            if not chunk:
                break
            outputfile.write(chunk)
            remaining -= len(chunk)
        self._remaining = None
        return None

    def end_headers(self) -> None:
        if not self.headers.get("Range"):
            self.send_header("Accept-Ranges", "bytes")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@pytest.fixture()
def replay_site(rwp: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    (root / "replay").mkdir(parents=True)
    shutil.copy(rwp / "ui.js", root / "ui.js")
    shutil.copy(rwp / "sw.js", root / "replay" / "sw.js")
    # the app page the embed frames (normally answered by the service worker once it controls the
    # page; served here too so a first load that races the worker gets the same app)
    (root / "replay" / "index.html").write_text(
        "<!doctype html><html><head><script src='../ui.js'></script></head>"
        "<body><replay-app-main></replay-app-main></body></html>", encoding="utf-8")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Handler(*a, directory=str(root)))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", root
    finally:
        srv.shutdown()
        srv.server_close()


def _page(root: Path, name: str, url: str) -> None:
    (root / f"{name}.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'><script src='./ui.js'></script></head><body>"
        f"<replay-web-page source='./{name}.wacz' url='{url}' replayBase='./replay/' embed='replay-with-info' "
        # useHashCheck=1 turns on ReplayWeb.page's own check of each member it reads against the
        # datapackage's sha256 (off by default; without it every listed file counts as "invalid")
        "swName='sw.js?useHashCheck=1&serveIndex=1&' noWebWorker "
        "style='display:block;width:1200px;height:900px'></replay-web-page></body></html>", encoding="utf-8")


def _open(base: str, name: str, expect: str, shots: Path) -> dict[str, str]:
    """Open the embed page; wait for ``expect`` inside the replayed page; return what the embed says
    about the bundle (its info panel text) and the replayed page's computed style facts."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            logs: list[str] = []
            page.on("console", lambda msg: logs.append(msg.text))
            page.goto(f"{base}/{name}.html")
            outer = page.frame_locator("replay-web-page iframe")
            inner = outer.frame_locator("replay-app-main wr-item replay-web-page iframe, iframe#wabac-replay, "
                                        "wr-coll-replay iframe").first
            target = inner.get_by_text(expect)
            try:
                target.wait_for(timeout=60_000)
            except Exception:
                page.screenshot(path=str(shots / f"{name}-fail.png"))
                raise AssertionError(f"{expect!r} not on screen; console: {logs[-20:]}") from None
            page.screenshot(path=str(shots / f"{name}.png"))
            facts = {"text": inner.locator("body").inner_text()}
            facts.update(inner.locator("body").evaluate(
                "b => { const img = b.querySelector('img'); const p = b.querySelector('#policy');"
                " return {background: getComputedStyle(b).backgroundColor,"
                " color: p ? getComputedStyle(p).color : '',"
                " img: img ? String(img.complete && img.naturalWidth) : ''}; }"))
            # the embed's "part of a web archive" panel: what ReplayWeb.page says about the package
            button = outer.get_by_text("This embed is part of a web archive")
            if button.count():
                button.first.click()
                drop = outer.locator("#embed-dropdown")
                drop.wait_for(state="visible", timeout=10_000)
                facts["embed_info"] = drop.inner_text()
                page.screenshot(path=str(shots / f"{name}-info.png"))
            facts["verification"] = json.dumps(page.evaluate(_VERIFICATION_JS))
            facts["logs"] = "\n".join(logs)
            return facts
        finally:
            browser.close()


# ReplayWeb.page's own record of what it checked (its IndexedDB "verification" store, same origin)
_VERIFICATION_JS = """async () => {
  const out = {};
  for (const {name} of await indexedDB.databases()) {
    const db = await new Promise((ok, ko) => { const r = indexedDB.open(name); r.onsuccess = () => ok(r.result);
                                               r.onerror = ko; });
    if (db.objectStoreNames.contains("verification")) {
      out[name] = await new Promise(ok => { const r = db.transaction("verification").objectStore("verification")
                                                      .getAll(); r.onsuccess = () => ok(r.result); });
    }
    db.close();
  }
  return out;
}"""


def _bundle(cli, archive: Archive, url: str, dest: Path, *extra: str) -> str:  # type: ignore[no-untyped-def]
    r = cli("capture", url, *extra, "--json", "--store", str(archive.root))
    assert r.code == 0, r.err
    rid = json.loads(r.out)["record_id"]
    r = cli("export", rid, "-o", str(dest), "--store", str(archive.root))
    assert r.code == 0, r.err
    return rid


def test_plain_capture_replays_in_replaywebpage(archive: Archive, site: SampleSite, replay_site, cli,  # type: ignore[no-untyped-def]
                                                tmp_path: Path) -> None:
    base, root = replay_site
    url = site.base_url + "/plain"
    _bundle(cli, archive, url, root / "plain.wacz")
    _page(root, "plain", url)
    facts = _open(base, "plain", "Privacy Policy", tmp_path)
    print("ReplayWeb.page embed info (plain):", json.dumps({k: v for k, v in facts.items() if k != "logs"}))
    assert "Archived Page Not Found" not in facts["text"]
    _signature_shown_valid(facts, root / "plain.wacz")


def test_browser_capture_with_css_and_image_replays(archive: Archive, site: SampleSite, replay_site, cli,  # type: ignore[no-untyped-def]
                                                     tmp_path: Path) -> None:
    base, root = replay_site
    url = site.base_url + "/js-page"
    _bundle(cli, archive, url, root / "js.wacz", "--browser", "--page-timeout", "20")
    _page(root, "js", url)
    facts = _open(base, "js", "This clause was built by JavaScript.", tmp_path)
    print("ReplayWeb.page embed info (browser):", json.dumps({k: v for k, v in facts.items() if k != "logs"}))
    assert facts["background"] == "rgb(255, 255, 204)", facts  # style.css (stored gzip) was replayed
    assert facts["color"] == "rgb(0, 51, 153)", facts
    assert facts["img"] == "40", facts  # logo.png decoded: 40 px wide
    _signature_shown_valid(facts, root / "js.wacz")


def _signature_shown_valid(facts: dict[str, str], bundle: Path) -> None:
    """The embed's panel names our P-384 key as the observer and reports every hash it checked as
    verified (datapackage.json, pages.jsonl and the signature), none invalid; its database agrees."""
    import zipfile

    with zipfile.ZipFile(bundle) as zf:
        signed = json.loads(zf.read("datapackage-digest.json"))["signedData"]
    info = facts.get("embed_info", "")
    assert "Observer Public Key:\n\n" + signed["publicKey"] in info, info
    assert "Created With:\n\narchiver" in info, info
    m = re.search(r"Validation:\n\n(\d+) hashes verified(.*)\n", info)
    assert m is not None and int(m.group(1)) >= 3 and "invalid" not in m.group(2), info
    assert f"Package Hash:\n\n{signed['hash']}" in info, info
    entries = {e["id"]: e for db in json.loads(facts["verification"]).values() for e in db}
    assert entries["signature"] == {"id": "signature", "expected": True, "matched": True}, entries
    assert entries["defaultdatapackage.json"]["matched"] is True, entries
    assert entries["defaultpages/pages.jsonl"]["matched"] is True, entries
