"""``store gc`` against a capture running at the same time (review of issue 32, finding 1)."""

from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path
from typing import Any

from archiver import gc
from archiver.api import Archive


def test_a_blob_named_by_a_record_committed_between_scan_and_delete_is_kept(archive: Archive, site: Any) -> None:
    body = urllib.request.urlopen(site.base_url + "/plain", timeout=10).read()
    orphan = archive.blobs.put_bytes(body)  # left by a capture killed long ago
    old = time.time() - 3 * 86400
    os.utime(archive.blobs.path(orphan), (old, old))
    real_size = archive.blobs.size
    made: list[str] = []

    def size(sha: str) -> int:  # gc asks the size just before it deletes: a capture of that page runs now
        if sha == orphan and not made:
            made.append(archive.capture(site.base_url + "/plain").record_id)
        return real_size(sha)

    archive.blobs.size = size  # type: ignore[method-assign]
    try:
        report = gc.collect(archive)
    finally:
        archive.blobs.size = real_size  # type: ignore[method-assign]
    assert made and archive.resolve(made[0]).content_sha256 == orphan
    assert orphan in report.orphans and orphan not in report.deleted
    assert archive.blobs.exists(orphan) and archive.verify(made[0]).ok


def test_an_orphan_stored_again_during_gc_is_kept_and_a_true_orphan_goes(archive: Archive) -> None:
    keep = archive.blobs.put_bytes(b"stored again by a capture in progress")
    gone = archive.blobs.put_bytes(b"a true orphan")
    old = time.time() - 3 * 86400
    for sha in (keep, gone):
        os.utime(archive.blobs.path(sha), (old, old))
    real_size = archive.blobs.size

    def size(sha: str) -> int:
        if sha == keep:  # a capture stores the same bytes (made young again), not committed yet
            archive.blobs.put_bytes(b"stored again by a capture in progress")
        return real_size(sha)

    archive.blobs.size = size  # type: ignore[method-assign]
    try:
        report = gc.collect(archive)
    finally:
        archive.blobs.size = real_size  # type: ignore[method-assign]
    assert set(report.orphans) >= {keep, gone} and report.deleted == (gone,)
    assert archive.blobs.exists(keep) and not Path(archive.blobs.path(gone)).exists()
