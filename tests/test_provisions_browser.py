"""The provision pages in the Debian Chromium through Playwright, checked by axe-core.

A real server (uvicorn on 127.0.0.1), a local page watched through two versions (each run re-finds the provisions) after
each run; a viewer logs in, opens the provision list, a provision (its clause language, first tracked,
last verified, both versions and the word diff) and the record page's Provisions section. axe: no
serious or critical violation on any of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archiver.access import create_token
from archiver.api import Archive
from archiver.demo.server import SampleSite, send
from archiver.monitor import run_watches
from archiver.web import create_app
from tests.live_server import LiveServer
from tests.test_web_pages import ARGS, CHROMIUM, axe_check

pw_api = pytest.importorskip("playwright.sync_api")
V1 = (b"<html><head><title>Terms</title></head><body><main><h1>Terms of Service</h1><h2>1. Fees</h2>"
      b"<p>The service is free of charge for personal use.</p><h2>2. Termination</h2>"
      b"<p>Either side may end this agreement at any time.</p></main></body></html>")
V2 = V1.replace(b"Either side may end this agreement at any time.",
                b"We may end this agreement at any time; you may end it with thirty days notice.")


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (make test installs it)")
    body = {"now": V1}
    archive, _ = Archive.init(tmp_path / "store", operator="Jane Roe", organization="Roe LLP")
    archive.config.set("capture.allow_private", "true")
    token = create_token(archive, "viewer-user", "viewer", actor="tester").token
    with SampleSite({"/terms": lambda h: send(h, 200, body["now"], "text/html; charset=utf-8")}) as site:
        url = site.base_url + "/terms"
        archive.watches.add(url, entity="Example Inc.", document="Terms of Service", every="1d", actor="tester")
        first = run_watches(archive, passphrase=lambda: None, actor="tester").results[0].record_id
        assert first
        pid = archive.provisions.add(first, "Either side may end this agreement at any time.",
                                     label="Termination at will", actor="tester").provision_id
        archive.provisions.add(first, "free of charge", actor="tester")
        body["now"] = V2
        summary = run_watches(archive, passphrase=lambda: None, actor="tester")
        assert [c.status for c in summary.provisions] == ["changed", "unchanged"]
        with LiveServer(create_app(archive, start_jobs=False)) as srv, pw_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            yield {"srv": srv, "browser": browser, "token": token, "pid": pid, "second": summary.results[0].record_id}
            browser.close()


def test_provision_pages_in_chromium_with_axe(world: dict[str, Any]) -> None:
    srv, pid = world["srv"], world["pid"]
    page = world["browser"].new_context().new_page()
    page.goto(srv.base_url + "/provisions")
    page.get_by_label("Access token").fill(world["token"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(srv.base_url + "/provisions")
    axe: dict[str, list[str]] = {}
    axe_check(page, "provision list", axe)
    assert page.get_by_role("heading", name="Provisions", level=1).is_visible()
    row = page.get_by_role("row").filter(has_text="Termination at will")
    assert "changed" in row.inner_text() and "Example Inc." in row.inner_text()
    page.get_by_role("link", name=pid).click()
    page.wait_for_url(srv.base_url + f"/provisions/{pid}")
    axe_check(page, "provision", axe)
    assert page.get_by_role("heading", name="Termination at will").is_visible()
    clause = page.locator("#clause-text").inner_text()
    assert clause == "We may end this agreement at any time; you may end it with thirty days notice."
    details = page.locator("#details").inner_text()
    assert "First tracked" in details and "Last verified" in details and pid in details
    assert page.get_by_role("heading", name="Version 1", exact=False).count() == 1
    assert page.get_by_role("heading", name="Version 2", exact=False).count() == 1
    assert page.locator("#version-2 ins").count() >= 1 and page.locator("#version-2 del").count() >= 1
    assert "has changed this document before" in page.locator("#clause").inner_text()
    page.get_by_role("link", name=world["second"]).first.click()
    page.wait_for_url(srv.base_url + f"/records/{world['second']}")
    axe_check(page, "record with provisions", axe)
    section = page.locator("#provisions")
    assert section.get_by_role("heading", name="Provisions").is_visible()
    assert section.get_by_role("link", name=pid).is_visible()
    print("axe:", axe)
