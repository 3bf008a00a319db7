"""The public record page in the Debian Chromium through Playwright, as an anonymous visitor sees it
(issue 29): provenance, the citation with its permalink, the style tabs, axe-core, and screenshots."""

from __future__ import annotations

import os
from typing import Any

import pytest

from archiver.options import CaptureOptions
from tests.test_web_pages import SHOTS, axe_check, world  # noqa: F401  # the fixture, reused

pw_api = pytest.importorskip("playwright.sync_api")


def test_an_anonymous_visitor_reads_a_published_record(world: dict[str, Any]) -> None:  # noqa: F811
    archive, site, srv = world["archive"], world["site"], world["srv"]
    m = archive.capture(site.base_url + "/privacy", CaptureOptions(entity="Example Inc.", document="Privacy Policy"),
                        passphrase=lambda: None)
    private = archive.capture(site.base_url + "/terms", passphrase=lambda: None).record_id
    archive.config.set("web.public_url", srv.base_url)
    archive.publications.publish([m.record_id], actor="tester", passphrase=lambda: None)
    link = f"{srv.base_url}/r/{m.record_id}"
    ctx = world["browser"].new_context()  # no login, no cookie
    page = ctx.new_page()
    axe: dict[str, list[str]] = {}
    resp = page.goto(link)
    assert resp is not None and resp.status == 200
    assert page.locator("h1").inner_text()
    assert page.get_by_role("heading", name="Evidence Provenance").is_visible()
    assert page.get_by_role("link", name=link).first.is_visible()
    assert m.digests.content_sha256 in page.locator("#provenance").inner_text()
    assert "Permanent archival reference" in page.locator("#citation").inner_text()
    page.get_by_role("tab", name="Bluebook").click()
    blue = page.locator("#cite-bluebook")
    assert blue.is_visible() and blue.inner_text().rstrip().endswith(f"[{link}].")
    assert not page.locator("#cite-record").is_visible()
    # the "skip to content" link's off-screen rule once caught every grey badge too ("not verified yet")
    box = page.locator("#verification .badge").first.bounding_box()
    assert box is not None and box["x"] >= 0, box
    axe_check(page, "public record", axe)
    if os.environ.get("ARCHIVER_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "public-record-desktop.png"), full_page=True)
        phone = world["browser"].new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                             is_mobile=True)
        p2 = phone.new_page()
        p2.goto(link)
        p2.screenshot(path=str(SHOTS / "public-record-phone.png"), full_page=True)
        phone.close()
    gone = page.goto(f"{srv.base_url}/r/{private}")
    never = page.request.get(f"{srv.base_url}/r/ZZZZ-ZZZZ")
    assert gone is not None and gone.status == never.status == 404 and gone.body() == never.body()
    ctx.close()
