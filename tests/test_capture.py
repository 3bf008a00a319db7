"""Captures against local HTTP and HTTPS servers: byte-exact content, valid WARCs, recorded facts."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from archiver.api import Archive
from archiver.options import CaptureOptions
from archiver.records import Manifest
from tests.conftest import HTML, PDF, https_url, warcio_bin

SERVED = hashlib.sha256(HTML).hexdigest()


def _content_sha(archive: Archive, record_id: str, tmp_path: Path) -> str:
    out = tmp_path / f"{record_id}.content"
    archive.get(record_id, "content", out)
    return hashlib.sha256(out.read_bytes()).hexdigest()


def _warcio_check(archive: Archive, record_id: str, tmp_path: Path) -> str:
    warc = tmp_path / f"{record_id}.warc.gz"
    archive.get(record_id, "warc", warc)
    proc = subprocess.run([warcio_bin(), "check", "-v", str(warc)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "failed" not in proc.stdout
    return proc.stdout


@pytest.mark.parametrize("path", ["/chunked", "/gzip", "/gzip-chunked", "/br", "/deflate", "/plain"])
def test_http_capture_content_is_what_the_server_meant(archive: Archive, site, path: str, tmp_path: Path) -> None:
    m = archive.capture(site.base_url + path, CaptureOptions(entity="Example Inc.", document="Privacy Policy"))
    assert _content_sha(archive, m.record_id, tmp_path) == SERVED
    assert m.digests.content_sha256 == SERVED
    _warcio_check(archive, m.record_id, tmp_path)
    assert archive.verify(m.record_id).ok


@pytest.mark.parametrize("path", ["/chunked", "/gzip-chunked", "/br"])
def test_https_capture_with_trusted_ca(archive: Archive, https_site, tls_material, path: str,
                                       tmp_path: Path) -> None:
    archive.config.set("capture.ca_bundle", str(tls_material.ca_pem))
    m = archive.capture(https_url(https_site, path))
    assert _content_sha(archive, m.record_id, tmp_path) == SERVED
    _warcio_check(archive, m.record_id, tmp_path)
    tls = m.http.tls
    assert tls is not None and tls.verified and tls.version and tls.version.startswith("TLS")
    assert tls.peer_cert_sha256 and m.artifact("tls-chain") is not None
    assert m.capture.insecure is False
    # the PEM chain in the store starts with the server's leaf certificate
    pem = tmp_path / "chain.pem"
    archive.get(m.record_id, "tls-chain", pem)
    assert pem.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert archive.verify(m.record_id).ok


def test_payload_digest_is_over_the_dechunked_entity_body(archive: Archive, site, tmp_path: Path) -> None:
    m = archive.capture(site.base_url + "/gzip-chunked")
    body = None
    warc = tmp_path / "c.warc.gz"
    archive.get(m.record_id, "warc", warc)
    with open(warc, "rb") as fh:
        for rec in ArchiveIterator(fh):
            if rec.rec_type == "response":
                digest = rec.rec_headers.get_header("WARC-Payload-Digest")
                assert rec.http_headers.get_header("Transfer-Encoding") is None
                assert rec.http_headers.get_header("X-Archiver-Transfer-Encoding") == "chunked"
                body = rec.raw_stream.read()
            if rec.rec_type == "metadata":
                meta = json.loads(rec.content_stream().read())
                assert meta["transfer"]["chunked_on_wire"] is True
                assert meta["transfer"]["wire_bytes"] > meta["transfer"]["payload_bytes"]
    assert body is not None and gzip.decompress(body) == HTML
    assert digest == "sha256:" + hashlib.sha256(body).hexdigest() == "sha256:" + m.digests.payload_sha256


def test_redirects_are_each_a_request_response_pair(archive: Archive, site, tmp_path: Path) -> None:
    m = archive.capture(site.base_url + "/redirect2")
    assert m.subject.final_url == site.base_url + "/chunked"
    assert m.subject.redirects == (site.base_url + "/redirect", site.base_url + "/chunked")
    warc = tmp_path / "r.warc.gz"
    archive.get(m.record_id, "warc", warc)
    with open(warc, "rb") as fh:
        kinds = [(r.rec_type, r.rec_headers.get_header("WARC-Target-URI")) for r in ArchiveIterator(fh)]
    responses = [u for t, u in kinds if t == "response"]
    requests_ = [u for t, u in kinds if t == "request"]
    assert responses == requests_ == [site.base_url + p for p in ("/redirect2", "/redirect", "/chunked")]
    _warcio_check(archive, m.record_id, tmp_path)


def test_pdf_text_and_title(archive: Archive, site, tmp_path: Path) -> None:
    m = archive.capture(site.base_url + "/terms.pdf")
    assert m.digests.content_sha256 == hashlib.sha256(PDF).hexdigest()
    text = tmp_path / "t.txt"
    archive.get(m.record_id, "text", text)
    body = text.read_text("utf-8")
    assert "4. Governing law. These terms are governed by the laws of Delaware." in body
    assert m.subject.title == "Example Inc. Terms of Service"
    assert m.subject.document_date == "2026-03-01"


def test_manifest_records_http_facts(archive: Archive, site) -> None:
    m = archive.capture(site.base_url + "/gzip")
    assert m.http.status == 200 and m.http.server_ip == "127.0.0.1"
    assert m.http.last_modified == "Tue, 05 May 2026 09:00:00 GMT"
    assert m.http.etag and m.http.date and m.http.content_encoding == "gzip"
    assert len(m.digests.payload_sha1_b32) == 32
    assert m.capture.user_agent.startswith("archiver/")
    assert m.record_id[4] == "-" and len(m.record_id) == 9


def test_stored_manifest_is_the_canonical_json_of_the_signed_manifest(archive: Archive, site) -> None:
    """A capture serialises its manifest once for the signature and the file: both must be what the
    separate functions (used by verify and by anyone with a JCS library) give."""
    from archiver.provenance.signing import manifest_file_bytes, signature_valid, signed_bytes

    m = archive.capture(site.base_url + "/gzip", CaptureOptions(entity="Example Inc."))
    stored = archive.blobs.read_bytes(archive.resolve(m.record_id).manifest_sha256)
    assert stored == manifest_file_bytes(m) == manifest_file_bytes(archive.manifest(m.record_id))
    unsigned = json.loads(stored)
    del unsigned["signature"]
    assert signed_bytes(m) == json.dumps(unsigned, sort_keys=True, separators=(",", ":"),
                                         ensure_ascii=False).encode()
    assert signature_valid(m, archive.keys.signing_public_key())


def test_second_capture_chains_to_previous(archive: Archive, site) -> None:
    first = archive.capture(site.base_url + "/plain")
    second = archive.capture(site.base_url + "/plain")
    assert second.previous is not None and second.previous.record_id == first.record_id
    report = archive.verify(second.record_id)
    assert report.ok and any(c.name == "previous" for c in report.checks)


def test_insecure_is_recorded(archive: Archive, https_site) -> None:
    m = archive.capture(https_url(https_site, "/plain"), CaptureOptions(insecure=True))
    assert m.capture.insecure is True
    assert m.http.tls is not None and m.http.tls.verified is False


def test_derived_records_carry_the_page_response_date(archive: Archive, site, tmp_path: Path) -> None:
    """A replay tool asking for the page at its capture time must find the response, not the text
    conversion stored under the same URI (pywb picks the closest timestamp)."""
    m = archive.capture(site.base_url + "/redirect2")
    warc = tmp_path / "d.warc.gz"
    archive.get(m.record_id, "warc", warc)
    with open(warc, "rb") as fh:
        recs = [(r.rec_type, r.rec_headers.get_header("WARC-Target-URI"), r.rec_headers.get_header("WARC-Date"))
                for r in ArchiveIterator(fh)]
    page = [d for t, u, d in recs if t == "response" and u == m.subject.final_url]
    conv = [(u, d) for t, u, d in recs if t == "conversion"]
    assert conv == [(m.subject.final_url, page[0])]


def test_incompressible_body_is_stored_not_deflated(archive: Archive, tmp_path: Path) -> None:
    """A body deflate cannot shrink goes into the WARC as stored gzip blocks: no bigger than itself,
    quick to inflate for verify, and still plain gzip members that warcio checks."""
    import gzip as gz
    import os

    from archiver.demo.server import SampleSite, send

    body = os.urandom(3 << 20)
    text = b"<html><body>" + b"<p>privacy policy text, quite compressible</p>" * 20000 + b"</body></html>"
    with SampleSite({"/blob": lambda h: send(h, 200, body, "application/octet-stream"),
                     "/page": lambda h: send(h, 200, text, "text/html")}) as site:
        blob = archive.capture(site.base_url + "/blob")
        page = archive.capture(site.base_url + "/page")
    for m in (blob, page):
        _warcio_check(archive, m.record_id, tmp_path)
        assert archive.verify(m.record_id).ok
    blob_warc = blob.artifact("warc")
    page_warc = page.artifact("warc")
    assert blob_warc is not None and page_warc is not None
    assert len(body) < blob_warc.size < len(body) + 64 * 1024  # stored: framing overhead only
    assert page_warc.size < len(text) / 10  # deflated
    raw = gz.decompress(archive.blobs.read_bytes(blob_warc.sha256))
    assert body in raw


def _capture_raw(archive: Archive, sent: bytes, cut: int, **kw: Any) -> Manifest:
    """Capture from a raw socket server that answers ``sent``: its first ``cut`` bytes at once, the rest
    in pieces a moment later (after the client has parsed the head)."""
    import socket
    import threading
    import time

    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(sent[:cut])
            time.sleep(0.2)
            for i in range(cut, len(sent), 50_000):
                conn.sendall(sent[i:i + 50_000])

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        return archive.capture(f"http://127.0.0.1:{srv.getsockname()[1]}/raw", **kw)
    finally:
        t.join(10)
        srv.close()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_wire_digest_covers_exactly_the_bytes_sent(archive: Archive, tmp_path: Path, chunked: bool) -> None:
    """The wire digest is taken as bytes arrive (the body is spooled once): a raw server sends known
    bytes, with a 100 Continue before the head; the record says their SHA-256 and count, and the
    WARC block is the final head + the payload."""
    body = HTML * 300  # 318 KB: read in many pieces after the head
    if chunked:
        pieces = [body[i:i + 7000] for i in range(0, len(body), 7000)]
        framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        sent = b"HTTP/1.1 100 Continue\r\n\r\n" + head + framed + b"0\r\n\r\n"
    else:
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                % len(body))
        sent = b"HTTP/1.1 100 Continue\r\n\r\n" + head + body
    m = _capture_raw(archive, sent, cut=sent.index(b"\r\n\r\n", sent.index(b"200 OK")) + 4 + 1000)
    assert m.digests.payload_sha256 == m.digests.content_sha256 == hashlib.sha256(body).hexdigest()
    warc = tmp_path / "w.warc.gz"
    archive.get(m.record_id, "warc", warc)
    with open(warc, "rb") as fh:
        for rec in ArchiveIterator(fh):
            if rec.rec_type == "response":
                block = rec.raw_stream.read()
                expected_head = head.replace(b"Transfer-Encoding", b"X-Archiver-Transfer-Encoding")
                assert rec.rec_headers.get_header("WARC-Block-Digest") == "sha256:" + hashlib.sha256(
                    expected_head + body).hexdigest()
            if rec.rec_type == "metadata":
                transfer = json.loads(rec.content_stream().read())["transfer"]
    assert block == body  # the payload, after the head warcio parsed
    assert transfer["wire_bytes"] == len(sent)
    assert transfer["wire_sha256"] == hashlib.sha256(sent).hexdigest()
    if chunked:  # the body exactly as sent, chunk framing included (the CDX digest heritrix3 writes)
        as_sent = base64.b32encode(hashlib.sha1(framed + b"0\r\n\r\n").digest()).decode()
        assert transfer["body_as_sent_sha1_b32"] == as_sent == m.digests.payload_sha1_b32_chunked
    else:
        assert "body_as_sent_sha1_b32" not in transfer and m.digests.payload_sha1_b32_chunked is None
    _warcio_check(archive, m.record_id, tmp_path)
    assert archive.verify(m.record_id).ok


_BODY = b"<html><body><p>Terms</p>\n\n<p>Blank lines inside the body.</p></body></html>\n"
_CL_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(_BODY)
_CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
_FRAMED = b"%x\r\n%s\r\n0\r\n\r\n" % (len(_BODY), _BODY)


@pytest.mark.parametrize(("before", "head", "framed"), [
    (b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n", _CL_HEAD, _BODY),
    (b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n", _CL_HEAD, _BODY),
    (b"HTTP/1.1 100\r\n\r\n", _CHUNKED_HEAD, _FRAMED),  # no reason phrase
    (b"", _CL_HEAD.replace(b"\r\n", b"\n")[:-1] + b"\r\n", _BODY),  # bare-LF lines, a CRLF empty line
], ids=["103-early-hints", "102-then-100", "100-without-reason", "lf-lines-crlf-end"])
def test_the_recorded_response_is_the_final_one(archive: Archive, tmp_path: Path, before: bytes, head: bytes,
                                                framed: bytes) -> None:
    """Interim (1xx) responses come before the answer: the record, the WARC response and its digests are
    the final response's, whatever the interim ones look like, and its head ends at its first empty line
    (a body with blank lines in it must not end it), as http.client reads it."""
    chunked = framed is _FRAMED
    sent = before + head + framed
    m = _capture_raw(archive, sent, cut=len(sent))
    assert m.http.status == 200 and m.digests.content_sha256 == hashlib.sha256(_BODY).hexdigest()
    warc = tmp_path / "w.warc.gz"
    archive.get(m.record_id, "warc", warc)
    with open(warc, "rb") as fh:
        metadata = next(json.loads(r.content_stream().read()) for r in ArchiveIterator(fh) if r.rec_type == "metadata")
    assert metadata["transfer"]["wire_sha256"] == hashlib.sha256(sent).hexdigest()  # the interim answers too
    with open(warc, "rb") as fh:
        response = next(r for r in ArchiveIterator(fh) if r.rec_type == "response")
        assert response.http_headers.get_statuscode() == "200"
        block_head = head.replace(b"Transfer-Encoding", b"X-Archiver-Transfer-Encoding")
        assert response.rec_headers.get_header("WARC-Block-Digest") == \
            "sha256:" + hashlib.sha256(block_head + _BODY).hexdigest()
    if chunked:  # the as-sent digest covers the chunk framing only, not the head before it
        assert m.digests.payload_sha1_b32_chunked == base64.b32encode(hashlib.sha1(framed).digest()).decode()
    _warcio_check(archive, m.record_id, tmp_path)
    assert archive.verify(m.record_id).ok


def test_a_failed_commit_leaves_the_sessions_connection_usable(archive: Archive, site) -> None:
    """A batch worker's thread holds one catalog connection for its whole life (archiver.pool): a
    COMMIT that fails must not leave that connection inside a transaction, or every later capture on
    the thread would fail at its BEGIN."""
    from archiver.errors import ArchiverError

    cat = archive.catalog
    with cat.session():
        with cat.db() as d:
            d.script("CREATE TABLE t_parent (id INTEGER PRIMARY KEY); CREATE TABLE t_child "
                     "(p INTEGER REFERENCES t_parent(id) DEFERRABLE INITIALLY DEFERRED)")
        with pytest.raises(ArchiverError), cat.db() as d, d.tx():
            d.run("INSERT INTO t_child VALUES (1)")  # a deferred key: only the COMMIT fails
        with cat.db() as d, d.tx():
            d.run("INSERT INTO t_parent VALUES (1)")
        m = archive.capture(site.base_url + "/plain")  # on the same connection
    assert archive.verify(m.record_id).ok
    assert [r.record_id for r in archive.list()] == [m.record_id]


def test_brotli_is_imported_only_for_a_br_body_and_its_errors_still_map() -> None:
    """``archiver.decode`` loads brotlicffi (and cffi) only when a body is br-encoded: verifying or
    capturing an identity or gzip page never pays for it. A corrupt br body is still a CaptureError."""
    import io
    import sys

    probe = ("import io, sys; from archiver.decode import decode_stream; "
             "decode_stream(io.BytesIO(b'plain'), io.BytesIO(), None, 100); "
             "print('brotlicffi' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

    import brotlicffi

    from archiver.decode import decode_stream
    from archiver.errors import CaptureError

    good = brotlicffi.compress(b"policy text " * 100)
    assert decode_stream(io.BytesIO(good), io.BytesIO(), "br", 10_000)[1] == 1200
    with pytest.raises(CaptureError, match="not valid br"):
        decode_stream(io.BytesIO(b"\xff" * 50), io.BytesIO(), "br", 10_000)
