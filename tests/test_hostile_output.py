"""Hostile names and values from a bundle (issue 28, defects 5, 6 and 8): each bundle is built here
from a genuine export and, where the case needs it, listed and signed again with the exporting
store's own keys, so the package's signature chain is intact and only the intended part is hostile.

- a custody file that is not UTF-8 / not JSON / not an object: a FAIL check (integrity) with a
  one-line reason, never a traceback; import refuses; the web answers its normal report;
- member names with rich markup or terminal escape codes: no traceback, no raw ESC on the terminal;
- record IDs that are not ours (``EVIL``, escape codes): the bundle fails, import refuses;
- a catalog row with a bad record ID: ``verify --all`` reports that record and exits 1, not 2.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from archiver.api import Archive
from archiver.demo.server import SampleSite

from .conftest import store_snapshot
from .hostile import CUSTODY, Members
from .hostile import member_map as _members
from .hostile import renamed as _renamed
from .hostile import repack as _repack
from .hostile import write_map as _write


def _export(archive: Archive, site: SampleSite, tmp: Path, cli) -> tuple[Path, str]:  # type: ignore[no-untyped-def]
    rid = archive.capture(site.base_url + "/plain").record_id
    good = tmp / "good.wacz"
    assert cli("export", rid, "-o", str(good), "--store", str(archive.root)).code == 0
    return good, rid


def _report(cli, bundle: Path, store: Path) -> dict:  # type: ignore[no-untyped-def, type-arg]
    r = cli("verify", str(bundle), "--json", "--store", str(store))
    assert r.code == 1, r.out + r.err
    return json.loads(r.out)  # type: ignore[no-any-return]


def _failed(report: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {c["name"]: c for rep in report["reports"] for c in rep["checks"] if c["status"] == "FAIL"}


def _assert_clean(run, code: int) -> None:  # type: ignore[no-untyped-def]
    text = run.out + run.err
    assert run.code == code, text
    assert "Traceback" not in text and "\x1b" not in text and "\r" not in text and "\x07" not in text, repr(text)


def _refused_everywhere(cli, archive: Archive, bad: Path, tmp: Path, check: str) -> None:  # type: ignore[no-untyped-def]
    """verify: exit 1 naming ``check``; import into a fresh store that pins the exporter's key (so
    trust is not what refuses it): exit 1, one error line, the store untouched."""
    r = cli("verify", str(bad), "--store", str(archive.root))
    _assert_clean(r, 1)
    assert check in r.out and "TAMPERED" in r.out
    other, _ = Archive.init(tmp / "other", operator="Recipient")
    signer = archive.keys.list()[0].key_id
    snap = store_snapshot(other.root)
    r = cli("import", str(bad), "--trust-key", signer, "--store", str(other.root))
    _assert_clean(r, 1)
    assert "nothing imported" in r.err and len(r.err.strip().splitlines()) == 2, r.err  # the error and its hint
    assert store_snapshot(other.root) == snap and other.list() == []


# ---- (5) custody.jsonl that cannot be read ----------------------------------------------------------
@pytest.mark.parametrize("case", list(CUSTODY))
def test_unreadable_custody_file_is_an_integrity_failure(archive: Archive, site: SampleSite, tmp_path: Path,
                                                         case: str, cli) -> None:  # type: ignore[no-untyped-def]
    good, rid = _export(archive, site, tmp_path, cli)
    bad = tmp_path / "bad.wacz"

    def change(m: Members) -> Members:
        m[f"provenance/{rid}.custody.jsonl"] = CUSTODY[case](m[f"provenance/{rid}.custody.jsonl"])
        return m
    _repack(good, bad, archive, change)
    report = _report(cli, bad, archive.root)
    assert report["verdict"] == "tampered"
    failed = _failed(report)
    assert set(failed) == {"custody.record"}, failed  # the package and its signature are intact
    c = failed["custody.record"]
    assert c["category"] == "integrity" and "\n" not in c["detail"] and "unreadable" in c["detail"], c
    _refused_everywhere(cli, archive, bad, tmp_path, "custody.record")


def test_unreadable_custody_file_on_the_web_is_a_report(archive: Archive, site: SampleSite, tmp_path: Path,
                                                        cli) -> None:  # type: ignore[no-untyped-def]


    good, rid = _export(archive, site, tmp_path, cli)
    bad = tmp_path / "bad.wacz"

    def change(m: Members) -> Members:
        m[f"provenance/{rid}.custody.jsonl"] = CUSTODY["not-utf8-in-a-string"](m[f"provenance/{rid}.custody.jsonl"])
        return m
    _repack(good, bad, archive, change)
    from tests.services import web_verify_bundle

    r = web_verify_bundle(archive, bad)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is False and body["verdict"] == "tampered"
    assert "custody.record" in {c["name"] for rep in body["reports"] for c in rep["checks"] if c["status"] == "FAIL"}


# ---- (6) names that are markup or terminal escapes ---------------------------------------------------
@pytest.mark.parametrize("name", ["[/bold]", "x\x1b[2J\x1b[Himported 1 record(s)\r\x07.txt", "\u202eevil[red]"],
                         ids=["markup", "escape-codes", "bidi"])
def test_hostile_member_names_are_shown_escaped(archive: Archive, site: SampleSite, tmp_path: Path, name: str,
                                                cli) -> None:  # type: ignore[no-untyped-def]
    good, _ = _export(archive, site, tmp_path, cli)
    bad = tmp_path / "bad.wacz"
    members = _members(good)
    members[name] = b"added after signing"  # not listed: the package check names it
    _write(bad, members)
    snap = store_snapshot(archive.root)
    r = cli("verify", str(bad), "--store", str(archive.root))
    _assert_clean(r, 1)
    assert "\u202e" not in r.out
    r = cli("verify", str(bad), "--json", "--store", str(archive.root))
    assert r.code == 1
    # JSON stays exact: the name as it is, JSON's own escapes keep the terminal safe
    details = [c["detail"] for rep in json.loads(r.out)["reports"] for c in rep["checks"]]
    assert "\x1b" not in r.out and any(name in d for d in details)
    r = cli("import", str(bad), "--store", str(archive.root))
    _assert_clean(r, 1)
    assert "\u202e" not in r.err and "nothing imported" in r.err
    assert store_snapshot(archive.root) == snap


def test_safe_escapes_controls_and_markup() -> None:
    from rich.console import Console

    from archiver.cli._common import safe

    assert safe("a\x1b[2Jb\r\x07\t\u202e") == "a\\x1b[2Jb\\r\\x07\\t\\u202e"
    console = Console(record=True, width=200, color_system=None)
    hostile = "[/bold] [red]x[/red] ends in \\"
    console.print(f"[bold]{safe(hostile)}[/]")
    assert console.export_text() == "[/bold] [red]x[/red] ends in \\\n"


# ---- (8) record IDs that are not ours --------------------------------------------------------------
@pytest.mark.parametrize("new", ["EVIL", "AB\x1b[2J-CDEF"], ids=["EVIL", "escape-codes"])
def test_record_id_not_in_our_format_is_refused(archive: Archive, site: SampleSite, tmp_path: Path, new: str,
                                                cli) -> None:  # type: ignore[no-untyped-def]
    good, rid = _export(archive, site, tmp_path, cli)
    bad = tmp_path / "bad.wacz"
    _repack(good, bad, archive, _renamed(archive, rid, new))
    report = _report(cli, bad, archive.root)
    assert report["verdict"] == "tampered"
    failed = _failed(report)
    assert set(failed) == {"record.id"}, failed  # signed, intact, listed: only the ID is wrong
    assert failed["record.id"]["category"] == "integrity"
    assert json.dumps(new) in failed["record.id"]["detail"]
    _refused_everywhere(cli, archive, bad, tmp_path, "record.id")


def test_verify_all_reports_a_bad_catalog_id_and_goes_on(archive: Archive, site: SampleSite, cli) -> None:  # type: ignore[no-untyped-def]
    good = archive.capture(site.base_url + "/plain").record_id
    victim = archive.capture(site.base_url + "/gzip").record_id
    with sqlite3.connect(archive.root / "catalog.sqlite3") as db:  # what an old import of "EVIL" left
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for t in tables:
            cols = [c[1] for c in db.execute(f"PRAGMA table_info({t})")]
            if "record_id" in cols:
                db.execute(f"UPDATE {t} SET record_id='EVIL\x1b[2J' WHERE record_id=?", (victim,))
    r = cli("verify", "--all", "--store", str(archive.root))
    _assert_clean(r, 1)
    assert "EVIL\\x1b[2J" in r.out and good in r.out and "1 verified, 1 failed" in r.out
    r = cli("verify", "--all", "--json", "--store", str(archive.root))
    assert r.code == 1
    reports = {rep["subject"]: rep for rep in json.loads(r.out)}
    assert reports[good]["ok"] is True and reports["EVIL\x1b[2J"]["ok"] is False
    assert any("record ID" in c["detail"] for c in reports["EVIL\x1b[2J"]["checks"] if c["status"] == "FAIL")


def test_bundle_report_page_and_json_escape_member_names(archive: Archive, site: SampleSite, tmp_path: Path,
                                                         cli) -> None:  # type: ignore[no-untyped-def]
    """The public verify page and the API: a member named like markup comes back escaped for HTML and
    as a JSON string, the report as always (200, verified false)."""
    from fastapi.testclient import TestClient

    from archiver.web import create_app

    good, _ = _export(archive, site, tmp_path, cli)
    name = "<script>alert(1)</script>[/bold]\x1b[2J"
    bad = tmp_path / "bad.wacz"
    members = _members(good)
    members[name] = b"added after signing"
    _write(bad, members)
    app = create_app(archive, public_verify=True, start_jobs=False)
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        page = client.post("/verify", files={"file": ("bad.wacz", bad.read_bytes(), "application/zip")})
    assert page.status_code == 200, page.text
    assert "TAMPERED" in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>alert" not in page.text


def test_capture_derived_markup_is_shown_as_text(archive: Archive, site: SampleSite, cli) -> None:  # type: ignore[no-untyped-def]
    """A URL is chosen by whoever links to the page: `capture` and `lookup` print it as text."""
    url = site.base_url + "/plain?q=[/bold][red]x"
    s = ["--store", str(archive.root)]
    r = cli("capture", url, *s)
    _assert_clean(r, 0)
    assert "/plain?q=[/bold][red]x" in r.out
    rid = archive.list()[0].record_id
    content = archive.artifact_sha256(rid, "content")
    r = cli("lookup", "--sha256", content, *s)
    _assert_clean(r, 0)
    assert "[/bold][red]x" in r.out and rid in r.out
