"""WARC/1.1 writing on warcio, with our own SHA-256 digests and byte-exact blocks.

warcio re-serialises HTTP headers it parses and digests with SHA-1 by default, so records are
built here with their block already assembled and both digests already computed; warcio's
writer then only frames and gzips them (one member per record).

Chunked responses: WARC 1.1 §6.3.2 defines the payload as the entity body *with transfer-
encoding removed*, while ``warcio check`` digests the payload as stored. To satisfy both, a
chunked response is stored transfer-decoded, its ``Transfer-Encoding`` header line renamed to
``X-Archiver-Transfer-Encoding`` (same value) so readers do not de-chunk it again, and the
SHA-256 of the exact bytes received on the wire is kept in the hop's ``metadata`` record.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO, cast

from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from archiver.capture.fetch import Hop

WARC_VERSION = "WARC/1.1"


def warc_date(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_record_uri() -> str:
    return f"<urn:uuid:{uuid.uuid4()}>"


def sha256_hex_digest(hexdigest: str) -> str:
    return f"sha256:{hexdigest}"


class _Concat:
    """A read-only stream over a bytes prefix followed by a file."""

    def __init__(self, prefix: bytes, tail: BinaryIO | None) -> None:
        self._prefix = prefix
        self._pos = 0
        self._tail = tail

    def read(self, n: int = -1) -> bytes:
        if self._pos < len(self._prefix):
            end = len(self._prefix) if n < 0 else min(len(self._prefix), self._pos + n)
            out = self._prefix[self._pos:end]
            self._pos = end
            return out
        if self._tail is None:
            return b""
        return self._tail.read(n)


def _pem(der: bytes) -> str:
    b64 = base64.b64encode(der).decode("ascii")
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def chain_pem(hop: Hop) -> str:
    return "".join(_pem(der) for der in hop.conn.peer_chain_der)


def hop_metadata(hop: Hop, index: int) -> dict[str, Any]:
    pem = chain_pem(hop)
    tls: dict[str, Any] | None = None
    if hop.conn.tls_version:
        tls = {
            "version": hop.conn.tls_version, "cipher": hop.conn.cipher, "verified": hop.conn.tls_verified,
            "peer_cert_sha256": hashlib.sha256(hop.conn.peer_chain_der[0]).hexdigest()
            if hop.conn.peer_chain_der else None,
            "peer_chain_pem_sha256": hashlib.sha256(pem.encode("ascii")).hexdigest() if pem else None,
            "peer_chain_pem": pem,
        }
    return {
        "hop": index, "url": hop.url, "server_ip": hop.conn.server_ip, "server_port": hop.conn.server_port,
        "tls": tls,
        "timings": {"started": warc_date(hop.started), "finished": warc_date(hop.finished),
                    "seconds": round(hop.finished - hop.started, 6)},
        "transfer": {"chunked_on_wire": hop.chunked, "stored_transfer_decoded": hop.chunked,
                     "wire_bytes": hop.wire_size, "wire_sha256": hop.wire_sha256,
                     "payload_bytes": hop.payload_size,
                     **({"body_as_sent_sha1_b32": base64.b32encode(hop.body_as_sent_sha1).decode("ascii")}
                        if hop.body_as_sent_sha1 is not None else {})},
    }


@dataclass(frozen=True, slots=True)
class WarcSummary:
    final_response_id: str
    records: int
    sha256: str  # of the whole file, taken as it was written (its blob name)
    size: int


class _Hashing:
    """The WARC file's digest while it is written, so storing it needs no second read."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: Any) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self._out.write(data)

    def flush(self) -> None:
        self._out.flush()


# ISA-L's deflate at its level 2 costs 0.46 ms per corpus page (233 KB) against zlib level 6's 5.8 ms, for
# files ~18 % larger (0.238 vs 0.201 of the page); the members are plain gzip either way. Without
# python-isal (a wheel is missing for the platform) zlib level 6 is used.
try:
    from isal.igzip import IGzipFile as _GzipFile

    GZIP_LEVEL = 2
except ImportError:  # pragma: no cover - isal is a dependency; kept for platforms without its wheel
    _GzipFile = gzip.GzipFile  # type: ignore[misc,assignment]
    GZIP_LEVEL = 6
_SAMPLE = 1 << 16


def _incompressible(body: BinaryIO | None, body_len: int) -> bool:
    """A large body that deflate cannot shrink (already compressed: PDF streams, images, archives,
    a gzip or br transfer): it is stored, not deflated. Deflate would make it bigger, and ISA-L's
    Huffman-coded output of random bytes inflates at ~100 MB/s where stored blocks go at memory speed,
    which is what ``verify`` pays later."""
    if body is None or body_len < 4 * _SAMPLE or not body.seekable():
        return False
    pos = body.tell()
    sample = body.read(_SAMPLE)
    body.seek(pos)
    return len(zlib.compress(sample, 1)) > 0.97 * len(sample)


class _Writer:
    """One gzip member per record (WARC 1.1 Annex D), written by warcio's uncompressed writer inside
    a GzipFile so the compression level is ours to choose."""

    def __init__(self, out: BinaryIO, warcinfo_id: str) -> None:
        self.out = out
        self.warcinfo_id = warcinfo_id
        self.count = 0

    def write(self, rec_type: str, uri: str | None, *, date: str, content_type: str, block_head: bytes,
              body: BinaryIO | None, body_len: int, block_sha256: str, payload_sha256: str | None = None,
              extra: Iterable[tuple[str, str]] = (), record_id: str | None = None) -> str:
        rid = record_id or new_record_uri()
        headers: list[tuple[str, str]] = [("WARC-Type", rec_type), ("WARC-Record-ID", rid), ("WARC-Date", date)]
        if uri:
            headers.append(("WARC-Target-URI", uri))
        if rec_type != "warcinfo":
            headers.append(("WARC-Warcinfo-ID", self.warcinfo_id))
        headers += list(extra)
        headers.append(("WARC-Block-Digest", sha256_hex_digest(block_sha256)))
        if payload_sha256:
            headers.append(("WARC-Payload-Digest", sha256_hex_digest(payload_sha256)))
        headers.append(("Content-Type", content_type))
        length = len(block_head) + body_len
        headers.append(("Content-Length", str(length)))
        rec_headers = StatusAndHeaders("", headers, protocol=WARC_VERSION)
        record = ArcWarcRecord("warc", rec_type, rec_headers, _Concat(block_head, body), None, content_type, length)
        record.payload_length = length
        if _incompressible(body, body_len):  # zlib level 0: stored blocks
            with gzip.GzipFile(filename="", mode="wb", fileobj=self.out, compresslevel=0, mtime=0) as member:
                WARCWriter(member, gzip=False, warc_version=WARC_VERSION).write_record(record)
        else:
            with _GzipFile(filename="", mode="wb", fileobj=self.out, compresslevel=GZIP_LEVEL, mtime=0) as member:  # type: ignore[no-untyped-call]
                WARCWriter(member, gzip=False, warc_version=WARC_VERSION).write_record(record)
        self.count += 1
        return rid

    def write_bytes(self, rec_type: str, uri: str | None, data: bytes, *, date: str, content_type: str,
                    extra: Iterable[tuple[str, str]] = (), payload: bool = False,
                    record_id: str | None = None) -> str:
        digest = hashlib.sha256(data).hexdigest()
        return self.write(rec_type, uri, date=date, content_type=content_type, block_head=data, body=None,
                          body_len=0, block_sha256=digest, payload_sha256=digest if payload else None,
                          extra=extra, record_id=record_id)


MAIN_TEXT_TYPE = "text/markdown; charset=utf-8"


def write_capture_warc(out: BinaryIO, *, filename: str, warcinfo: dict[str, str], hops: list[Hop],
                       text: bytes | None, captured_at: float, main_hops: int | None = None,
                       resources: Iterable[tuple[str, str, bytes]] = (),
                       main_text: bytes | None = None) -> WarcSummary:
    """warcinfo; per hop request, response, metadata; then the extracted text as a conversion."""
    info_id = new_record_uri()
    hashing = _Hashing(out)
    w = _Writer(cast(BinaryIO, hashing), info_id)
    fields = "".join(f"{k}: {v}\r\n" for k, v in warcinfo.items()).encode("utf-8")
    w.write_bytes("warcinfo", None, fields, date=warc_date(captured_at), content_type="application/warc-fields",
                  extra=[("WARC-Filename", filename)], record_id=info_id)
    final_id = ""
    final_uri, final_date = hops[-1].url, warc_date(captured_at)
    for index, hop in enumerate(hops):
        date = warc_date(hop.started)
        req_id, resp_id = new_record_uri(), new_record_uri()
        req = hop.request_bytes
        head_end = req.find(b"\r\n\r\n")
        req_payload = req[head_end + 4:] if head_end >= 0 else b""
        w.write("request", hop.url, date=date, content_type="application/http; msgtype=request",
                block_head=req, body=None, body_len=0, block_sha256=hashlib.sha256(req).hexdigest(),
                payload_sha256=hashlib.sha256(req_payload).hexdigest(),
                extra=[("WARC-Concurrent-To", resp_id)], record_id=req_id)
        with open(hop.body_path, "rb") as body:
            w.write("response", hop.url, date=date, content_type="application/http; msgtype=response",
                    block_head=hop.block_head, body=body, body_len=hop.payload_size, block_sha256=hop.block_sha256,
                    payload_sha256=hop.payload_sha256, record_id=resp_id,
                    extra=[("WARC-IP-Address", hop.conn.server_ip)])
        meta = json.dumps(hop_metadata(hop, index), indent=1, sort_keys=True).encode("utf-8")
        # No WARC-Target-URI (optional for metadata, WARC 1.1 §5.4): replay tools index records by
        # target URI, and a JSON record under the page's URI would shadow the response in pywb.
        w.write_bytes("metadata", None, meta, date=date, content_type="application/json",
                      extra=[("WARC-Refers-To", resp_id), ("WARC-Concurrent-To", resp_id)])
        if main_hops is None or index < main_hops:
            final_id, final_uri, final_date = resp_id, hop.url, date  # the page, not its sub-resources
    # Derived records carry the page response's date: a replay tool looking up the page at that
    # moment must find the response (sorted first), never the text conversion of it.
    for uri, ctype, data in resources:  # browser artifacts: screenshot, PDF, rendered DOM
        w.write_bytes("resource", uri, data, date=final_date, content_type=ctype, payload=True,
                      extra=[("WARC-Concurrent-To", final_id)])
    if text is not None:
        w.write_bytes("conversion", final_uri, text, date=final_date,
                      content_type="text/plain; charset=utf-8", payload=False,
                      extra=[("WARC-Refers-To", final_id)])
    if main_text is not None:  # the document's own text, by its declared rules: a second conversion
        w.write_bytes("conversion", final_uri, main_text, date=final_date,
                      content_type=MAIN_TEXT_TYPE, payload=False, extra=[("WARC-Refers-To", final_id)])
    out.flush()
    return WarcSummary(final_response_id=final_id, records=w.count, sha256=hashing.hash.hexdigest(), size=hashing.size)
