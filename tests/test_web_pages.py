"""The web app in the Debian Chromium through Playwright: what a paralegal does, click by click.

A real server (uvicorn on 127.0.0.1), the bundled sample site, a real TSA; no test client. axe-core
(axe-playwright-python, its axe.min.js shipped in the wheel) checks every page for accessibility.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archiver.access import create_token
from archiver.api import Archive
from archiver.demo.server import SampleSite, send
from archiver.options import CaptureOptions
from archiver.web import create_app
from tests.conftest import HOSTILE
from tests.live_server import LiveServer

pw_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
QUOTE = "Even if you opt-out, we will use Inputs and Outputs for model improvement"
SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"

VERSIONS = {
    1: b"<html><head><title>Terms</title></head><body><h1>Terms</h1><h2>1. Fees</h2><p>Free.</p>"
       b"<h2>2. Termination</h2><p>Either side may end this at any time.</p></body></html>",
    2: b"<html><head><title>Terms</title></head><body><h1>Terms</h1><h2>1. Fees</h2><p>Ten dollars a month.</p>"
       b"<h2>2. Termination</h2><p>Either side may end this at any time.</p></body></html>",
    3: b"<html><head><title>Terms</title></head><body><h1>Terms</h1><h2>1. Fees</h2><p>Ten dollars a month.</p>"
       b"<h2>2. Termination</h2><p>We may end this at any time; you may not.</p></body></html>",
}


@pytest.fixture()
def world(tmp_path: Path, tsa) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (make test installs it)")
    state = {"privacy_version": 1, "terms": 1}
    routes = {
        "/terms": lambda h: send(h, 200, VERSIONS[state["terms"]], "text/html; charset=utf-8"),
        "/hostile": lambda h: send(h, 200, HOSTILE, "text/html; charset=utf-8"),
    }
    archive, _ = Archive.init(tmp_path / "store", operator="Jane Roe", organization="Roe LLP")
    archive.config.set("capture.allow_private", "true")
    archive.config.set("tsa.urls", tsa.url)
    archive.config.set("tsa.certs", str(tsa.ca_pem))
    tokens = {r: create_token(archive, f"{r}-user", r, actor="tester").token for r in ("viewer", "capturer")}
    from archiver.demo.server import demo_routes

    with SampleSite({**demo_routes(state), **routes}) as site, LiveServer(create_app(archive)) as srv, \
            pw_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield {"archive": archive, "site": site, "srv": srv, "browser": browser, "tokens": tokens,
               "state": state, "tmp": tmp_path}
        browser.close()


def login(world: dict[str, Any], role: str, **ctx_kw: Any) -> Any:
    ctx = world["browser"].new_context(accept_downloads=True, **ctx_kw)
    page = ctx.new_page()
    page.goto(world["srv"].base_url + "/")
    assert "/login" in page.url
    page.get_by_label("Access token").fill(world["tokens"][role])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(world["srv"].base_url + "/")
    return page


def axe_check(page: Any, where: str, findings: dict[str, list[str]]) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [f"{v['id']} ({v['impact']}): {len(v['nodes'])} node(s)" for v in results.response["violations"]
           if v["impact"] in ("serious", "critical")]
    findings[where] = [f"{v['id']} ({v['impact']})" for v in results.response["violations"]]
    assert not bad, f"axe on {where}: {bad}"


def test_paralegal_walkthrough(world: dict[str, Any]) -> None:
    site, srv, archive = world["site"], world["srv"], world["archive"]
    dialogs: list[str] = []
    axe: dict[str, list[str]] = {}
    page = login(world, "capturer")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=srv.base_url)
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    axe_check(page, "records (empty)", axe)

    # capture the sample policy through the form and land on its record page
    page.get_by_role("link", name="Capture", exact=True).click()
    axe_check(page, "capture", axe)
    page.get_by_label("URL").fill(site.base_url + "/privacy")
    page.get_by_label("Entity").fill("Example Inc.")
    page.get_by_label("Document").fill("Privacy Policy")
    page.get_by_role("button", name="Capture").click()
    record_link = page.locator("[data-job-status] a")
    record_link.wait_for(timeout=30000)
    rid = record_link.inner_text()
    record_link.click()
    page.wait_for_url(f"**/records/{rid}")
    axe_check(page, "record", axe)

    # Evidence Provenance and the Citation Record carry the right hash and fields
    from archiver.demo.server import site_file

    served = hashlib.sha256(site_file("privacy.html")).hexdigest()
    assert page.locator("#sha-content").inner_text() == served
    fields = {page.locator("#citation-record dt").nth(i).inner_text(): page.locator("#citation-record dd").nth(i)
              .inner_text() for i in range(page.locator("#citation-record dt").count())}
    assert list(fields) == ["Entity", "Document", "Record ID", "Captured (UTC)", "SHA-256", "URL", "Accessed"]
    assert fields["Entity"] == "Example Inc." and fields["Record ID"] == rid and fields["SHA-256"] == served
    assert page.get_by_text("genTime").count() >= 1  # stamped by the local TSA

    # switch to Bluebook, copy it
    page.get_by_role("tab", name="Bluebook").click()
    pw_api.expect(page.locator("#citation-out")).not_to_contain_text("Citation Record")
    pw_api.expect(page.locator("#citation-out")).to_contain_text("Example Inc. (May 5, 2026)")
    bluebook = page.locator("#citation-out").inner_text()
    page.get_by_role("button", name="Copy citation").click()
    assert page.evaluate("navigator.clipboard.readText()") == bluebook.strip()

    # pin a quote that exists, and one that does not
    page.get_by_label("Exact excerpt").fill(QUOTE)
    page.get_by_role("button", name="Pin quote").click()
    page.locator("#quote-citation").wait_for()
    assert QUOTE.split(",")[0] in page.locator("#quote-citation").inner_text()
    assert "#:~:text=" in (page.locator("#quote-fragment").get_attribute("href") or "")
    page.get_by_label("Exact excerpt").fill("we will never use Inputs and Outputs for model improvement")
    page.get_by_role("button", name="Pin quote").click()
    page.locator("#quote-result .notice.fail").wait_for()
    assert "closest" in page.locator("#quote-result").inner_text()

    # Verify now: every check, each passing or skipped with its reason, none failing
    page.get_by_role("button", name="Verify now").click()
    page.locator("#verify-checks li").first.wait_for()
    statuses = page.locator("#verify-checks li .badge").all_inner_texts()
    assert statuses and "FAIL" not in statuses and statuses.count("PASS") >= 5
    assert "VERIFIED" in page.locator("#verify-status").inner_text()

    # download the content, compare its hash; upload it on /verify; then a file one byte different
    with page.expect_download() as dl:
        page.get_by_role("link", name="Download content").click()
    saved = world["tmp"] / "content.html"
    dl.value.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == served
    page.get_by_role("link", name="Verify", exact=True).click()
    axe_check(page, "verify", axe)
    page.locator("#v-file").set_input_files(str(saved))
    page.get_by_role("button", name="Check this file").click()
    page.locator("#result").wait_for()
    assert rid in page.locator("#result").inner_text() and "VERIFIED" in page.locator("#result").inner_text()
    axe_check(page, "verify result", axe)
    other = world["tmp"] / "other.html"
    other.write_bytes(saved.read_bytes()[:-1] + b"!")
    page.locator("#v-file").set_input_files(str(other))
    page.get_by_role("button", name="Check this file").click()
    page.get_by_text("No record of this file").wait_for()

    # a watched page changed twice: 3 versions, and a diff naming the changed section
    page.get_by_role("link", name="Watches", exact=True).click()
    page.get_by_role("textbox", name="URL").fill(site.base_url + "/terms")
    page.get_by_role("textbox", name="Entity").fill("Example Inc.")
    page.get_by_role("textbox", name="Document").fill("Terms of Service")
    page.get_by_role("button", name="Watch").click()
    from archiver.monitor import run_watches

    for version in (1, 2, 3):
        world["state"]["terms"] = version
        run_watches(archive, passphrase=lambda: None, actor="tester")
    page.reload()
    axe_check(page, "watches", axe)
    page.get_by_role("link", name="3 version(s)").click()
    assert page.locator("#versions .timeline li").count() == 3
    axe_check(page, "record with versions", axe)
    page.locator("#versions").get_by_role("link", name="what changed from v2").click()
    assert page.get_by_text("2. Termination").first.is_visible()
    assert page.locator("del").count() >= 1 and page.locator("ins").count() >= 1
    axe_check(page, "diff", axe)

    # records list with its badges, and the search
    page.get_by_role("link", name="Records", exact=True).click()
    page.get_by_label("URL, entity, document or SHA-256").fill(served)
    page.get_by_role("button", name="Search").click()
    assert page.locator("tbody tr").count() == 1 and rid in page.locator("tbody").inner_text()
    axe_check(page, "records", axe)
    assert dialogs == []
    (world["tmp"] / "axe.txt").write_text("\n".join(f"{k}: {v or 'no violations'}" for k, v in axe.items()))
    print("axe:", axe)


def test_viewer_sees_no_capture_and_is_refused(world: dict[str, Any]) -> None:
    page = login(world, "viewer")
    assert page.get_by_role("link", name="Capture", exact=True).count() == 0
    r = page.request.get(world["srv"].base_url + "/capture")
    assert r.status == 403
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    r = page.request.post(world["srv"].base_url + "/capture", form={"urls": world["site"].base_url + "/privacy",
                                                                    "csrf_token": csrf or ""})
    assert r.status == 403
    assert world["archive"].catalog.count() == 0


def test_hostile_page_runs_no_script(world: dict[str, Any]) -> None:
    archive = world["archive"]
    m = archive.capture(world["site"].base_url + "/hostile",
                        CaptureOptions(entity="<img src=x onerror=alert('entity')> Evil"))
    page = login(world, "viewer")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(world["srv"].base_url + f"/records/{m.record_id}")
    page.wait_for_load_state("networkidle")
    assert "<script>" in page.locator("h1").inner_text() or "Evil" in page.locator("h1").inner_text()
    page.mouse.click(200, 400)
    page.goto(world["srv"].base_url + "/")
    page.wait_for_load_state("networkidle")
    assert dialogs == []


def test_screenshots_of_the_record_page(world: dict[str, Any]) -> None:
    """Desktop, phone, dark and print views of a record page, written to docs/screenshots/."""
    if not os.environ.get("ARCHIVER_SCREENSHOTS"):
        pytest.skip("set ARCHIVER_SCREENSHOTS=1 to rewrite docs/screenshots/")
    import time

    page = login(world, "capturer")
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
    r = page.request.post(world["srv"].base_url + "/api/v1/captures", headers={"X-CSRF-Token": csrf},
                          data={"url": world["site"].base_url + "/privacy", "entity": "Example Inc.",
                                "document": "Privacy Policy", "browser": True})
    assert r.status == 202, r.text()
    status_url = world["srv"].base_url + r.json()["status_url"]
    for _ in range(600):
        job = page.request.get(status_url).json()
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.1)
    assert job["status"] == "done", job
    page.context.close()
    rid = job["record_id"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    for name, kw in (("desktop", {"viewport": {"width": 1440, "height": 1100}}),
                     ("phone", {"viewport": {"width": 390, "height": 844}, "is_mobile": True}),
                     ("dark", {"viewport": {"width": 1440, "height": 1100}, "color_scheme": "dark"})):
        page = login(world, "capturer", **kw)
        page.goto(world["srv"].base_url + f"/records/{rid}")
        page.screenshot(path=str(SHOTS / f"record-{name}.png"), full_page=name == "phone")
        if name == "desktop":
            page.emulate_media(media="print")
            page.screenshot(path=str(SHOTS / "record-print.png"), full_page=True)
        page.context.close()


def test_capture_errors_in_plain_words_keep_anyway_and_certificate(world: dict[str, Any]) -> None:
    page = login(world, "capturer")
    page.get_by_role("link", name="Capture", exact=True).click()
    page.get_by_label("URL").fill(world["site"].base_url + "/gone-page\nftp://example.org/x")
    page.get_by_role("button", name="Capture").click()
    assert "ftp://example.org/x" in page.locator(".notice.fail").inner_text()  # refused before any job
    page.get_by_role("button", name="Keep anyway").wait_for(timeout=30000)
    assert "404" in page.locator("[data-job-status]").inner_text()
    page.get_by_role("button", name="Keep anyway").click()
    link = page.locator("[data-job-status] a")
    link.wait_for(timeout=30000)
    rid = link.inner_text()
    assert world["archive"].manifest(rid).http.status == 404
    link.click()
    page.get_by_label("Declarant (a person)").fill("Jane Roe")
    page.get_by_label("Title").fill("Paralegal")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Certificate (PDF)").click()
    pdf = world["tmp"] / "cert.pdf"
    dl.value.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF")


def test_public_verify_shows_only_hash_matches(world: dict[str, Any], tmp_path: Path) -> None:
    archive = world["archive"]
    m = archive.capture(world["site"].base_url + "/privacy",
                        CaptureOptions(entity="Example Inc.", document="Privacy Policy"))
    with LiveServer(create_app(archive, public_verify=True)) as public:
        ctx = world["browser"].new_context()
        page = ctx.new_page()
        page.goto(public.base_url + "/")
        assert page.url.endswith("/verify")  # the only page without login
        page.locator("#v-file").set_input_files(files=[{"name": "policy.html", "mimeType": "text/html",
                                                        "buffer": archive.blobs.read_bytes(
                                                            m.digests.content_sha256)}])
        page.get_by_role("button", name="Check this file").click()
        page.locator("#result").wait_for()
        assert m.record_id in page.locator("#result").inner_text()
        assert page.locator("#result a").count() == 0  # no way into the records from here
        r = page.request.get(public.base_url + f"/records/{m.record_id}", max_redirects=0)
        assert r.status in (303, 401)
        assert page.request.get(public.base_url + "/api/v1/records").status == 401
        ctx.close()


def test_api_docs_render_offline(world: dict[str, Any]) -> None:
    """/api/docs: Swagger UI from the package (no CDN) renders every operation of the OpenAPI 3.1 document."""
    page = world["browser"].new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(world["srv"].base_url + "/api/docs")
    page.locator(".opblock").first.wait_for(timeout=15000)
    assert "OAS 3.1" in page.locator(".swagger-ui .info").inner_text()
    assert page.locator(".opblock").count() >= 20
    assert all(u.startswith(world["srv"].base_url) for u in requested), requested
    page.close()
