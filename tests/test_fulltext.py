"""Search across documents (issue 31, point 4): ``archiver search``, ``/api/v1/search``, ``/search``.

On the real corpus (../shared/corpus: 13 documents, 3 versions each, watched at one URL each with
OTA's declarations, so sections are the documents' own): three queries, each hit checked against the
section's own text; filters; the index kept from the outbox (a re-derived main-text replaces the
record's sections); PostgreSQL's full-text search for the same questions; bad queries; the page in
Chromium with axe.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from archiver.access import create_token
from archiver.api import Archive
from archiver.demo.server import SampleSite, send
from archiver.fulltext import SearchReport
from archiver.monitor import add_watch, remove_watch, run_watches
from archiver.options import CaptureOptions
from archiver.web.app import create_app
from store import fulltext as ft

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
NO_CORPUS = pytest.mark.skipif(not (CORPUS / "manifest.json").is_file(),
                               reason="../shared/corpus is not beside the checkout")
QUERIES = ("opt out", "delete your account", '"law enforcement"')
TERMS = (b"<html><head><title>Terms</title></head><body><main><h1>Terms of Service</h1><h2>1. Accounts</h2>"
         b"<p>You may delete your account at any time from the settings page.</p><h2>2. Personal data</h2>"
         b"<p>We process personal data as our privacy policy says, and never sell personal data.</p>"
         b"<h2>3. Law</h2><p>These terms are governed by the laws of Ireland.</p></main></body></html>")


@pytest.fixture(scope="module")
def site() -> Any:
    """The demo's privacy policy and a small terms page with headings."""
    from archiver.demo.server import site_file

    with SampleSite({"/privacy": lambda h: send(h, 200, site_file("privacy.html"), "text/html; charset=utf-8"),
                     "/terms": lambda h: send(h, 200, TERMS, "text/html; charset=utf-8")}) as s:
        yield s


def _rules(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else ([value] if value else [])
    return tuple(r if isinstance(r, str) else json.dumps(r, sort_keys=True) for r in items)


def _watch_all(archive: Archive) -> dict[str, str]:
    """Every corpus document's 3 versions, watched at one URL with OTA's declaration of each version."""
    docs: dict[str, list[dict[str, Any]]] = {}
    for e in json.loads((CORPUS / "manifest.json").read_text("utf-8")):
        docs.setdefault(e["dir"], []).append(e)
    current: dict[str, bytes] = {}

    def route(doc: str) -> Any:
        return lambda h: send(h, 200, current[doc], "application/pdf" if current[doc].startswith(b"%PDF-")
                              else "text/html; charset=utf-8")

    urls: dict[str, str] = {}
    with SampleSite({f"/{d}": route(d) for d in docs}) as site:
        for d, versions in sorted(docs.items()):
            url = urls[d] = f"{site.base_url}/{d}"
            rules = None
            for e in sorted(versions, key=lambda e: e["snapshot"]["date"]):
                current[d] = (CORPUS / d / e["snapshot"]["file"]).read_bytes()
                new = (_rules(e["declaration"].get("select")), _rules(e["declaration"].get("remove")))
                if new != rules:
                    if rules is not None:
                        remove_watch(archive, url, actor="tester")
                    add_watch(archive, url, entity=e["service"], document=e["terms_type"], every="1d",
                              select=new[0], remove=new[1], actor="tester")
                    rules = new
                run_watches(archive, passphrase=lambda: None, urls=[url], actor="tester")
    return urls


@pytest.fixture(scope="module")
def corpus_store(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    if not (CORPUS / "manifest.json").is_file():
        pytest.skip("../shared/corpus is not beside the checkout")
    archive, _ = Archive.init(tmp_path_factory.mktemp("fts") / "store", operator="Corpus")
    archive.config.set("capture.allow_private", "true")
    _watch_all(archive)
    return archive


def _section_text(archive: Archive, record_id: str, index: int) -> str:
    with archive.catalog.reader() as d:
        row = d.one("SELECT heading, body FROM fulltext_sections WHERE record_id=? AND section=?", (record_id, index))
    assert row is not None
    return f"{row[0]}\n{row[1]}"


def _stems(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"\w+", text)}


@NO_CORPUS
def test_three_queries_on_the_corpus_rank_sections_that_hold_every_word(corpus_store: Archive,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    archive = corpus_store
    archive.fulltext.sync()  # (each watch run brought the index up to date already)
    sections, records, _ = ft.counts(archive.catalog)
    assert records == 39 and sections > 900  # every version of every document
    lines: list[str] = []
    for q in QUERIES:
        report = archive.fulltext.search(q, limit=10)
        assert len(report.hits) == 10, q
        assert report.pending_events == 0
        scores = [h.score for h in report.hits]
        assert scores == sorted(scores, reverse=True)
        words = [w for t in ft.terms(q) for w in t]
        entities = set()
        for n, h in enumerate(report.hits, 1):
            text = _section_text(archive, h.record_id, h.section_index)
            have = _stems(text)
            for w in words:  # every word, allowing the stemmer's endings (opt ~ opting, account ~ accounts)
                assert any(x.startswith(w[:5]) for x in have), (q, w, h.record_id, h.section)
            assert h.highlights and all(h.snippet[a:b].strip() for a, b in h.highlights)
            marked = " ".join(h.snippet[a:b].lower() for a, b in h.highlights)
            assert any(w[:4] in marked for w in words), (q, marked)
            if q.startswith('"'):  # a phrase: the words adjacent, in order
                assert "law enforcement" in " ".join(text.lower().split()), h.record_id
            entities.add(h.entity)
            lines.append(f"{q!s:22} {n:2}. {h.entity} / {h.document} § {h.section[:60]}  ({h.record_id})")
        assert len(entities) >= 3, (q, entities)  # "how every service words it": not one document's sections
    with capsys.disabled():
        print("\n" + "\n".join(lines))


@NO_CORPUS
def test_filters_collapse_and_latest(corpus_store: Archive) -> None:
    archive = corpus_store
    archive.fulltext.sync()
    all_hits = archive.fulltext.search("opt out", limit=50).hits
    assert all(h.entity == "GitHub" for h in archive.fulltext.search("opt out", entity="GitHub", limit=50).hits)
    # one unchanged section of one URL is one hit, however many versions hold it
    keys = [(h.url, _section_text(archive, h.record_id, h.section_index)) for h in all_hits]
    assert len(keys) == len(set(keys))
    assert any(h.versions == 3 for h in all_hits)
    latest = archive.fulltext.search("opt out", latest=True, limit=50).hits
    with archive.catalog.reader() as d:
        tips = {r[0] for r in d.rows("SELECT last_record FROM documents")}
    assert latest and {h.record_id for h in latest} <= tips
    assert {h.record_id for h in all_hits} - tips  # older versions are found without --latest


@NO_CORPUS
def test_cli_search_json_and_text(corpus_store: Archive, cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("search", "delete your account", "--json", "-n", "3", "--store", str(corpus_store.root))
    assert r.code == 0, r.err
    body = json.loads(r.out)
    assert body["query"] == "delete your account" and len(body["hits"]) == 3
    assert set(body["hits"][0]) >= {"record_id", "url", "entity", "document", "section", "snippet", "highlights"}
    r = cli("search", "delete your account", "-n", "2", "--store", str(corpus_store.root))
    assert r.code == 0 and "§" in r.out and "2 hit(s)" in r.out


def test_a_rederived_main_text_replaces_the_record_sections(archive: Archive, site: Any) -> None:

    # captured without the document's own text: indexed from the whole page's text until it is derived
    rid = archive.capture(site.base_url + "/terms", CaptureOptions(main_content=False)).record_id
    first = archive.fulltext.sync()
    assert first.records == 1 and first.sections >= 1
    assert archive.fulltext.sync().records == 0  # nothing new: nothing read again
    with archive.catalog.reader() as d:
        before = d.rows("SELECT heading FROM fulltext_sections WHERE record_id=? ORDER BY section", (rid,))
    # derive the main-text with a rule that keeps only the first section: the index follows
    assert archive.derive([rid], select=("h2:first-of-type", "h2:first-of-type + p"), actor="tester")[0].outcome \
        == "derived"
    assert archive.fulltext.sync().records == 1
    with archive.catalog.reader() as d:
        after = d.rows("SELECT heading FROM fulltext_sections WHERE record_id=? ORDER BY section", (rid,))
    assert after != before and len(after) <= len(before)
    if archive.catalog.backend == "sqlite":  # the FTS5 index forgot the replaced rows' words
        db = sqlite3.connect(archive.root / "catalog.sqlite3")
        db.execute("INSERT INTO fulltext(fulltext) VALUES ('integrity-check')")  # raises on a stale index


@pytest.mark.parametrize("catalog", ["sqlite", "postgresql"], indirect=True)
def test_search_on_each_catalog_backend(archive: Archive, site: Any) -> None:
    """The same question on SQLite's FTS5 and PostgreSQL's tsvector: same hits, words marked."""
    archive.capture(site.base_url + "/privacy", CaptureOptions(entity="Example"))
    archive.capture(site.base_url + "/terms", CaptureOptions(entity="Other"))
    archive.fulltext.sync()
    got = archive.fulltext.search("personal data", limit=5)
    assert [(h.entity, h.section) for h in got.hits][:1] == [("Other", "2. Personal data")], got
    for h in got.hits:
        marked = " ".join(h.snippet[a:b].lower() for a, b in h.highlights)
        assert "personal" in marked or "data" in marked
    assert archive.fulltext.search('"delete your account"').hits[0].section == "1. Accounts"
    assert not archive.fulltext.search('"account delete"').hits  # a phrase keeps its order
    assert not archive.fulltext.search("personal data", entity="Nobody").hits
    assert not archive.fulltext.search("zyxwvut").hits


@pytest.mark.parametrize("query", ['"', "- * : ^", "NEAR(a b) AND OR NOT", 'x" OR "y', "col:value", "a" * 400])
def test_query_syntax_from_a_user_never_errors(archive: Archive, site: Any, query: str) -> None:
    archive.capture(site.base_url + "/privacy")
    archive.fulltext.sync()
    if not ft.terms(query):
        with pytest.raises(Exception, match="no words"):
            archive.fulltext.search(query)
    else:
        assert isinstance(archive.fulltext.search(query), SearchReport)


def test_bad_queries_are_one_line_exit_2(archive: Archive, cli) -> None:  # type: ignore[no-untyped-def]
    for args, msg in ((["   "], "no words"), (["x" * 501], "at most 500"), (["a " * 40], "40 terms; at most 32"),
                      (["ok", "-n", "0"], "")):
        r = cli("search", *args, "--store", str(archive.root))
        assert r.code == 2, (args, r.out, r.err)
        assert msg in r.err
        assert len(r.err.strip().splitlines()) <= 2


def test_api_and_page_are_viewer_reads_that_write_nothing(archive: Archive, site: Any) -> None:
    archive.capture(site.base_url + "/terms", CaptureOptions(entity="Example"))
    archive.fulltext.sync()
    viewer = create_token(archive, "v", "viewer", actor="tester").token
    app = create_app(archive, start_jobs=False)  # (making the app may write: its session key)
    db = sqlite3.connect(archive.root / "catalog.sqlite3")
    version = db.execute("PRAGMA data_version").fetchone()
    custody = (archive.root / "custody.log").read_bytes()
    with TestClient(app) as c:
        assert c.get("/api/v1/search", params={"q": "personal"}).status_code == 401
        h = {"Authorization": f"Bearer {viewer}"}
        r = c.get("/api/v1/search", params={"q": "personal data"}, headers=h)
        assert r.status_code == 200 and r.json()["hits"]
        bad = c.get("/api/v1/search", params={"q": "  "}, headers=h)
        assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem+json")
        page = c.get("/search", params={"q": "personal data"}, headers=h)
        assert page.status_code == 200 and "<mark>" in page.text
        bad_page = c.get("/search", params={"q": '"" -'}, headers=h)
        assert bad_page.status_code == 400 and "no words" in bad_page.text and "<form" in bad_page.text
    assert db.execute("PRAGMA data_version").fetchone() == version
    assert (archive.root / "custody.log").read_bytes() == custody


def test_search_page_in_chromium_has_no_serious_axe_violation(archive: Archive, site: Any) -> None:
    pw_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("Debian chromium is not installed (make test installs it)")
    from axe_playwright_python.sync_playwright import Axe

    from tests.live_server import LiveServer

    archive.capture(site.base_url + "/privacy", CaptureOptions(entity="Example"))
    archive.capture(site.base_url + "/terms", CaptureOptions(entity="Other"))
    viewer = create_token(archive, "v", "viewer", actor="tester").token
    with LiveServer(create_app(archive, refresh_every=3600)) as srv, pw_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(srv.base_url + "/login")
        page.get_by_label("Access token").fill(viewer)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(srv.base_url + "/")
        page.get_by_role("link", name="Search", exact=True).click()
        page.get_by_label('Words, or "a phrase" in quotes').fill("personal data")
        for _ in range(40):  # the server's job pool indexes the two captures within FULLTEXT_EVERY seconds
            page.get_by_role("button", name="Search").click()
            page.wait_for_load_state()
            if page.locator("ol.hits > li").count():
                break
            page.wait_for_timeout(250)
        assert page.locator("ol.hits > li").count() >= 1
        assert page.locator("ol.hits mark").count() >= 1
        violations = [f"{v['id']} ({v['impact']})" for v in Axe().run(page).response["violations"]
                      if v.get("impact") in ("serious", "critical")]
        assert violations == []
        page.get_by_label('Words, or "a phrase" in quotes').fill("   x   ")
        page.get_by_role("button", name="Search").click()
        assert page.locator("ol.hits > li").count() == 0
        browser.close()


@pytest.mark.parametrize("catalog", ["sqlite", "postgresql"], indirect=True)
def test_two_syncs_at_once_index_each_record_once(archive: Archive, site: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Review of issue 31: on PostgreSQL (READ COMMITTED) two syncs whose transactions overlapped both
    passed the position check and indexed the same record twice (6 rows for 3 sections, counts doubled,
    "same text in 2 versions"). A barrier holds each sync just after its check, as chance would."""
    import threading

    from store import fulltext as ft

    rid = archive.capture(site.base_url + "/terms", CaptureOptions(entity="Other")).record_id
    barrier, real = threading.Barrier(2, timeout=3), ft.replace_record

    def held(*a: Any) -> Any:
        try:
            barrier.wait()  # both syncs are past their check (on SQLite the second waits at BEGIN instead)
        except threading.BrokenBarrierError:
            pass
        return real(*a)

    monkeypatch.setattr(ft, "replace_record", held)
    threads = [threading.Thread(target=lambda: Archive.open(archive.root).fulltext.sync()) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    with archive.catalog.db() as d:
        rows = d.one("SELECT COUNT(*), COUNT(DISTINCT section) FROM fulltext_sections WHERE record_id=?", (rid,))
    assert rows is not None and rows[0] == rows[1], rows
    assert ft.counts(archive.catalog)[:2] == (rows[1], 1)
    assert [h.versions for h in archive.fulltext.search('"delete your account"').hits] == [1]


def test_a_capture_whose_selector_matched_nothing_is_not_searched(archive: Archive) -> None:
    """Review of issue 31: a selector-missed capture (no main-text) was indexed with its whole page, so
    its menus and footer answered queries, and ``--latest`` answered with it instead of the document."""
    from archiver.monitor import run_watches

    page: dict[str, bytes] = {}

    def html(container: str, nav: str) -> bytes:
        return (f"<html><body><nav><h2>Site navigation</h2>{nav}</nav><div id='{container}'><h1>Terms</h1>"
                "<h2>1. Data</h2><p>We keep your data for training models.</p></div></body></html>").encode()

    with SampleSite({"/t": lambda h: send(h, 200, page["t"], "text/html; charset=utf-8")}) as s:
        archive.watches.add(s.base_url + "/t", entity="E", document="Terms", every="1d", select=("#doc",),
                            actor="tester")
        page["t"] = html("doc", "Home | Pricing")
        first = run_watches(archive, passphrase=lambda: None, actor="tester").results[0]
        page["t"] = html("policy", "Home | Pricing | Careers")  # the site renamed its container
        missed = run_watches(archive, passphrase=lambda: None, actor="tester").results[0]
    assert (first.outcome, missed.outcome) == ("new", "selector-missed")
    archive.fulltext.sync()
    assert not archive.fulltext.search("careers").hits  # only the missed capture's menu says it
    assert {h.record_id for h in archive.fulltext.search("training").hits} == {first.record_id}
    # --latest: the document's last version, not the newest capture (which is not the document)
    assert [h.record_id for h in archive.fulltext.search("training", latest=True).hits] == [first.record_id]


def test_a_sync_before_the_run_logs_a_missed_capture_does_not_keep_it(archive: Archive,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Review of issue 31: a sync between a capture's commit and the run's ``selector-missed`` log row
    (a server's job pool, by chance) indexed its whole page for good; the run now drops it after."""
    from archiver.monitor import run_watches
    from store.catalog import Catalog

    page = {"t": b"<html><body><nav>Home</nav><div id='doc'><h2>1. Data</h2><p>We keep data.</p></div></body></html>"}
    with SampleSite({"/t": lambda h: send(h, 200, page["t"], "text/html; charset=utf-8")}) as s:
        archive.watches.add(s.base_url + "/t", entity="E", document="Terms", every="1d", select=("#doc",),
                            actor="tester")
        run_watches(archive, passphrase=lambda: None, actor="tester")
        page["t"] = b"<html><body><nav>Home | Careers</nav><div id='policy'><p>We keep data.</p></div></body></html>"
        real = Catalog.record_watch_run

        def synced_first(self: Catalog, *a: Any) -> None:
            Archive.open(archive.root).fulltext.sync()
            real(self, *a)

        monkeypatch.setattr(Catalog, "record_watch_run", synced_first)
        missed = run_watches(archive, passphrase=lambda: None, actor="tester").results[0]
    assert missed.outcome == "selector-missed"
    assert not archive.fulltext.search("careers").hits
    with archive.catalog.db() as d:
        n = d.one("SELECT COUNT(*) FROM fulltext_sections")
    assert n is not None and archive.fulltext.search("data").indexed_sections == n[0]


def test_a_sync_with_a_time_bound_does_one_batch_and_says_what_is_left(archive: Archive, site: Any,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A store upgraded with many records to index: a bounded sync does at least one batch, the search
    says how far behind the index is, and the next syncs catch up."""
    import archiver.fulltext as fulltext

    for path in ("/privacy", "/terms"):
        archive.capture(site.base_url + path)
    monkeypatch.setattr(fulltext, "SYNC_BATCH", 1)
    first = archive.fulltext.sync(seconds=0)
    assert first.records == 1
    behind = archive.fulltext.search("privacy").pending_events
    assert behind >= 1
    archive.fulltext.sync()
    assert archive.fulltext.search("privacy").pending_events == 0
