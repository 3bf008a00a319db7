"""The public record page /r/<ID> and its JSON twin (issue 29, item 2): what an anonymous visitor sees of
a published record, the same 404 for a private record and an ID never issued, strong ETags, and nothing
that names a private record."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from fastapi.testclient import TestClient

from archiver.api import Archive
from archiver.demo.server import SampleSite
from archiver.models import schemas
from archiver.web.app import create_app

PATHS = ("/r/{id}", "/r/{id}.json", "/r/{id}/bundle.wacz", "/r/{id}/screenshot.png")


def _strip(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in ("date", "x-request-id")}


def test_a_private_record_and_an_unknown_id_answer_alike(archive: Archive, site: SampleSite, cli) -> None:  # type: ignore[no-untyped-def]
    rid = archive.capture(site.base_url + "/plain").record_id
    app = create_app(archive, start_jobs=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for path in PATHS:
            private = client.get(path.format(id=rid))
            unknown = client.get(path.format(id="ZZZZ-ZZZZ"))
            malformed = client.get(path.format(id="not-an-id"))
            assert private.status_code == unknown.status_code == malformed.status_code == 404, path
            assert private.content == unknown.content == malformed.content, path
            assert _strip(dict(private.headers)) == _strip(dict(unknown.headers)), path
        assert cli("publish", rid, "--store", str(archive.root)).code == 0
        assert client.get(f"/r/{rid}").status_code == 200
        assert cli("unpublish", rid, "--reason", "sealed", "--store", str(archive.root)).code == 0
        again = client.get(f"/r/{rid}")
        assert again.status_code == 404 and again.content == client.get("/r/ZZZZ-ZZZZ").content


def test_the_public_page_shows_provenance_citation_and_permalink(archive: Archive, site: SampleSite, cli,  # type: ignore[no-untyped-def]
                                                                  tmp_path: Path) -> None:
    s = ["--store", str(archive.root)]
    archive.config.set("web.public_url", "https://evidence.example.org")
    first = archive.capture(site.base_url + "/plain").record_id
    hidden = archive.capture(site.base_url + "/plain").record_id  # same URL, stays private
    assert cli("publish", first, *s).code == 0
    app = create_app(archive, start_jobs=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        r = client.get(f"/r/{first}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        page = r.text
        link = f"https://evidence.example.org/r/{first}"
        for words in ("Evidence Provenance", "Citation Record", "Permanent archival reference. Stable identifier "
                      "suitable for legal filings, compliance documentation, and research citation.",
                      link, f" [{link}].", "Content SHA-256", archive.manifest(first).digests.content_sha256,
                      "Verify it yourself", f"archiver verify {first}.wacz", "WACZ bundle"):
            assert words in page, words
        assert hidden not in page  # a private capture of the same URL is never named
        etag = r.headers["etag"]
        assert etag.startswith('"') and "public" in r.headers["cache-control"]
        assert client.get(f"/r/{first}", headers={"If-None-Match": etag}).status_code == 304
        j = client.get(f"/r/{first}.json")
        assert j.status_code == 200 and j.headers["etag"] != etag
        doc = j.json()
        jsonschema.validate(doc, schemas()["provenance"])
        assert doc["record_id"] == first and hidden not in j.text
        assert {c["event"] for c in doc["custody"]} <= {"capture", "publish", "timestamp"}
        # a verification is not a public event; the page's verification line changes, and so does its ETag
        assert client.post(f"/api/v1/records/{first}/verify").status_code in (401, 403)
        archive.verify(first, actor="tester")
        later = client.get(f"/r/{first}")
        assert "✓ Hash verified" in later.text and later.headers["etag"] != etag
        wacz = client.get(f"/r/{first}/bundle.wacz")
        assert wacz.status_code == 200
        out = tmp_path / "public.wacz"
        out.write_bytes(wacz.content)
    assert cli("verify", str(out), *s).code == 0
    events = [json.loads(line)["event"] for line in (archive.root / "custody.log").read_text().splitlines()]
    assert "export" not in events  # a public download is no one's act: publish said it goes to anyone
    assert len(list((archive.root / "public").glob("*.wacz"))) == 1  # made once, kept


def test_a_public_record_page_is_a_memento(archive: Archive, site: SampleSite, cli) -> None:  # type: ignore[no-untyped-def]
    """RFC 7089 §2.1.2/§2.2.1: the page names its original, itself with its datetime, the TimeGate and the
    TimeMap, and says Memento-Datetime; HEAD gives the same headers with no body (memento-client asks so)."""
    archive.config.set("web.public_url", "https://evidence.example.org")
    rid = archive.capture(site.base_url + "/plain").record_id
    assert cli("publish", rid, "--store", str(archive.root)).code == 0
    app = create_app(archive, start_jobs=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for r in (client.get(f"/r/{rid}"), client.head(f"/r/{rid}")):
            assert r.status_code == 200, r.status_code
            link = r.headers["link"]
            assert r.headers["memento-datetime"].endswith(" GMT")
            assert f'<{site.base_url}/plain>; rel="original"' in link
            assert f'<https://evidence.example.org/r/{rid}>; rel="memento"' in link
            assert 'rel="timegate"' in link and 'rel="timemap"' in link
        assert client.head(f"/r/{rid}").content == b""
        assert "memento-datetime" not in client.get("/r/ZZZZ-ZZZZ").headers


def test_review_findings_on_the_public_page(archive: Archive, site: SampleSite, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Review of issue 29: a weak If-None-Match revalidates (finding 12); the public custody numbers only
    what it shows (10); the public versions come from public records alone (6); the kept WACZ follows a
    new web.public_url (8); untrusting the signer's key changes the page and its ETag (4); an import
    records the bundle's file name, never its folder (3)."""
    s = ["--store", str(archive.root)]
    a = archive.capture(site.base_url + "/plain").record_id
    archive.capture(site.base_url + "/chunked")  # another URL, private: custody entries in between
    b = archive.capture(site.base_url + "/plain").record_id
    assert cli("publish", a, b, *s).code == 0
    app = create_app(archive, start_jobs=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        r = client.get(f"/r/{a}")
        weak = client.get(f"/r/{a}", headers={"If-None-Match": "W/" + r.headers["etag"]})
        assert weak.status_code == 304
        doc = client.get(f"/r/{a}.json").json()
        assert [c["seq"] for c in doc["custody"]] == list(range(1, len(doc["custody"]) + 1))
        assert doc["timeline"]["changes"] == 0 and len(doc["timeline"]["versions"]) == 1  # same content twice
        first = client.get(f"/r/{a}/bundle.wacz").content
        assert cli("config", "set", "web.public_url", "https://evidence.example.org", *s).code == 0
        second = client.get(f"/r/{a}/bundle.wacz").content
        assert b"https://evidence.example.org/r/" in second and first != second
        before = client.get(f"/r/{a}")
        key = next(archive.keys.keyring_dir.glob("*.pem"))
        moved = tmp_path / key.name
        key.rename(moved)  # the signer is no longer trusted here
        after = client.get(f"/r/{a}")
        assert after.headers["etag"] != before.headers["etag"]
        moved.rename(key)
    out = tmp_path / "secret-case-folder"
    out.mkdir()
    assert cli("export", a, "-o", str(out / "b.wacz"), *s).code == 0
    other, _ = Archive.init(tmp_path / "other", operator="R")
    assert cli("import", str(out / "b.wacz"), "--trust-key", archive.keys.list()[0].key_id,
               "--store", str(other.root)).code == 0
    log = (other.root / "custody.log").read_text()
    assert '"bundle": "b.wacz"' in log and "secret-case-folder" not in log
