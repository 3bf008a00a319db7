"""The web form that makes an exhibit set (``archiver/web/exhibit_pages.py``), on the real app.

``create_app`` includes the router (the matter pages link to it); the test uses the real app."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archiver.access import create_token
from archiver.api import Archive
from archiver.demo.server import SampleSite
from tests.test_exhibits import MATTER, exhibit_world, pytestmark  # noqa: F401

fastapi = pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, site: SampleSite) -> Iterator[dict[str, Any]]:
    from fastapi.testclient import TestClient

    from archiver.web import create_app

    with exhibit_world(tmp_path_factory.mktemp("exweb"), site) as w:
        a: Archive = w["archive"]
        tokens = {r: create_token(a, f"{r}-tok", r, actor="tester").token for r in ("viewer", "capturer")}
        app = create_app(a, workers=1)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            yield {**w, "client": client, "tokens": tokens}
        app.state.web.runner.shutdown(wait=True)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_form_and_a_set_made_from_it_as_a_zip_of_signed_pdfs(web: dict[str, Any], tmp_path: Path) -> None:
    c, tok = web["client"], web["tokens"]
    page = c.get(f"/matters/{MATTER}/exhibit?ids={web['ids'][0]}", headers=auth(tok["capturer"]))
    assert page.status_code == 200 and 'name="record_ids"' in page.text and web["ids"][0] in page.text
    r = c.post(f"/matters/{MATTER}/exhibit", headers=auth(tok["capturer"]),
               data={"record_ids": f"{web['ids'][1]}, {web['ids'][2]}", "label": "Exhibit W", "bates_prefix": "WEB"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip" and "attachment" in r.headers["content-disposition"]
    assert r.headers["x-bates-range"].startswith("WEB000001-WEB0000")
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert sorted(z.namelist()) == ["Exhibit-W.pdf", "Exhibit-X.pdf"]
        z.extractall(tmp_path)
    for name in ("Exhibit-W.pdf", "Exhibit-X.pdf"):
        out = subprocess.run(["pdfsig", str(tmp_path / name)], capture_output=True, text=True, timeout=60).stdout
        assert "Signature is Valid." in out
    log = [json.loads(x) for x in (web["archive"].root / "custody.log").read_text().splitlines()]
    mine = [e for e in log if e["event"] == "exhibit" and e["detail"]["label"] in ("Exhibit W", "Exhibit X")]
    assert [e["actor"] for e in mine] == ["capturer-tok", "capturer-tok"]
    one = c.post(f"/matters/{MATTER}/exhibit", headers=auth(tok["capturer"]),
                 data={"record_ids": web["ids"][0], "label": "Exhibit V", "bates_prefix": "WEB"})
    assert one.status_code == 200 and one.headers["content-type"] == "application/pdf"
    assert one.content.startswith(b"%PDF-")


def test_viewers_may_not_and_bad_input_is_a_problem_not_a_crash(web: dict[str, Any]) -> None:
    c, tok = web["client"], web["tokens"]
    assert c.get(f"/matters/{MATTER}/exhibit", headers=auth(tok["viewer"])).status_code == 403
    r = c.post(f"/matters/{MATTER}/exhibit", headers=auth(tok["viewer"]), data={"record_ids": web["ids"][0]})
    assert r.status_code == 403
    assert c.get("/matters/nope/exhibit", headers=auth(tok["capturer"])).status_code == 404
    r = c.post(f"/matters/{MATTER}/exhibit", headers=auth(tok["capturer"]),
               data={"record_ids": web["ids"][0], "bates_prefix": "ABC", "bates_start": "1", "label": "Exhibit R"})
    assert r.status_code in (400, 409, 422) and "overlap" in r.text
    assert c.post(f"/matters/{MATTER}/exhibit", headers=auth(tok["capturer"]),
                  data={"record_ids": web["ids"][0], "bates_start": "x"}).status_code in (400, 422)


def test_the_form_in_chromium_passes_axe_and_downloads_a_signed_exhibit(web: dict[str, Any], tmp_path: Path) -> None:
    import os
    import shutil

    pw_api = pytest.importorskip("playwright.sync_api")
    chromium = os.environ.get("ARCHIVER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is not installed")
    from archiver.web import create_app
    from tests.live_server import LiveServer
    from tests.test_web_pages import axe_check

    app = create_app(web["archive"], workers=1)
    axe: dict[str, list[str]] = {}
    with LiveServer(app) as srv, pw_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            ctx = browser.new_context(accept_downloads=True,
                                      extra_http_headers=auth(web["tokens"]["capturer"]))
            page = ctx.new_page()
            resp = page.goto(f"{srv.base_url}/matters/{MATTER}/exhibit")
            assert resp is not None and resp.status == 200
            axe_check(page, "exhibit form", axe)
            page.get_by_label("Record IDs, in exhibit order").fill(web["ids"][2])
            page.get_by_label("First label").fill("Exhibit K")
            page.get_by_label("Bates prefix").fill("KB")
            with page.expect_download() as dl:
                page.get_by_role("button", name="Make the exhibits").click()
            path = tmp_path / dl.value.suggested_filename
            dl.value.save_as(path)
        finally:
            browser.close()
    app.state.web.runner.shutdown(wait=True)
    assert path.name == "Exhibit-K.pdf"
    out = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, timeout=60).stdout
    assert "Signature is Valid." in out
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, timeout=60).stdout
    assert "KB000001" in text and "Fallback to text" in text
