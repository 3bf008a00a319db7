"""Declarations that stay true (issue 31, point 1): ``watch update`` with a history, like-for-like
comparison after a change of rules, a selector that matches nothing, OTA ``*.history.json``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archiver.api import Archive
from archiver.demo.server import SampleSite, send

PAGE: dict[str, bytes] = {}
#: the declaration table and the run log through both catalogs' SQL
BOTH_CATALOGS = pytest.mark.parametrize("catalog", ["sqlite", "postgresql"], indirect=True)


def _page(doc_id: str, body: str, *, nav: str = "Home | Pricing | Blog") -> bytes:
    return (f"<html><body><nav>{nav}</nav><div id='{doc_id}'><h1>Terms</h1>{body}</div>"
            "<footer>Copyright 2026</footer></body></html>").encode()


@pytest.fixture
def page_site() -> Iterator[SampleSite]:
    PAGE.clear()
    routes: dict[str, Any] = {"/terms": lambda h: send(h, 200, PAGE["terms"], "text/html; charset=utf-8")}
    with SampleSite(routes) as s:
        yield s


def _run(cli: Any, *s: str) -> tuple[int, dict[str, Any]]:
    r = cli("watch", "run", "--json", *s)
    return r.code, json.loads(r.out)["results"][0]


@BOTH_CATALOGS
def test_update_keeps_history_and_a_change_of_rules_alone_is_not_a_version(archive: Archive, page_site: SampleSite,
                                                                          cli: Any) -> None:
    s = ["--store", str(archive.root)]
    url = page_site.base_url + "/terms"
    PAGE["terms"] = _page("doc", "<h2>1. Data</h2><p>We keep your data.</p>")
    assert cli("watch", "add", url, "--select", "body", *s).code == 0  # page chrome included: a poor declaration
    code, first = _run(cli, *s)
    assert code == 10 and first["outcome"] == "new"

    r = cli("watch", "update", url, "--select", "#doc", "--json", *s)
    assert r.code == 0, r.err
    up = json.loads(r.out)
    assert up["version"] == 2 and up["changed"] == ["select"] and up["select"] == ["#doc"]
    assert up["previous_record_id"] == first["record_id"] and up["rederived"].startswith("main-text.")
    # the previous version's text under the new rules: a signed derived addendum, the record's own text kept
    blobs = archive.catalog.record_blobs(first["record_id"])
    assert "main-text" in blobs and blobs[up["rederived"]] == up["rederived_sha256"]
    derived = [a for _, a in archive.addenda(first["record_id"], "derived") if a and a.derived]
    assert [a.derived.name for a in derived if a.derived] == [up["rederived"]]
    text = archive.blobs.read_bytes(up["rederived_sha256"]).decode()
    assert "We keep your data." in text and "Pricing" not in text and "Copyright" not in text
    assert archive.verify(first["record_id"]).ok  # the addendum verifies, made again from the content
    checks = {c.name: c.status.value for c in archive.verify(first["record_id"]).checks}
    assert [v for k, v in checks.items() if up["rederived"] in k and "derivation" not in k] == ["PASS"], checks
    bundle = archive.root.parent / "b.wacz"
    archive.bundles.export([first["record_id"]], bundle, passphrase=lambda: None, actor="tester")
    reports = archive.bundles.verify(bundle, archive.bundles.trust([]))
    assert all(v.ok for v in reports), [(v.subject, c) for v in reports for c in v.checks if c.status.value == "FAIL"]
    assert any(up["rederived"] in c.name for v in reports for c in v.checks)  # it travels with the record

    entries = [e for e in archive.custody.entries() if e.event == "watch-update"]
    assert len(entries) == 1 and entries[0].detail["url"] == url and entries[0].actor
    assert json.loads(entries[0].detail["rules"]) == {"remove": [], "select": ["#doc"]}
    decls = json.loads(cli("watch", "declarations", url, "--json", *s).out)
    assert [(d["version"], d["select"], d["source"]) for d in decls] == [(1, ["body"], "watch-add"),
                                                                       (2, ["#doc"], "watch-update")]
    assert decls[0]["valid_until"] == decls[1]["valid_from"] and decls[1]["valid_until"] is None
    assert decls[1]["actor"] == entries[0].actor

    PAGE["terms"] = _page("doc", "<h2>1. Data</h2><p>We keep your data.</p>", nav="Home | Careers")  # chrome only
    code, second = _run(cli, *s)
    assert code == 0 and second["outcome"] == "unchanged" and second["previous_record_id"] == first["record_id"]
    hist = json.loads(cli("history", url, "--json", *s).out)
    assert len(hist["versions"]) == 1 and hist["changes"] == 0  # the change of rules made no version

    PAGE["terms"] = _page("doc", "<h2>1. Data</h2><p>We sell your data.</p>")
    code, third = _run(cli, *s)
    assert code == 10 and third["outcome"] == "changed" and third["sections"] == ["1. Data"]
    d = json.loads(cli("diff", first["record_id"], third["record_id"], "--format", "json", *s).out)
    assert [c["heading_b"] for c in d["sections"] if c["status"] != "unchanged"] == ["1. Data"]
    assert len(json.loads(cli("history", url, "--json", *s).out)["versions"]) == 2

    r = cli("watch", "update", url, "--every", "12h", "--entity", "Example", "--json", *s)
    assert r.code == 0 and json.loads(r.out)["changed"] == ["every", "entity"]
    assert json.loads(r.out)["rederived"] is None  # same rules: nothing to make again
    w = json.loads(cli("watch", "list", "--json", *s).out)[0]
    assert (w["interval_s"], w["entity"], w["select"]) == (43200, "Example", ["#doc"])


@BOTH_CATALOGS
def test_selector_that_matches_nothing_is_never_a_version(archive: Archive, page_site: SampleSite,
                                                          cli: Any) -> None:
    s = ["--store", str(archive.root)]
    url = page_site.base_url + "/terms"
    PAGE["terms"] = _page("doc", "<h2>1. Data</h2><p>We keep your data.</p>")
    assert cli("watch", "add", url, "--select", "#doc", *s).code == 0
    _, first = _run(cli, *s)

    PAGE["terms"] = _page("policy", "<h2>1. Data</h2><p>We sell your data.</p>")  # the site renamed its container
    for _ in range(2):  # reported on every run until the declaration is fixed
        code, res = _run(cli, *s)
        assert code == 11, res
        assert res["outcome"] == "selector-missed" and res["missed_selector"] == "#doc"
        assert "'#doc' matches nothing" in res["error"] and res["previous_record_id"] == first["record_id"]
        assert archive.resolve(res["record_id"]).url == url  # the capture is kept as evidence
        assert res["sections"] == []
    text = cli("watch", "run", *s)
    assert text.code == 11 and "selector-missed" in text.out and "#doc" in text.out
    hist = json.loads(cli("history", url, "--json", *s).out)
    assert len(hist["versions"]) == 1 and hist["versions"][0]["record_ids"] == [first["record_id"]]
    assert [f["outcome"] for f in hist["failed_runs"]] == ["selector-missed"] * 3
    assert all("#doc" in f["detail"] for f in hist["failed_runs"])

    # fixed: the next run compares with the last capture that was a version
    r = cli("watch", "update", url, "--select", "#policy", "--json", *s)
    assert r.code == 0 and json.loads(r.out)["previous_record_id"] == first["record_id"]
    code, fixed = _run(cli, *s)
    assert code == 10 and fixed["outcome"] == "changed" and fixed["previous_record_id"] == first["record_id"]
    assert fixed["sections"] == ["1. Data"]
    assert len(json.loads(cli("history", url, "--json", *s).out)["versions"]) == 2


def test_a_range_whose_end_is_missing_is_named(archive: Archive, page_site: SampleSite, cli: Any) -> None:
    s = ["--store", str(archive.root)]
    url = page_site.base_url + "/terms"
    PAGE["terms"] = _page("doc", "<h2>1. Data</h2><p>We keep your data.</p><p id='end'>Contact us.</p>")
    rule = json.dumps({"startBefore": "h1", "endBefore": "#end"})
    assert cli("watch", "add", url, "--select", rule, *s).code == 0
    assert _run(cli, *s)[1]["outcome"] == "new"
    PAGE["terms"] = _page("doc", "<h2>1. Data</h2><p>We keep your data.</p><p>Contact us.</p>")
    code, res = _run(cli, *s)
    assert code == 11 and res["outcome"] == "selector-missed" and res["missed_selector"] == "#end"
    assert "range" in res["error"]


def test_bad_declaration_input(archive: Archive, page_site: SampleSite, cli: Any) -> None:
    s = ["--store", str(archive.root)]
    url = page_site.base_url + "/terms"
    r = cli("watch", "update", url, "--select", "main", *s)
    assert r.code == 2 and "is not watched" in r.err and "Traceback" not in r.err
    assert cli("watch", "add", url, "--select", "div[[", *s).code == 2  # refused before it is saved
    assert cli("watch", "add", url, "--select", "main", *s).code == 0
    for bad in (["--select", "div[["], ["--select", '{"startBefore": "h1"}'], ["--select", "{not json"],
                ["--remove", "p::nonsense("], ["--every", "soon"]):
        r = cli("watch", "update", url, *bad, *s)
        assert r.code == 2 and r.err.startswith("error:"), (bad, r.err)
    r = cli("watch", "update", url, *s)
    assert r.code == 2 and "nothing to change" in r.err
    assert [d["select"] for d in json.loads(cli("watch", "declarations", url, "--json", *s).out)] == [["main"]]
    assert not [e for e in archive.custody.entries() if e.event == "watch-update"]
    r = cli("watch", "declarations", page_site.base_url + "/other", *s)
    assert r.code == 2 and "never been watched" in r.err


def test_import_ota_reads_the_history(archive: Archive, page_site: SampleSite, cli: Any, tmp_path: Path) -> None:
    """OTA's real shapes (demo-declarations ``npm Public Registry.json`` and ``.history.json``, URLs local)."""
    s = ["--store", str(archive.root)]
    url = page_site.base_url + "/terms"
    other = page_site.base_url + "/open-source-terms"
    decl = {"name": "npm Public Registry", "terms": {
        "Privacy Policy": {"fetch": url, "select": {"startBefore": "h1", "endBefore": "#toc-heading"},
                           "remove": "details"}}}
    history = {"Privacy Policy": [
        {"fetch": url, "select": "#skip-nav", "remove": "details", "validUntil": "2023-10-23T12:30:05Z"}],
        "Terms of Service": [
        {"fetch": url, "select": "#skip-nav", "remove": "details", "validUntil": "2023-10-23T12:30:05Z"},
        {"fetch": other, "select": ["main"], "remove": ["nav", "details"], "validUntil": "2026-01-15T00:30:15Z"}]}
    (tmp_path / "npm Public Registry.json").write_text(json.dumps(decl))
    (tmp_path / "npm Public Registry.history.json").write_text(json.dumps(history))
    r = cli("watch", "import-ota", str(tmp_path / "npm Public Registry.json"), "--json", *s)
    assert r.code == 0, r.err
    w = json.loads(r.out)[0]
    assert w["select"] == [json.dumps({"endBefore": "#toc-heading", "startBefore": "h1"}, sort_keys=True)]
    decls = json.loads(cli("watch", "declarations", url, "--json", *s).out)
    assert [(d["version"], d["select"], d["remove"], d["valid_from"], d["valid_until"], d["source"])
            for d in decls] == [
        (1, ["#skip-nav"], ["details"], None, "2023-10-23T12:30:05Z", "ota-history"),
        (2, w["select"], ["details"], "2023-10-23T12:30:05Z", None, "ota")]
    add = [e for e in archive.custody.entries() if e.event == "watch-add"]
    assert len(add) == 1 and add[0].detail["history"] == "1"
    r = cli("watch", "import-ota", str(tmp_path / "npm Public Registry.history.json"), *s)
    assert r.code == 2 and "is a history" in r.err
    (tmp_path / "bad.json").write_text(json.dumps(decl))
    (tmp_path / "bad.history.json").write_text(json.dumps({"Privacy Policy": [{"select": "main"}]}))
    r = cli("watch", "import-ota", str(tmp_path / "bad.json"), *s)
    assert r.code == 2 and "validUntil" in r.err


def test_api_updates_a_watch_with_the_same_library_call(archive: Archive, page_site: SampleSite) -> None:
    from fastapi.testclient import TestClient

    from archiver.access import create_token
    from archiver.web import create_app

    url = page_site.base_url + "/terms"
    PAGE["terms"] = _page("doc", "<h2>1. Data</h2><p>We keep your data.</p>")
    archive.watches.add(url, entity=None, document=None, every="1d", select=("body",), actor="tester")
    archive.watches.run(passphrase=lambda: None, actor="tester")
    cap = create_token(archive, "api-capturer", "capturer", actor="tester").token
    view = create_token(archive, "api-viewer", "viewer", actor="tester").token
    app = create_app(archive, start_jobs=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        def patch(token: str, **body: Any) -> Any:
            return client.patch("/api/v1/watches", json=body, headers={"Authorization": f"Bearer {token}"})

        assert patch(view, url=url, select=["#doc"]).status_code == 403
        r = patch(cap, url=url, select=["#doc"])
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 2 and r.json()["rederived"].startswith("main-text.")
        assert patch(cap, url=page_site.base_url + "/nope", select=["#doc"]).status_code == 404
        assert patch(cap, url=url, select=["div[["]).status_code == 400
        assert patch(cap, url=url, select=["x" * 3000]).status_code == 422
    entry = [e for e in archive.custody.entries() if e.event == "watch-update"]
    assert len(entry) == 1 and entry[0].actor == "api-capturer"  # the token's name, as the CLI names the operator
    assert [d.source for d in archive.watches.declarations(url)] == ["watch-add", "watch-update"]
    assert archive.watches.run(passphrase=lambda: None, actor="tester").results[0].outcome == "unchanged"


def test_derive_uses_the_declaration_in_force_at_capture(archive: Archive, page_site: SampleSite, cli: Any) -> None:
    """The history says which rules applied when: ``derive`` of an older record uses those."""
    from archiver.monitor.declarations import rules_at

    s = ["--store", str(archive.root)]
    url = page_site.base_url + "/terms"
    PAGE["terms"] = _page("doc", "<h2>1. Data</h2><p>We keep your data.</p>")
    assert cli("watch", "add", url, "--select", "body", *s).code == 0
    old = archive.capture(url).record_id  # a plain capture: no main-text
    assert cli("watch", "update", url, "--select", "#doc", *s).code == 0
    r = cli("derive", old, "--json", *s)
    assert r.code == 0, r.err
    made = [a.derived for _, a in archive.addenda(old, "derived") if a and a.derived]
    # its own text under the rules of its time; beside it, the update's text under the new rules
    assert sorted((d.name.split(".")[0], d.main_text.select) for d in made) == [("main-text", ("#doc",)),
                                                                                 ("main-text", ("body",))]
    assert [d.main_text.select for d in made if d.name == "main-text"] == [("body",)]
    assert rules_at(archive, url, "2001-01-01T00:00:00Z") is None  # before the watch: none
    assert rules_at(archive, url, archive.resolve(old).captured_at) == (("body",), ())


def test_history_valid_until_is_checked_and_a_plain_date_is_utc(archive: Archive) -> None:
    """Review of issue 31: any string was kept as a validUntil; every later ``derive`` of that URL then
    crashed in ``rules_at`` (TypeError for "2020-01-01", ValueError for "not a date")."""
    from archiver.errors import UsageError
    from archiver.monitor.declarations import ota_history, rules_at

    url = "http://127.0.0.1:9/terms"
    with pytest.raises(UsageError, match="validUntil"):
        ota_history({"Terms": [{"fetch": url, "select": "body", "validUntil": "not a date"}]}, "Terms", url)
    decl = {"name": "Svc", "terms": {"Terms": {"fetch": url, "select": "#doc"}}}
    archive.watches.import_ota(decl, actor="tester",
                               history={"Terms": [{"fetch": url, "select": "body", "validUntil": "2020-01-01"}]})
    assert rules_at(archive, url, "2019-12-31T23:59:59.000Z") == (("body",), ())
    assert rules_at(archive, url, "2020-01-01T00:00:01.000Z") == (("#doc",), ())


def test_a_watch_run_derives_an_old_record_by_the_rules_of_its_time(archive: Archive, page_site: SampleSite,
                                                                    cli: Any) -> None:
    """Review of issue 31: a run meeting an older record without main-text made that record's own
    main-text with the watch's current rules, where ``archiver derive`` uses the rules in force when
    it was captured: the record's own text depended on which command came first."""
    s = ["--store", str(archive.root)]
    url = page_site.base_url + "/terms"
    PAGE["terms"] = _page("doc", "<h2>1. Data</h2><p>We keep your data.</p>")
    assert cli("watch", "add", url, "--select", "body", *s).code == 0
    old = archive.capture(url).record_id  # a plain capture: no main-text, "body" in force
    assert cli("watch", "update", url, "--select", "#doc", *s).code == 0
    code, res = _run(cli, *s)
    assert code == 0, res
    assert res["outcome"] == "unchanged" and res["previous_record_id"] == old, res  # like for like, under #doc
    own = [a.derived.main_text.select for _, a in archive.addenda(old, "derived")
           if a and a.derived and a.derived.name == "main-text"]
    assert own == [("body",)]
