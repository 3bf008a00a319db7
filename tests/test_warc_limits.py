"""Bounded work on a WARC (issue 28, defect 7): a record's declared block size is checked before any byte
of it is inflated, and a large conversion record is hashed as it streams, never read whole."""

from __future__ import annotations

import contextlib
import gzip
import io
import re
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from archiver.api import Archive
from archiver.records import Manifest
from archiver.verify.artifacts import WarcLimits, warc_checks


def _record(rtype: str, uri: str, block_len: int, block: Iterator[bytes], ctype: str = "text/plain") -> bytes:
    """One gzip member holding a WARC record whose block is streamed from ``block`` (zeros compress well)."""
    head = (f"WARC/1.1\r\nWARC-Type: {rtype}\r\nWARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-000000000001>\r\n"
            f"WARC-Date: 2026-12-06T00:00:00Z\r\nWARC-Target-URI: {uri}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {block_len}\r\n\r\n").encode()
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    out = [z.compress(head)]
    out += [z.compress(chunk) for chunk in block]
    out += [z.compress(b"\r\n\r\n"), z.flush()]
    return b"".join(out)


def _zeros(total: int) -> Iterator[bytes]:
    chunk = bytes(1 << 20)
    while total > 0:
        yield chunk[:min(total, len(chunk))]
        total -= len(chunk)


def _manifest(archive: Archive, site) -> Manifest:  # type: ignore[no-untyped-def]
    return archive.capture(site.base_url + "/plain", passphrase=lambda: None)


def test_a_record_declaring_more_than_the_cap_is_refused_before_it_is_inflated(archive: Archive, site) -> None:
    m = _manifest(archive, site)
    bomb = _record("resource", "urn:x", 200 << 20, _zeros(200 << 20))  # ~200 kB that inflates to 200 MiB
    assert len(bomb) < 1 << 20

    @contextlib.contextmanager
    def open_warc() -> Iterator[BinaryIO]:
        yield io.BytesIO(bomb)

    started = time.monotonic()
    checks = warc_checks(open_warc, m, limits=WarcLimits(max_record=1 << 20, max_total=4 << 20))
    assert time.monotonic() - started < 1.0  # before: every byte inflated and hashed
    records = next(c for c in checks if c.name == "warc.records")
    assert records.status.value == "FAIL" and "verify.max_record_bytes" in records.detail, records.detail


def test_the_whole_warc_is_capped_too(archive: Archive, site) -> None:
    m = _manifest(archive, site)
    warc = b"".join(_record("resource", f"urn:{i}", 3 << 20, _zeros(3 << 20)) for i in range(3))

    @contextlib.contextmanager
    def open_warc() -> Iterator[BinaryIO]:
        yield io.BytesIO(warc)

    checks = warc_checks(open_warc, m, limits=WarcLimits(max_record=4 << 20, max_total=8 << 20))
    records = next(c for c in checks if c.name == "warc.records")
    assert records.status.value == "FAIL" and "verify.max_warc_bytes" in records.detail, records.detail


def test_a_large_conversion_record_is_hashed_as_it_streams(archive: Archive, site) -> None:
    m = _manifest(archive, site)
    big = 256 << 20
    warc = _record("conversion", m.subject.final_url, big, _zeros(big))

    @contextlib.contextmanager
    def open_warc() -> Iterator[BinaryIO]:
        yield io.BytesIO(warc)

    tracemalloc.start()
    try:
        warc_checks(open_warc, m)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # before: the whole 256 MiB record (and a copy, and reads of 1 MB of compressed input inflated at once);
    # now one 64 kB read of compressed zeros at a time (~64 MB inflated) and a 1 MB hashing window
    assert peak < 96 << 20, peak
    assert gzip.decompress(warc)[:8] == b"WARC/1.1"


def _deflated_zip(path: Path, members: int, size: int) -> None:
    """A ZIP of ``members`` deflated members of ``size`` zero bytes each, written by hand: the deflate
    stream and CRC are computed once and repeated, so a 32 GiB claim costs a second to make."""
    import struct

    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = b"".join(z.compress(chunk) for chunk in _zeros(size)) + z.flush()
    crc = 0
    for chunk in _zeros(size):
        crc = zlib.crc32(chunk, crc)
    central, offset = [], 0
    with open(path, "wb") as fh:
        for i in range(members):
            name = f"filler/{i:04d}.bin".encode()
            local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(data), size, len(name), 0)
            fh.write(local + name + data)
            central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(data), size,
                                       len(name), 0, 0, 0, 0, 0o100644 << 16, offset) + name)
            offset += len(local) + len(name) + len(data)
        cd = b"".join(central)
        fh.write(cd)
        fh.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, members, members, len(cd), offset, 0))


def test_many_members_each_under_the_checks_are_refused_before_any_is_inflated(tmp_path: Path) -> None:
    """500 members of 64 MiB (a ~33 MB file): each passes the per-member checks; together they are a
    1000x bomb. Before, they were hashed (32 GiB, ~55 s) before the bundle was refused."""
    from archiver.bundle import BundleTrust, verify_bundle

    bomb = tmp_path / "bomb.wacz"
    _deflated_zip(bomb, 500, 64 << 20)
    assert bomb.stat().st_size < 40 << 20
    started = time.monotonic()
    reports = verify_bundle(bomb, BundleTrust(keyring={}, fingerprints=frozenset(), anchors=[]))
    assert time.monotonic() - started < 5
    zip_check = reports[0].checks[0]
    assert zip_check.name == "bundle.zip" and zip_check.status.value == "FAIL"
    assert "zip bomb" in zip_check.detail, zip_check.detail


def _responses(url: str, bodies: list[bytes]) -> bytes:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True, warc_version="WARC/1.1")
    import gc
    import warnings

    with warnings.catch_warnings():  # warcio leaves its digest spool files to the garbage collector
        warnings.simplefilter("ignore", ResourceWarning)
        for body in bodies:
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))],
                                    protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body),
                                                          http_headers=http))
        gc.collect()
    return out.getvalue()


def test_a_second_different_response_for_the_page_is_a_finding(archive: Archive, site) -> None:
    """Issue 28, defect 4: a replay follows the signed index, which may name another response for the page
    URL than the one checked; two different payloads for the page URL fail the WARC (identical ones do not)."""
    m = _manifest(archive, site)
    for bodies, fails in (([b"<p>forged</p>", b"<p>genuine</p>"], True), ([b"<p>same</p>", b"<p>same</p>"], False)):
        warc = _responses(m.subject.final_url, bodies)

        @contextlib.contextmanager
        def open_warc(warc: bytes = warc) -> Iterator[BinaryIO]:
            yield io.BytesIO(warc)

        records = next(c for c in warc_checks(open_warc, m) if c.name == "warc.records")
        assert (records.status.value == "FAIL" and "second, different response" in records.detail) is fails, \
            records.detail


def _warc_of(data: bytes) -> contextlib.AbstractContextManager[BinaryIO]:
    @contextlib.contextmanager
    def open_warc() -> Iterator[BinaryIO]:
        yield io.BytesIO(data)
    return open_warc()


def _trailing(fill: bytes, mib: int, sep: bytes) -> bytes:
    """One gzip member: a record declaring a 10-byte block, ``sep``, then ``mib`` MiB of ``fill``."""
    head = (b"WARC/1.1\r\nWARC-Type: resource\r\nWARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-0000000000fe>\r\n"
            b"WARC-Date: 2026-12-06T00:00:00Z\r\nWARC-Target-URI: urn:x\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 10\r\n\r\n0123456789" + sep)
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join([z.compress(head), *(z.compress(fill * (1 << 20)) for _ in range(mib)), z.flush()])


def test_bytes_after_a_records_block_are_refused_not_read_line_by_line(archive: Archive, site) -> None:
    """Review of issue 28, finding 2: only the declared block was counted; warcio then read the rest of
    the gzip member as one line (48 MiB of "A": joined a block at a time, ~700 MB before) or one
    iteration per newline (never refused). Now what follows a block may be its blank lines only."""
    m = _manifest(archive, site)
    for fill, mib, sep, why in ((b"A", 48, b"\r\n\r\n", "WARC unreadable after 1 record(s): Invalid WARC record"),
                                (b"A", 48, b"", "bytes follow a record's declared block"),
                                (b"\n", 4, b"\r\n\r\n", "blank lines after a record's block")):
        warc = _trailing(fill, mib, sep)
        assert len(warc) < 64 << 10
        tracemalloc.start()
        started = time.monotonic()
        try:
            checks = warc_checks(lambda warc=warc: _warc_of(warc), m)  # type: ignore[misc]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert time.monotonic() - started < 5
        assert peak < 96 << 20, peak  # one 64 kB read of compressed input inflated, no more
        records = next(c for c in checks if c.name == "warc.records")
        assert records.status.value == "FAIL" and why in records.detail, records.detail


def test_a_record_header_line_without_end_is_refused_at_the_head_cap(archive: Archive, site) -> None:
    """The same for a record's own header: a 48 MiB line with no newline is refused at 1 MiB of headers."""
    m = _manifest(archive, site)
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    warc = b"".join([z.compress(b"WARC/1.1\r\nWARC-Type: resource\r\nX-Long: "),
                     *(z.compress(b"A" * (1 << 20)) for _ in range(48)), z.flush()])
    tracemalloc.start()
    try:
        checks = warc_checks(lambda: _warc_of(warc), m)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 96 << 20, peak
    records = next(c for c in checks if c.name == "warc.records")
    assert records.status.value == "FAIL" and "headers run past" in records.detail, records.detail


def test_the_number_of_records_is_capped(archive: Archive, site) -> None:
    """Review of issue 28, finding 8: 0-byte records cost nothing against the byte caps, yet warcio takes
    ~20 us for each: 1.8 M of them (200 kB in a bundle) took 45 s. ``verify.max_warc_records`` caps them."""
    m = _manifest(archive, site)
    warc = b"WARC/1.0\r\nContent-Length: 0\r\n\r\n\r\n\r\n" * 1_001
    checks = warc_checks(lambda: _warc_of(warc), m, limits=WarcLimits(max_records=1_000))
    records = next(c for c in checks if c.name == "warc.records")
    assert records.status.value == "FAIL" and "verify.max_warc_records" in records.detail, records.detail
    under = warc_checks(lambda: _warc_of(warc), m, limits=WarcLimits(max_records=1_001))
    assert "verify.max_warc_records" not in next(c for c in under if c.name == "warc.records").detail


def test_whatever_warcio_raises_is_a_failed_check_not_a_traceback(archive: Archive, site) -> None:
    """Review of issue 28, finding 7: a response record without WARC-Target-URI made warcio raise
    AttributeError, a payload digest named ``\\x00ha256`` TypeError; both escaped as tracebacks."""
    m = _manifest(archive, site)
    genuine = gzip.decompress(_responses(m.subject.final_url, [b"<p>page</p>"]))
    no_uri = b"\r\n".join(ln for ln in genuine.split(b"\r\n") if not ln.startswith(b"WARC-Target-URI:"))
    bad_algo = re.sub(rb"WARC-Payload-Digest: [a-z0-9]+:", b"WARC-Payload-Digest: \x00ha256:", genuine, count=1)
    assert no_uri != genuine and bad_algo != genuine
    for warc in (no_uri, bad_algo):
        records = next(c for c in warc_checks(lambda warc=warc: _warc_of(warc), m)  # type: ignore[misc]
                       if c.name == "warc.records")
        assert records.status.value == "FAIL" and records.detail.startswith("WARC unreadable after"), records.detail
