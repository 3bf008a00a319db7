"""Collections (issue 29, item 5): `archiver collection create/add/publish/unpublish/list/show`, each
change a custody entry naming the actor; names checked; the public page /c/<name> (HTML, JSON, one
WACZ) lists only the public records of a published collection, in order, with each citation and hash;
an unpublished or unknown collection is the same 404."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from archiver.api import Archive
from archiver.demo.server import SampleSite
from archiver.web import create_app
from store.custody import CustodyEntry

NOPASS = lambda: None  # noqa: E731  (the test store's key has no passphrase)


def _custody(archive: Archive) -> list[CustodyEntry]:
    return list(archive.custody.entries())  # custody.log, or the catalog's table on PostgreSQL


@pytest.fixture()
def three(archive: Archive, site: SampleSite) -> dict[str, str]:
    """Three records of three documents: a and c public, b private."""
    a = archive.capture(site.base_url + "/plain").record_id
    b = archive.capture(site.base_url + "/terms.pdf").record_id
    c = archive.capture(site.base_url + "/hostile").record_id
    archive.publications.publish([a, c], actor="tester", passphrase=NOPASS)
    return {"a": a, "b": b, "c": c}


@pytest.fixture()
def client(archive: Archive) -> Iterator[TestClient]:
    app = create_app(archive, start_jobs=False)
    with TestClient(app, base_url="http://testserver") as c:
        yield c
    app.state.web.runner.shutdown(wait=True)


@pytest.mark.parametrize("catalog", ["sqlite", "postgresql"], indirect=True)
def test_create_add_publish_each_a_custody_entry(archive: Archive, three: dict[str, str], cli) -> None:  # type: ignore[no-untyped-def]
    s = ["--store", str(archive.root)]
    a, b, c = three["a"], three["b"], three["c"]
    r = cli("collection", "create", "brief-2026", "--title", "Brief of Appellant, Dec. 2026", "--json", *s)
    assert r.code == 0, r.err
    assert json.loads(r.out) == {"name": "brief-2026", "title": "Brief of Appellant, Dec. 2026", "public": False,
                                 "created_at": json.loads(r.out)["created_at"],
                                 "updated_at": json.loads(r.out)["updated_at"], "record_ids": []}
    r = cli("collection", "add", "brief-2026", c, a, "--json", *s)
    assert r.code == 0, r.err
    assert json.loads(r.out)["added"] == [c, a]
    r = cli("collection", "add", "brief-2026", a, b, "--json", *s)  # a keeps its place, b is appended
    assert json.loads(r.out)["added"] == [b] and json.loads(r.out)["already"] == [a]
    shown = json.loads(cli("collection", "show", "brief-2026", "--json", *s).out)
    assert shown["record_ids"] == [c, a, b] and shown["public"] is False
    r = cli("collection", "publish", "brief-2026", "--json", *s)
    assert r.code == 0, r.err
    pub = json.loads(r.out)
    assert pub["changed"] is True and len(pub["bundle_sha256"]) == 64
    assert json.loads(cli("collection", "publish", "brief-2026", "--json", *s).out)["changed"] is False
    listed = json.loads(cli("collection", "list", "--json", *s).out)
    assert [(x["name"], x["public"]) for x in listed] == [("brief-2026", True)]
    r = cli("collection", "show", "brief-2026", *s)
    assert f"{b}  private (not listed on its page)" in r.out
    assert cli("collection", "unpublish", "brief-2026", *s).code == 0
    events = [(e.event, (e.detail or {}).get("record_id"), (e.detail or {}).get("name"), e.actor)
              for e in _custody(archive) if e.event.startswith("collection-")]
    # no collection entry is a record's own: a record's custody travels in its bundles, and must not
    # name the (possibly private) lists that hold it
    assert all(e.record_id is None for e in _custody(archive) if e.event.startswith("collection-"))
    assert events == [("collection-create", None, "brief-2026", "Test Operator"),
                      ("collection-add", c, "brief-2026", "Test Operator"),
                      ("collection-add", a, "brief-2026", "Test Operator"),
                      ("collection-add", b, "brief-2026", "Test Operator"),
                      ("collection-publish", None, "brief-2026", "Test Operator"),
                      ("collection-unpublish", None, "brief-2026", "Test Operator")]
    assert archive.ledger.audit(archive.custody.verify_chain()).ok  # the chain holds with the new events


@pytest.mark.parametrize(("args", "words"), [
    (["collection", "create", "a/b"], "without '/'"),
    (["collection", "create", ".."], "without '/', '..'"),
    (["collection", "create", "../etc"], "without '/', '..'"),
    (["collection", "create", "x..y"], "without '/', '..'"),
    (["collection", "create", "Brief"], "a-z 0-9"),
    (["collection", "create", "_x"], "starting with a letter or digit"),
    (["collection", "create", "x" * 65], "1-64"),
    (["collection", "create", "page.json"], ".json/.wacz/.html"),
    (["collection", "create", "ok", "--title", "two\nlines"], "one line"),
    (["collection", "add", "nope", "NOPE-NOPE"], "no record"),
    (["collection", "publish", "nope"], "no collection named 'nope'"),
    (["collection", "show", "a/../b"], "without '/'"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(archive: Archive, cli, args: list[str],  # type: ignore[no-untyped-def]
                                                         words: str) -> None:
    log = archive.root / "custody.log"
    before = log.read_bytes() if log.exists() else b""
    r = cli(*args, "--store", str(archive.root))
    assert r.code == 2, (args, r.code, r.out, r.err)
    assert words in r.err and "Traceback" not in r.err, r.err
    assert len([ln for ln in r.err.splitlines() if ln.strip() and "hint" not in ln]) == 1, r.err
    assert (log.read_bytes() if log.exists() else b"") == before
    assert sqlite3.connect(archive.root / "catalog.sqlite3").execute("SELECT COUNT(*) FROM collections").fetchone() \
        == (0,)


def _wacz_records(data: bytes) -> set[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n.split("/")[1].removesuffix(".warc.gz") for n in z.namelist() if n.startswith("archive/")}


@pytest.mark.parametrize("catalog", ["sqlite", "postgresql"], indirect=True)
def test_public_page_lists_only_public_records_in_order(archive: Archive, three: dict[str, str], client: TestClient,
                                                        tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    a, b, c = three["a"], three["b"], three["c"]
    cols = archive.collections
    cols.create("exhibits", title="Exhibits <to> the brief", actor="tester")
    cols.add("exhibits", [c, b, a], actor="tester", passphrase=NOPASS)
    # private: the same 404 as a name never used (and as a bad one), for the page, the JSON and the bundle
    for suffix in ("", ".json", ".wacz"):
        private = client.get(f"/c/exhibits{suffix}")
        assert private.status_code == 404
        for other in ("never-made", "bad..name"):
            unknown = client.get(f"/c/{other}{suffix}")
            assert (unknown.status_code, unknown.content) == (private.status_code, private.content)
            assert unknown.headers.get("content-type") == private.headers.get("content-type")
    cols.publish("exhibits", actor="tester", passphrase=NOPASS)
    page = client.get("/c/exhibits")
    assert page.status_code == 200, page.text
    html = page.text
    assert "Exhibits &lt;to&gt; the brief" in html and "<to>" not in html  # escaped
    assert html.index(c) < html.index(a) and b not in html  # in order; the private one is not hinted at
    assert "2 public records" in html
    summaries = {r: archive.resolve(r) for r in (a, b, c)}
    assert summaries[a].content_sha256 in html and summaries[c].content_sha256 in html
    assert summaries[b].content_sha256 not in html
    assert f'href="../r/{a}"' in html and 'href="exhibits.wacz"' in html and 'href="../static/app.css"' in html
    twin = client.get("/c/exhibits.json").json()
    assert [i["record_id"] for i in twin["items"]] == [c, a] and [i["position"] for i in twin["items"]] == [1, 2]
    assert b not in json.dumps(twin)
    from archiver.cite import citation_data, render

    assert twin["items"][1]["citation"] == render(citation_data(archive, a), "bluebook")
    assert twin["items"][1]["citation"] in html.replace("&#39;", "'").replace("&amp;", "&") or \
        twin["items"][1]["citation"][:40] in html
    # one WACZ of the public records only; it verifies on its own
    wacz = client.get("/c/exhibits.wacz")
    assert wacz.status_code == 200 and wacz.headers["content-disposition"].startswith("attachment")
    assert _wacz_records(wacz.content) == {a, c}
    with zipfile.ZipFile(io.BytesIO(wacz.content)) as z:  # the custody it carries names no collection
        carried = [z.read(n) for n in z.namelist() if n.endswith("custody.jsonl")]
        assert len(carried) == 2 and not [c for c in carried if b"collection-" in c or b"exhibits" in c]
    assert twin["bundle"]["sha256"] == __import__("hashlib").sha256(wacz.content).hexdigest()
    out = tmp_path / "exhibits.wacz"
    out.write_bytes(wacz.content)
    r = cli("verify", str(out), "--store", str(archive.root))
    assert r.code == 0, r.out[-1500:]
    # rendered once per state, with a strong ETag: a revalidation costs a 304
    etag = page.headers["etag"]
    assert client.get("/c/exhibits", headers={"If-None-Match": etag}).status_code == 304
    # a record unpublished since: gone from the page, and the bundle that held it is never served again
    archive.publications.unpublish([a], reason="sealed", actor="tester", passphrase=NOPASS)
    again = client.get("/c/exhibits", headers={"If-None-Match": etag})
    assert again.status_code == 200 and again.headers["etag"] != etag and a not in again.text
    assert _wacz_records(client.get("/c/exhibits.wacz").content) == {c}
    kept = sorted(p.name for p in (archive.root / "public" / "collections").glob("*.wacz"))
    assert len(kept) == 1, kept
    # unpublished collection: the unknown name's answer again
    cols.unpublish("exhibits", actor="tester")
    assert client.get("/c/exhibits").content == client.get("/c/never-made").content


def test_reading_the_public_page_writes_no_custody(archive: Archive, three: dict[str, str],
                                                   client: TestClient) -> None:
    cols = archive.collections
    cols.create("ex", actor="tester")
    cols.add("ex", [three["a"]], actor="tester", passphrase=NOPASS)
    cols.publish("ex", actor="tester", passphrase=NOPASS)
    before = (archive.root / "custody.log").read_bytes()
    db = sqlite3.connect(archive.root / "catalog.sqlite3")
    version = db.execute("PRAGMA data_version").fetchone()
    for path in ("/c/ex", "/c/ex.json", "/c/ex.wacz"):
        assert client.get(path).status_code == 200
    assert (archive.root / "custody.log").read_bytes() == before
    assert db.execute("PRAGMA data_version").fetchone() == version


def _axe(page: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']}" for v in results.response["violations"]
            if v.get("impact") in ("serious", "critical")]


def test_collection_page_in_chromium_has_no_serious_axe_violation(archive: Archive, three: dict[str, str]) -> None:
    import shutil

    pw_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("Debian chromium is not installed (make test installs it)")
    from tests.live_server import LiveServer

    cols = archive.collections
    cols.create("exhibits", title="Exhibits to the brief", actor="tester")
    cols.add("exhibits", [three["c"], three["b"], three["a"]], actor="tester", passphrase=NOPASS)
    cols.publish("exhibits", actor="tester", passphrase=NOPASS)
    with LiveServer(create_app(archive, start_jobs=False)) as srv, pw_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        resp = page.goto(srv.base_url + "/c/exhibits")
        assert resp is not None and resp.status == 200
        assert page.locator("h1").inner_text() == "Exhibits to the brief"
        assert page.locator("ol.collection > li").count() == 2
        assert _axe(page) == []
        if os.environ.get("ARCHIVER_SCREENSHOTS"):  # docs/screenshots, as tests/test_public_browser.py
            shots = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
            page.screenshot(path=str(shots / "public-collection-desktop.png"), full_page=True)
            phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
            p2 = phone.new_page()
            p2.goto(srv.base_url + "/c/exhibits")
            p2.screenshot(path=str(shots / "public-collection-phone.png"), full_page=True)
            phone.close()
        page.locator(f'a[href="../r/{three["a"]}"]').click()
        page.wait_for_load_state()
        assert page.url == f"{srv.base_url}/r/{three['a']}"
        browser.close()
