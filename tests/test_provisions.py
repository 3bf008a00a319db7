"""Provisions: pinning a clause, re-finding it after each watch run, showing, citing, serving, refusing.

A local page changes between watch runs (one clause edited, one moved to another section, one deleted),
and a run's ``provisions`` are what ``run_watches`` found when it called ``provisions.recheck`` at its end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient

from archiver.access import create_token
from archiver.api import Archive
from archiver.demo.server import SampleSite, send
from archiver.errors import NotFoundError, QuoteNotFoundError, UsageError
from archiver.models import schemas
from archiver.monitor import run_watches
from archiver.provenance.ids import is_record_id, new_record_id
from archiver.provisions import MAX_LABEL, is_provision_id, new_provision_id, normalize_provision_id, recheck
from archiver.web import create_app

COLLECT = "We collect your name and e-mail address when you sign up."
SELL = "We never sell your personal data to advertisers."
DELETE = "You may ask us to delete your account at any time."
SELL_2 = "We never sell or rent your personal data to advertisers or data brokers."


def page(data: str, sharing: str, rights: str) -> bytes:
    return (f"<html><head><title>Privacy</title></head><body><main><h1>Privacy Policy</h1>"
            f"<h2>1. Data</h2><p>{data}</p><h2>2. Sharing</h2><p>{sharing}</p>"
            f"<h2>3. Rights</h2><p>{rights}</p></main></body></html>").encode()


@pytest.fixture()
def doc() -> Iterator[dict[str, Any]]:
    state: dict[str, Any] = {"body": page(COLLECT, SELL, DELETE)}
    with SampleSite({"/policy": lambda h: send(h, 200, state["body"], "text/html; charset=utf-8")}) as site:
        state["url"] = site.base_url + "/policy"
        yield state


def _run(archive: Archive, doc: dict[str, Any], body: bytes | None = None) -> tuple[str, dict[str, Any]]:
    if body is not None:
        doc["body"] = body
    summary = run_watches(archive, passphrase=lambda: None, actor="tester", urls=[doc["url"]])
    checks = {c.provision_id: c for c in summary.provisions}  # the run re-found them itself
    rid = summary.results[0].record_id
    assert rid, summary
    return rid, checks


def _pin_three(archive: Archive, doc: dict[str, Any]) -> tuple[str, str, str, str]:
    archive.watches.add(doc["url"], entity="Example Inc.", document="Privacy Policy", every="1d", actor="tester")
    rid, checks = _run(archive, doc)
    assert checks == {}
    a = archive.provisions.add(rid, COLLECT, label="What is collected", actor="tester").provision_id
    b = archive.provisions.add(rid, "We never sell your  personal data", actor="tester").provision_id  # spacing
    c = archive.provisions.add(rid, DELETE, actor="tester").provision_id
    return rid, a, b, c


def test_provision_ids_are_their_own_form() -> None:
    pid = new_provision_id()
    assert pid.startswith("P-") and len(pid) == 11 and is_provision_id(pid) and not is_record_id(pid)
    rid = new_record_id()
    assert not is_provision_id(rid) and not is_provision_id(rid.replace("-", ""))
    assert normalize_provision_id("p 1o2l-abcd") == "P-1021-ABCD"  # look-alikes, case and spacing forgiven
    for bad in ("P-1234-567", "Q-1234-5678", "P-1234-567U", ""):
        with pytest.raises(UsageError):
            normalize_provision_id(bad)


@pytest.mark.parametrize("catalog", ["sqlite", "postgresql"], indirect=True)
def test_each_run_refinds_every_provision(archive: Archive, doc: dict[str, Any]) -> None:
    first, a, b, c = _pin_three(archive, doc)
    pinned = archive.provisions.get(b)
    assert (pinned.status, pinned.section, pinned.text, pinned.entity) == \
        ("pinned", "2. Sharing", "We never sell your personal data", "Example Inc.")

    same, checks = _run(archive, doc)  # nothing changed: every clause verified again
    assert {p: c.status for p, c in checks.items()} == {a: "unchanged", b: "unchanged", c: "unchanged"}
    assert archive.provisions.get(a).last_verified == archive.resolve(same).captured_at

    # the sharing clause is edited, the data clause moves to the rights section, the rights clause goes
    changed, checks = _run(archive, doc, page("Nothing here.", SELL_2, COLLECT))
    assert {p: c.status for p, c in checks.items()} == {a: "moved", b: "changed", c: "removed"}
    assert checks[a].section == "3. Rights" and checks[a].text == COLLECT
    assert checks[b].text == "We never sell or rent your personal data" and 0.6 <= checks[b].similarity < 1
    assert checks[c].text is None and checks[c].sha256 is None

    report = archive.provisions.show(b)
    assert [(v.number, v.text, v.record_id) for v in report.versions] == [
        (1, "We never sell your personal data", first), (2, "We never sell or rent your personal data", changed)]
    assert report.versions[0].last_record_id == same
    assert [(e.op, e.removed, e.added) for e in report.versions[1].edits] == [("insert", "", "or rent")]
    assert [ch.status for ch in report.checks] == ["pinned", "unchanged", "changed"]
    assert report.provision.record_id == changed and report.provision.versions == 2
    assert report.document_versions == 2
    removed = archive.provisions.get(c)
    assert removed.status == "removed" and removed.record_id == same  # the last record holding its text
    assert archive.provisions.get(a).section == "3. Rights"

    # a run's observations are appended once: calling recheck again for the same records adds nothing
    summary = run_watches(archive, passphrase=lambda: None, actor="tester", urls=[doc["url"]])
    assert len(summary.provisions) == 3
    assert recheck(archive, summary, actor="tester") == []
    assert len(archive.provisions.show(b).checks) == 4


def test_a_failed_run_or_a_page_without_main_text_is_not_an_observation(archive: Archive,
                                                                        doc: dict[str, Any]) -> None:
    from archiver.monitor import RunResult, RunSummary

    _rid, a, _b, _c = _pin_three(archive, doc)
    failed = RunSummary(started="2026-01-01T00:00:00Z", results=(RunResult(doc["url"], "failed", error="boom"),))
    assert recheck(archive, failed, actor="tester") == []
    other = archive.capture(doc["url"]).record_id  # a plain capture of the URL: no main-text
    assert recheck(archive, RunSummary("2026-01-01T00:00:00Z", (RunResult(doc["url"], "changed", other),)),
                   actor="tester") == []
    assert [c.status for c in archive.provisions.show(a).checks] == ["pinned"]


def test_cli_add_list_show_remove_and_custody(archive: Archive, doc: dict[str, Any], cli) -> None:  # type: ignore[no-untyped-def]
    s = ["--store", str(archive.root)]
    archive.watches.add(doc["url"], entity="Example Inc.", document="Privacy Policy", every="1d", actor="tester")
    rid, _ = _run(archive, doc)
    manifest, addenda = archive.manifest(rid), archive.addenda(rid)
    record_custody = [e for e in archive.custody.entries() if e.record_id == rid]
    r = cli("provision", "add", rid, "--quote", SELL, "--label", "No sale", "--json", *s)
    assert r.code == 0, r.err
    added = json.loads(r.out)
    jsonschema.validate(added, schemas()["provision"])
    pid = added["provision_id"]
    assert is_provision_id(pid) and added["label"] == "No sale" and added["section"] == "2. Sharing"
    assert added["first_tracked"] and added["record_id"] == rid
    # nothing about the record changed: same manifest, addenda and custody of its own
    assert archive.manifest(rid) == manifest and archive.addenda(rid) == addenda
    assert [e for e in archive.custody.entries() if e.record_id == rid] == record_custody

    _run(archive, doc, page(COLLECT, SELL_2, DELETE))
    r = cli("provision", "list", "--entity", "example inc.", "--json", *s)
    listed = json.loads(r.out)
    assert [p["provision_id"] for p in listed] == [pid] and listed[0]["status"] == "changed"
    assert json.loads(cli("provision", "list", "--url", doc["url"] + "/other", "--json", *s).out) == []
    shown = json.loads(cli("provision", "show", pid.lower().replace("-", ""), "--json", *s).out)
    jsonschema.validate(shown, schemas()["provision-report"])
    assert [v["text"] for v in shown["versions"]] == [SELL, SELL_2]
    text = cli("provision", "show", pid, *s).out
    assert "First tracked:" in text and "Last verified:" in text and "Version 2" in text and "+or rent" in text

    r = cli("provision", "remove", pid, *s)
    assert r.code == 0 and "no longer tracked" in r.out
    assert json.loads(cli("provision", "list", "--json", *s).out) == []
    assert json.loads(cli("provision", "show", pid, "--json", *s).out)["provision"]["active"] is False
    assert cli("provision", "remove", pid, *s).code == 2  # already untracked
    events = [(e.event, (e.detail or {}).get("provision_id")) for e in archive.custody.entries()
              if e.event.startswith("provision-")]
    assert events == [("provision-add", pid), ("provision-remove", pid)]
    adding = next(e for e in archive.custody.entries() if e.event == "provision-add")
    assert adding.record_id is None and (adding.detail or {})["record_id"] == rid and adding.actor == "Test Operator"
    # an untracked provision is no longer re-found
    summary = run_watches(archive, passphrase=lambda: None, actor="tester", urls=[doc["url"]])
    assert summary.provisions == () and recheck(archive, summary, actor="tester") == []


def test_bad_input(archive: Archive, doc: dict[str, Any], cli) -> None:  # type: ignore[no-untyped-def]
    s = ["--store", str(archive.root)]
    rid, pid, _b, _c = _pin_three(archive, doc)
    # a quote that is not in the record: exit 1 (as `cite --quote`), naming the closest sentence
    r = cli("provision", "add", rid, "--quote", "We never sell your private data", *s)
    assert r.code == 1 and "does not occur" in r.err and "We never sell your personal data to advertisers" in r.err
    with pytest.raises(QuoteNotFoundError):
        archive.provisions.add(rid, "not in it at all", actor="tester")
    # a label of 10,000 characters: refused with the limit (exit 2); the limit itself is accepted
    r = cli("provision", "add", rid, "--quote", SELL, "--label", "x" * 10_000, *s)
    assert r.code == 2 and "10,000 characters" in r.err and f"at most {MAX_LABEL}" in r.err
    assert archive.provisions.add(rid, SELL, label="y" * MAX_LABEL, actor="tester").label == "y" * MAX_LABEL
    r = cli("provision", "add", rid, "--quote", SELL, "--label", "two\nlines", *s)
    assert r.code == 2 and "one line" in r.err
    # an unknown provision ID and one that is not an ID: exit 2 with what to do
    for cmd in ("show", "remove"):
        r = cli("provision", cmd, "P-0000-0000", *s)
        assert r.code == 2 and "no provision P-0000-0000" in r.err and "provision list" in r.err
    r = cli("provision", "show", rid, *s)  # a record ID is not a provision ID
    assert r.code == 2 and "not a provision ID" in r.err
    r = cli("cite", "P-0000-0000", *s)
    assert r.code == 2 and "no provision" in r.err
    # a record without main-text cannot hold a provision
    plain = archive.capture(doc["url"]).record_id
    with pytest.raises(UsageError, match="no main-text"):
        archive.provisions.add(plain, SELL, actor="tester")
    with pytest.raises(NotFoundError):
        archive.provisions.get("P-0000-0000")
    assert next(p.provision_id for p in archive.provisions.list()) == pid


@pytest.mark.parametrize("style", ["record", "markdown", "bluebook", "apa", "chicago-note", "chicago-bib", "mla",
                                   "csl-json", "bibtex", "ris"])
def test_cite_a_provision_in_every_style(archive: Archive, doc: dict[str, Any], cli, style: str) -> None:  # type: ignore[no-untyped-def]
    s = ["--store", str(archive.root)]
    _first, _a, pid, _c = _pin_three(archive, doc)
    holder, _ = _run(archive, doc, page(COLLECT, SELL_2, DELETE))  # the current text is in the new record
    r = cli("cite", pid, "--style", style, *s)
    assert r.code == 0, r.err
    text = r.out.replace("\\", "")
    assert "We never sell or rent your personal data" in text and pid in text
    assert holder in text or holder.replace("-", "") in text
    r = cli("cite", pid, "--style", style, "--json", *s)
    body = json.loads(r.out)
    jsonschema.validate(body, schemas()["citation"])
    assert body["provision_id"] == pid and body["record_id"] == holder
    assert body["quote"]["excerpt"] == "We never sell or rent your personal data"
    assert cli("cite", pid, "--quote", "x", *s).code == 2


def test_api_and_record_page(archive: Archive, doc: dict[str, Any]) -> None:
    _rid, a, b, _c = _pin_three(archive, doc)
    changed, _ = _run(archive, doc, page(COLLECT, SELL_2, DELETE))
    token = create_token(archive, "reader", "viewer", actor="tester").token
    h = {"Authorization": f"Bearer {token}"}
    app = create_app(archive, start_jobs=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        listed = client.get("/api/v1/provisions", headers=h)
        assert listed.status_code == 200
        for item in listed.json():
            jsonschema.validate(item, schemas()["provision"])
        assert [p["provision_id"] for p in listed.json()] == [p.provision_id for p in archive.provisions.list()]
        assert client.get("/api/v1/provisions", params={"entity": "Nobody"}, headers=h).json() == []
        shown = client.get(f"/api/v1/provisions/{b}", headers=h)
        assert shown.status_code == 200
        jsonschema.validate(shown.json(), schemas()["provision-report"])
        assert shown.json() == archive.provisions.show(b).to_dict()
        missing = client.get("/api/v1/provisions/P-0000-0000", headers=h)
        assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
        assert "no provision P-0000-0000" in missing.json()["detail"]
        assert client.get("/api/v1/provisions/not-an-id", headers=h).status_code == 400
        assert client.get("/api/v1/provisions").status_code == 401
        record = client.get(f"/records/{changed}", headers=h).text
        assert 'id="provisions"' in record and f"/provisions/{a}" in record and f"/provisions/{b}" in record
        page_html = client.get(f"/provisions/{b}", headers=h).text
        assert "First tracked" in page_html and "Last verified" in page_html and "<ins>or rent </ins>" in page_html
        assert "has changed this document before" in page_html
        assert client.get("/provisions/P-0000-0000", headers=h).status_code == 404
    app.state.web.runner.shutdown(wait=True)


def test_watch_run_reports_each_provision_that_is_news(archive: Archive, doc: dict[str, Any], cli) -> None:  # type: ignore[no-untyped-def]
    """The run itself re-finds the provisions (no separate step) and says which changed, moved or went."""
    _rid, a, b, c = _pin_three(archive, doc)
    doc["body"] = page("Nothing here.", SELL_2, COLLECT)
    r = cli("watch", "run", "--store", str(archive.root))
    assert r.code == 10, r.out + r.err  # the document changed
    assert f"provision moved {a}" in r.out and f"provision changed {b}" in r.out and f"provision removed {c}" in r.out
    assert "provisions: 3 re-found, 0 unchanged" in r.out
    r = cli("watch", "run", "--json", "--store", str(archive.root))
    assert {p["provision_id"]: p["status"] for p in json.loads(r.out)["provisions"]} == \
        {a: "unchanged", b: "unchanged", c: "removed"}


@pytest.mark.parametrize(("old", "new", "clause"), [
    ("You are able to delete your account at any time.", "You are unable to delete your account at any time.",
     "able to delete your account at any time."),
    ("Our liability is limited to the fees you paid.", "Our liability is unlimited to the fees you paid.",
     "limited to the fees you paid."),
])
def test_a_clause_inside_longer_words_is_changed_not_unchanged(old: str, new: str, clause: str) -> None:
    """Review of issue 31: re-finding tested a bare substring, so "able to delete…" pinned from the first
    text was "unchanged" in "unable to delete…" (a change of meaning reported as no change)."""
    from archiver.provisions.matching import refind
    from archiver.textdiff import split_sections

    heading = {"# 4. Terms"}
    key = split_sections(f"# 4. Terms\n\n{old}\n", heading)[-1].key
    found = refind(clause, key, split_sections(f"# 4. Terms\n\n{new}\n", heading))
    assert found.status == "changed" and found.text is not None and found.text != clause, found
    same = refind(clause, key, split_sections(f"# 4. Terms\n\n{old}\n", heading))
    assert same.status == "unchanged", same


def test_citing_a_removed_provision_says_it_is_gone(archive: Archive, doc: dict[str, Any], cli) -> None:  # type: ignore[no-untyped-def]
    """Review of issue 31: a clause removed from the document was cited in the prose styles as a plain
    quotation of it (its status was only in the record block and the CSL/BibTeX fields)."""
    s = ["--store", str(archive.root)]
    _first, _a, pid, _c = _pin_three(archive, doc)
    _run(archive, doc, page(COLLECT, "Partners receive aggregated statistics only.", DELETE))
    assert archive.provisions.get(pid).status == "removed"
    for style in ("bluebook", "apa", "chicago-note", "chicago-bib", "mla"):
        r = cli("cite", pid, "--style", style, *s)
        assert r.code == 0 and "no longer in the document" in r.out, (style, r.out)
