"""Bounded work on a WARC (issue 28, defect 7): a record's declared block size is checked before any byte
of it is inflated, and a large conversion record is hashed as it streams, never read whole."""

from __future__ import annotations

import contextlib
import gzip
import io
import time
import tracemalloc
import zlib
from collections.abc import Iterator
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
