"""Browser capture with Debian's Chromium through Playwright (skipped, with the reason, without it)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
import requests
from warcio.archiveiterator import ArchiveIterator

from archiver.api import Archive
from archiver.capture.browser import BrowserOptions, BrowserSession
from archiver.demo.server import SampleSite
from archiver.options import CaptureOptions
from archiver.records import Status

from .conftest import APP_JS, JS_PAGE, LOGO, STYLE, store_snapshot, warcio_bin

CHROMIUM = os.environ.get("ARCHIVER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make test installs "
                                                         "Debian's chromium package)")
FAST = BrowserOptions(timeout=20)


def _warc_records(archive: Archive, rid: str, tmp: Path) -> list[tuple[str, str, bytes]]:
    warc = tmp / f"{rid}.warc.gz"
    archive.get(rid, "warc", warc)
    out = []
    with open(warc, "rb") as fh:
        for rec in ArchiveIterator(fh):
            out.append((rec.rec_type, rec.rec_headers.get_header("WARC-Target-URI") or "", rec.content_stream().read()))
    return out


def test_js_page_with_css_and_image(archive: Archive, site: SampleSite, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("capture", site.base_url + "/js-page", "--browser", "--page-timeout", "20", "--json",
            "--store", str(archive.root))
    assert r.code == 0, r.err
    m = archive.manifest(json.loads(r.out)["record_id"])
    assert {a.name for a in m.artifacts} >= {"warc", "content", "text", "screenshot", "pdf", "dom"}
    text = archive.blobs.read_bytes(archive.artifact_sha256(m.record_id, "text")).decode()
    assert "This clause was built by JavaScript." in text and "Loading" not in text
    b = m.capture.browser
    assert b is not None and b.name == "chromium" and b.wait == "networkidle" and b.viewport == "1440x900"
    assert b.resources == 3 and not b.partial and "HeadlessChrome" in b.user_agent
    responses = {uri: body for kind, uri, body in _warc_records(archive, m.record_id, tmp_path) if kind == "response"}
    base = site.base_url
    assert responses[base + "/js-page"] == JS_PAGE and responses[base + "/app.js"] == APP_JS
    assert responses[base + "/logo.png"] == LOGO
    assert base + "/style.css" in responses  # stored as received (gzip), decoded for the browser
    import gzip

    assert gzip.decompress(_raw_payload(archive, m.record_id, base + "/style.css", tmp_path)) == STYLE
    records = _warc_records(archive, m.record_id, tmp_path)
    assert [uri for kind, uri, _ in records if kind == "conversion"] == [base + "/js-page"]
    kinds = {(kind, uri.split(":", 1)[0] if uri.startswith("urn:") else "") for kind, uri, _ in records}
    assert ("resource", "urn") in kinds
    warc = tmp_path / "check.warc.gz"
    archive.get(m.record_id, "warc", warc)
    chk = subprocess.run([warcio_bin(), "check", "-v", str(warc)], capture_output=True, text=True, check=False)
    assert chk.returncode == 0 and "failed" not in chk.stdout.lower(), chk.stdout
    shot = tmp_path / "shot.png"
    assert cli("get", m.record_id, "screenshot", "-o", str(shot), "--store", str(archive.root)).code == 0
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    pdf = tmp_path / "page.pdf"
    assert cli("get", m.record_id, "pdf", "-o", str(pdf), "--store", str(archive.root)).code == 0
    assert pdf.read_bytes().startswith(b"%PDF")


def _raw_payload(archive: Archive, rid: str, url: str, tmp: Path) -> bytes:
    warc = tmp / "raw.warc.gz"
    archive.get(rid, "warc", warc)
    with open(warc, "rb") as fh:
        for rec in ArchiveIterator(fh):
            if rec.rec_type == "response" and rec.rec_headers.get_header("WARC-Target-URI") == url:
                return bytes(rec.raw_stream.read())
    raise AssertionError(f"no response for {url}")


def test_hashes_verify_and_a_flipped_png_byte_fails(archive: Archive, site: SampleSite) -> None:
    m = archive.capture(site.base_url + "/js-page", CaptureOptions(browser=FAST))
    for name in ("screenshot", "pdf", "dom"):
        art = m.artifact(name)
        assert art is not None
        assert hashlib.sha256(archive.blobs.read_bytes(art.sha256)).hexdigest() == art.sha256
    assert archive.verify(m.record_id).ok
    art = m.artifact("screenshot")
    assert art is not None
    p = archive.blobs.path(art.sha256)
    data = bytearray(p.read_bytes())
    data[len(data) // 3] ^= 0x10
    p.chmod(0o644)
    p.write_bytes(bytes(data))
    rep = archive.verify(m.record_id)
    assert not rep.ok and [c.name for c in rep.failures] == ["artifact.screenshot"]


def test_private_subrequest_is_blocked_and_listed(tmp_path: Path, site: SampleSite,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import archiver.capture.net as net

    real = net.address_is_public
    monkeypatch.setattr(net, "address_is_public", lambda ip: ip == "127.0.0.1" or real(ip))
    monkeypatch.delenv("ARCHIVER_ALLOW_PRIVATE", raising=False)
    a, _ = Archive.init(tmp_path / "s")
    m = a.capture(site.base_url + "/leaky-page", CaptureOptions(browser=FAST))
    assert m.capture.browser is not None
    assert any("10.0.0.1" in x and "not a public address" in x for x in m.capture.browser.blocked)


def test_download_falls_back_to_plain_capture(archive: Archive, site: SampleSite) -> None:
    m = archive.capture(site.base_url + "/download", CaptureOptions(browser=FAST))
    assert m.artifact("screenshot") is None and m.capture.browser is None
    assert m.digests.content_sha256 == hashlib.sha256(b"PK\x03\x04 not a page").hexdigest()


def test_never_ready_page_is_partial_or_fails_with_strict(archive: Archive, site: SampleSite, cli) -> None:  # type: ignore[no-untyped-def]
    from .conftest import ROUTES, send

    ROUTES["/hanging-page"] = lambda h: send(h, 200, b"<html><body><p>Visible at once</p>"
                                                     b"<img src='/slow'></body></html>", "text/html")
    archive.config.set("capture.deadline", "30")
    m = archive.capture(site.base_url + "/hanging-page", CaptureOptions(browser=BrowserOptions(timeout=2)))
    assert m.capture.browser is not None and m.capture.browser.partial
    assert any(s.status == "partial" for s in m.capture.steps)
    snap = store_snapshot(archive.root)
    r = cli("capture", site.base_url + "/hanging-page", "--browser", "--page-timeout", "2", "--strict",
            "--store", str(archive.root))
    assert r.code == 3 and "--strict" in r.err
    time.sleep(0.5)
    assert store_snapshot(archive.root) == snap


def test_batch_reuses_one_browser(archive: Archive, site: SampleSite, monkeypatch: pytest.MonkeyPatch) -> None:
    launches = []
    real_enter = BrowserSession.__enter__

    def counting(self: BrowserSession) -> BrowserSession:
        launches.append(1)
        return real_enter(self)

    monkeypatch.setattr(BrowserSession, "__enter__", counting)
    items = [(f"{site.base_url}/js-page?n={i}", None, None) for i in range(3)]
    results = archive.capture_batch(items, CaptureOptions(browser=FAST), jobs=4)
    assert all(r.ok for r in results) and len(launches) == 1


def test_chromium_missing_says_how_to_install(archive: Archive, site: SampleSite, cli,
                                              monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ARCHIVER_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("PATH", "/nonexistent")
    r = cli("capture", site.base_url + "/plain", "--browser", "--store", str(archive.root))
    assert r.code == 2 and "Chromium is not installed" in r.err and "apt-get install chromium" in r.err


PYWB_BIN = Path(os.environ.get("ARCHIVER_PYWB_BIN", str(Path(__file__).resolve().parent.parent / ".venv-pywb/bin")))


@pytest.mark.skipif(not (PYWB_BIN / "wayback").exists(), reason="pywb not installed (make test builds .venv-pywb)")
def test_browser_warc_replays_in_pywb_with_the_image(archive: Archive, site: SampleSite, tmp_path: Path) -> None:
    m = archive.capture(site.base_url + "/js-page", CaptureOptions(browser=FAST))
    warc = tmp_path / "capture.warc.gz"
    archive.get(m.record_id, "warc", warc)
    root = tmp_path / "pywb"
    root.mkdir()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for args in (["init", "evidence"], ["add", "evidence", str(warc)]):
        subprocess.run([str(PYWB_BIN / "wb-manager"), *args], cwd=root, env=env, check=True, capture_output=True,
                       timeout=120)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(PYWB_BIN / "wayback"), "-b", "127.0.0.1", "-p", str(port)], cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                requests.get(base + "/", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        ts = m.captured_at.replace("-", "").replace(":", "").replace("T", "")[:14]
        page = requests.get(f"{base}/evidence/{ts}id_/{m.subject.final_url}", timeout=10)
        img = requests.get(f"{base}/evidence/{ts}id_/{urllib.parse.urljoin(m.subject.final_url, '/logo.png')}",
                           timeout=10)
        assert page.status_code == 200 and page.content == JS_PAGE
        assert img.status_code == 200 and img.content == LOGO
        replay = requests.get(f"{base}/evidence/{ts}mp_/{m.subject.final_url}", timeout=10)  # the framed page
        assert replay.status_code == 200 and "logo.png" in replay.text
    finally:
        proc.terminate()
        proc.wait(10)
    assert Status.PASS  # (imported for symmetry with the other suites)


def test_a_browser_capture_exported_passes_the_index_check(archive: Archive, site: SampleSite, tmp_path: Path,
                                                            cli) -> None:  # type: ignore[no-untyped-def]
    """The page's line in the exported index leads to the response whose content the manifest signs,
    with every subresource's line pointing where it claims (issue 28, defect 4)."""
    m = archive.capture(site.base_url + "/js-page", CaptureOptions(browser=FAST))
    out = tmp_path / "b.wacz"
    assert cli("export", m.record_id, "-o", str(out), "--store", str(archive.root)).code == 0
    r = cli("verify", str(out), "--json", "--store", str(archive.root))
    checks = {c["name"]: c for rep in json.loads(r.out)["reports"] for c in rep["checks"]}
    assert r.code == 0 and checks["bundle.index"]["status"] == "PASS", checks.get("bundle.index")
