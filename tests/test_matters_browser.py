"""Matters in the Debian Chromium through Playwright (issue 32): the matter list with its filters, a
matter's page, a note and tags added through its forms (each a custody entry naming the token, the
record unchanged), the tag filter, the hold shown on the matter and record pages; axe-core finds no
serious or critical violation on any of them. Also the JSON API twins."""

from __future__ import annotations

import os
from typing import Any

import pytest

from archiver import matters
from archiver.matters import holds as matter_holds
from archiver.options import CaptureOptions
from tests.test_web_pages import SHOTS, axe_check, login, world  # noqa: F401  # the fixture, reused

pw_api = pytest.importorskip("playwright.sync_api")


def test_matter_pages_notes_and_tags_in_chromium(world: dict[str, Any]) -> None:  # noqa: F811
    archive, site, srv = world["archive"], world["site"], world["srv"]
    a = archive.capture(site.base_url + "/privacy", CaptureOptions(entity="Example Inc.", document="Privacy Policy"),
                        passphrase=lambda: None).record_id
    b = archive.capture(site.base_url + "/terms", CaptureOptions(entity="Example Inc.", document="Terms"),
                        passphrase=lambda: None).record_id
    matters.create(archive, "acme-v-doe", title="Acme v. Doe", client="Acme Corp", number="1:26-cv-42", actor="t")
    matters.create(archive, "other-case", title="Other case", client="Beta LLC", actor="t")
    matters.add(archive, "acme-v-doe", [a, b], actor="t")
    manifest = archive.resolve(a).manifest_sha256
    axe: dict[str, list[str]] = {}
    page = login(world, "capturer")

    page.get_by_role("link", name="Matters").click()
    page.wait_for_url(srv.base_url + "/matters")
    assert page.get_by_role("heading", name="Matters", exact=True).is_visible()
    assert page.get_by_role("link", name="acme-v-doe").is_visible() and page.get_by_role("link", name="other-case")\
        .is_visible()
    axe_check(page, "matters", axe)
    page.get_by_label("Client").select_option("Acme Corp")
    page.get_by_role("button", name="Filter").click()
    assert page.get_by_role("link", name="acme-v-doe").is_visible()
    assert page.get_by_role("link", name="other-case").count() == 0

    page.get_by_role("link", name="acme-v-doe").click()
    page.wait_for_url(srv.base_url + "/matters/acme-v-doe")
    assert page.get_by_role("heading", name="Acme v. Doe").is_visible()
    assert "1:26-cv-42" in page.locator("section").first.inner_text()
    axe_check(page, "matter", axe)
    page.get_by_label(f"Note on {a}").fill("Section 3 is the clause at issue <b>not bold</b>")
    page.locator(f"#r-{a}").get_by_role("button", name="Add note").click()
    page.wait_for_url(f"{srv.base_url}/matters/acme-v-doe#r-{a}")
    exhibit = page.locator(f"#r-{a}")
    assert "Section 3 is the clause at issue <b>not bold</b>" in exhibit.locator(".note-text").inner_text()
    assert "capturer-user" in exhibit.inner_text()
    page.get_by_label(f"Tags for {a}").fill("key, privileged")
    page.locator(f"#r-{a}").get_by_role("button", name="Add tags").click()
    page.wait_for_url(f"{srv.base_url}/matters/acme-v-doe#r-{a}")
    assert [t.strip() for t in page.locator(f"#r-{a} .badge").all_inner_texts()] == ["key", "privileged"]
    axe_check(page, "matter with a note and tags", axe)
    page.get_by_label("Only with tag").select_option("privileged")
    page.locator("#exhibits").get_by_role("button", name="Filter").click()
    assert page.locator(f"#r-{a}").is_visible() and page.locator(f"#r-{b}").count() == 0

    # each act a custody entry naming the token; the record itself unchanged
    acts = [(e.event, e.actor, e.detail.get("record_id")) for e in archive.custody.entries()
            if e.event in ("matter-note", "matter-tag")]
    assert acts == [("matter-note", "capturer-user", a), ("matter-tag", "capturer-user", a)]
    assert archive.resolve(a).manifest_sha256 == manifest and archive.verify(a).ok

    matter_holds.place(archive, "acme-v-doe", "litigation hold of 2026-12-01", actor="t")
    page.goto(f"{srv.base_url}/matters/acme-v-doe")
    assert "litigation hold of 2026-12-01" in page.locator("#holds").inner_text()
    axe_check(page, "held matter", axe)
    page.goto(f"{srv.base_url}/records/{a}")
    working = page.locator("#matters")
    assert "litigation hold of 2026-12-01" in working.inner_text() and "Section 3" in working.inner_text()
    assert working.get_by_role("link", name="acme-v-doe").first.is_visible()
    axe_check(page, "record with matters", axe)
    # unpublishing a held record from the API is refused, naming the hold
    archive.publications.publish([a], actor="t", passphrase=lambda: None)
    r = page.request.post(f"{srv.base_url}/api/v1/records/{a}/unpublish", data={"reason": "x"},
                          headers={"Authorization": f"Bearer {world['tokens']['capturer']}"})
    assert r.status == 400 and "litigation hold of 2026-12-01" in r.json()["detail"] and r.json()["exit_code"] == 2
    if os.environ.get("ARCHIVER_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.goto(f"{srv.base_url}/matters/acme-v-doe")
        page.screenshot(path=str(SHOTS / "matter.png"), full_page=True)
    page.context.close()

    # the API twins, as a viewer (reads) and a capturer (acts)
    ctx = world["browser"].new_context()
    viewer = {"Authorization": f"Bearer {world['tokens']['viewer']}"}
    cap = {"Authorization": f"Bearer {world['tokens']['capturer']}"}
    listed = ctx.request.get(f"{srv.base_url}/api/v1/matters?held=true", headers=viewer).json()
    assert [m["name"] for m in listed] == ["acme-v-doe"]
    shown = ctx.request.get(f"{srv.base_url}/api/v1/matters/acme-v-doe?tag=key", headers=viewer).json()
    assert [i["record_id"] for i in shown["items"]] == [a] and shown["held"] is True
    assert ctx.request.post(f"{srv.base_url}/api/v1/matters/acme-v-doe/notes", headers=viewer,
                            data={"record_id": b, "text": "x"}).status == 403
    r = ctx.request.post(f"{srv.base_url}/api/v1/matters/acme-v-doe/tags", headers=cap,
                         data={"record_id": b, "tags": ["exhibit-b"]})
    assert r.status == 200 and r.json()["added"] == ["exhibit-b"]
    last = list(archive.custody.entries())[-1]  # the API's act is the same custody event, naming the token
    assert (last.event, last.actor, last.detail["record_id"], last.detail["tags"]) == \
        ("matter-tag", "capturer-user", b, "exhibit-b")
    r = ctx.request.post(f"{srv.base_url}/api/v1/matters/other-case/notes", headers=cap,
                         data={"record_id": b, "text": "not in that matter"})
    assert r.status == 400 and "not in matter" in r.json()["detail"]
    assert ctx.request.get(f"{srv.base_url}/api/v1/matters/nope", headers=viewer).status == 404
    ctx.close()
