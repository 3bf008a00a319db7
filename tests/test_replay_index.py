"""Issue 28, defect 4: what a bundle's verdict covers is what a replay shows. ReplayWeb.page and pywb
find the page through the signed CDXJ index, so the response the index leads to must be the one whose
content the manifest signs; a line that points anywhere else is a finding.

Each hostile bundle is made as its operator could make it (the store's own keys re-sign the manifest
and the package), so only what the index leads to differs from a genuine bundle."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from archiver.api import Archive
from archiver.demo.server import SampleSite

Members = dict[str, bytes]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _members(path: Path) -> Members:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def _repack(good: Path, dest: Path, archive: Archive, change: Callable[[Members], Members]) -> None:
    """``change`` the members, list them again in datapackage.json and sign it with the store's bundle key."""
    from tests.hostile import repack

    repack(good, dest, archive, change)


def _export(archive: Archive, site: SampleSite, tmp: Path, cli) -> tuple[Path, str]:  # type: ignore[no-untyped-def]
    rid = archive.capture(site.base_url + "/plain").record_id
    good = tmp / "good.wacz"
    assert cli("export", rid, "-o", str(good), "--store", str(archive.root)).code == 0
    return good, rid


def _verify(cli, bundle: Path, store: Path) -> tuple[int, dict[str, dict]]:  # type: ignore[no-untyped-def, type-arg]
    r = cli("verify", str(bundle), "--json", "--store", str(store))
    report = json.loads(r.out)
    checks = {c["name"]: c for rep in report["reports"] for c in rep["checks"]}
    return r.code, checks


def _index_lines(members: Members) -> list[tuple[str, str, dict]]:  # type: ignore[type-arg]
    out = []
    for line in members["indexes/index.cdxj"].decode().splitlines():
        key, ts, obj = line.split(" ", 2)
        out.append((key, ts, json.loads(obj)))
    return out


def _write_index(lines: list[tuple[str, str, dict]]) -> bytes:  # type: ignore[type-arg]
    return ("\n".join(f"{k} {t} {json.dumps(o)}" for k, t, o in lines) + "\n").encode()


def test_the_genuine_bundle_passes_the_index_check(stamped: Archive, site: SampleSite, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    good, _ = _export(stamped, site, tmp_path, cli)
    code, checks = _verify(cli, good, stamped.root)
    assert code == 0 and checks["bundle.index"]["status"] == "PASS", checks["bundle.index"]


def test_an_index_line_that_points_at_another_record_is_refused(stamped: Archive, site: SampleSite,
                                                                 tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """The page's line sent to the WARC's first record (the warcinfo) instead of the response."""
    good, rid = _export(stamped, site, tmp_path, cli)
    page = stamped.manifest(rid).subject.final_url

    def change(members: Members) -> Members:
        lines = _index_lines(members)
        for _, _, obj in lines:
            if obj["url"] == page:
                obj["offset"] = "0"
        return {**members, "indexes/index.cdxj": _write_index(lines)}

    bad = tmp_path / "bad.wacz"
    _repack(good, bad, stamped, change)
    code, checks = _verify(cli, bad, stamped.root)
    assert code == 1 and checks["bundle.index"]["status"] == "FAIL", checks.get("bundle.index")
    assert "offset 0" in checks["bundle.index"]["detail"]
    assert checks["bundle.resources"]["status"] == checks["bundle.signature"]["status"] == "PASS"


@pytest.mark.parametrize("variant", ["response first, browser capture", "resource a day later, plain capture"])
def test_a_second_response_the_index_leads_to_fails_even_where_the_warc_may_hold_two(
        archive: Archive, site: SampleSite, tmp_path: Path, cli, variant: str) -> None:  # type: ignore[no-untyped-def]
    """The issue's case: the WARC holds the genuine response and a forged one for the page URL, the
    manifest (re-signed by its operator) signs the genuine content, and the index leads a replay to the
    forged one. First variant: a forged response before the genuine one in a record marked as a browser
    capture (which may fetch its own URL twice), the genuine line dropped from the index: VERIFIED
    before the index was checked. Second (the review's): a forged *resource* record dated a day later
    after the genuine response, both lines indexed — a reader opening the page from pages.jsonl, or
    asking for the latest capture, shows the forgery: VERIFIED while the check followed only the line
    closest to captured_at."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from archiver.canonical import canonical
    from archiver.provenance.signing import sign_manifest_file
    from archiver.records import BrowserInfo, Manifest
    from store.custody import CustodyEntry

    stamped = archive  # unstamped: a token would name the genuine manifest, and the forger re-signs it
    good, rid = _export(stamped, site, tmp_path, cli)

    def change(members: Members) -> Members:
        mpath = f"provenance/{rid}.manifest.json"
        wpath = f"archive/{rid}.warc.gz"
        m = Manifest.from_dict(json.loads(members[mpath]))
        buf = io.BytesIO()
        writer = WARCWriter(buf, gzip=True)
        body = b"<html><body><p>We sell your data to everyone.</p></body></html>"
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))],
                                protocol="HTTP/1.1")
        browser_capture = variant.startswith("response")
        if browser_capture:
            rec = writer.create_warc_record(m.subject.final_url, "response", payload=io.BytesIO(body),
                                            length=len(body), http_headers=http,
                                            warc_headers_dict={"WARC-Date": m.captured_at})
        else:
            later = (dt.datetime.fromisoformat(m.captured_at.replace("Z", "+00:00")) + dt.timedelta(days=1))
            rec = writer.create_warc_record(m.subject.final_url, "resource", payload=io.BytesIO(body),
                                            length=len(body), warc_content_type="text/html",
                                            warc_headers_dict={"WARC-Date": later.strftime("%Y-%m-%dT%H:%M:%SZ")})
        writer.write_record(rec)
        # the forged response first (the last one is what the WARC check decodes), or the resource after
        warc = buf.getvalue() + members[wpath] if browser_capture else members[wpath] + buf.getvalue()
        arts = tuple(dataclasses.replace(a, sha256=_sha(warc), size=len(warc)) if a.name == "warc" else a
                     for a in m.artifacts)
        capture = m.capture
        if browser_capture:
            capture = dataclasses.replace(m.capture, browser=BrowserInfo("chromium", "1", m.capture.user_agent,
                                                                         "1280x800", "load"))
        forged = dataclasses.replace(m, artifacts=arts, capture=capture)
        _, mbytes = sign_manifest_file(forged, stamped.keys.load_private(lambda: None))
        from archiver.bundle.export import cdxj_lines

        lines = [ln.split(" ", 2) for ln in cdxj_lines(io.BytesIO(warc), f"{rid}.warc.gz")]
        page = [ln for ln in lines if json.loads(ln[2])["url"] == m.subject.final_url]
        assert len(page) == 2
        genuine_line = max(page, key=lambda ln: int(json.loads(ln[2])["offset"])) if browser_capture else None
        index = "\n".join(" ".join(ln) for ln in sorted(lines) if ln is not genuine_line) + "\n"
        custody = []
        for line in members[f"provenance/{rid}.custody.jsonl"].decode().splitlines():
            e = CustodyEntry.from_json(line)
            if e.subject_sha256 == _sha(members[mpath]):
                e = dataclasses.replace(e, subject_sha256=_sha(mbytes))
            custody.append(dataclasses.replace(e, hash=_sha(canonical(e.body()))).to_json() + "\n")
        return {**members, mpath: mbytes, wpath: warc, "indexes/index.cdxj": index.encode(),
                f"provenance/{rid}.custody.jsonl": "".join(custody).encode()}

    bad = tmp_path / "bad.wacz"
    _repack(good, bad, stamped, change)
    code, checks = _verify(cli, bad, stamped.root)
    failed = {n: c["detail"] for n, c in checks.items() if c["status"] == "FAIL"}
    assert code == 1 and set(failed) == {"bundle.index"}, failed
    assert "not the signed content" in failed["bundle.index"], failed
