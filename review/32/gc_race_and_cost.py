"""Review of issue 32 (store gc).

(1) gc decides what is garbage once (reference scan + age), then deletes one orphan after another; nothing
    is checked again at delete time except legal holds. A capture that stores the same bytes (making the
    blob young again, as gc.py's docstring counts on) and commits its record between the scan and the
    delete loses its blob: the record is committed and its artifact is gone. Simulated interleaving:
    the capture runs when gc asks the size of the orphan it is about to delete.
(2) Each delete recomputes every held record's blobs (reading every addendum of every held record) under
    the catalog's write lock: N orphans x H held records x A addenda blob reads while captures wait.

Run: PYTHONPATH=/work/wt-rev32 /work/main/.venv/bin/python -P review/32/gc_race_and_cost.py
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from archiver import gc, matters
from archiver.api import Archive
from archiver.demo.server import SampleSite
from archiver.matters import holds as matter_holds
from tests.conftest import ROUTES

NOPASS = lambda: None  # noqa: E731

with SampleSite(ROUTES) as site, tempfile.TemporaryDirectory() as tmp:
    a, _ = Archive.init(Path(tmp) / "s1", operator="Rev")
    a.config.set("capture.allow_private", "true")
    body = urllib.request.urlopen(site.base_url + "/plain", timeout=10).read()  # noqa: S310
    orphan = a.blobs.put_bytes(body)  # left by a capture killed long ago
    old = time.time() - 3 * 86400
    os.utime(a.blobs.path(orphan), (old, old))
    real_size = a.blobs.size
    made: list[str] = []

    def size(sha: str) -> int:
        if sha == orphan and not made:  # a capture of the same page runs now, between scan and delete
            made.append(a.capture(site.base_url + "/plain").record_id)
        return real_size(sha)
    a.blobs.size = size  # type: ignore[method-assign]
    rep = gc.collect(a)  # default min age 24 h
    a.blobs.size = real_size  # type: ignore[method-assign]
    rid = made[0]
    print("(1) gc deleted the capture's content blob:", orphan in rep.deleted,
          "| record", rid, "content is", a.resolve(rid).content_sha256 == orphan and "that blob",
          "| exists now:", a.blobs.exists(orphan))
    v = a.verify(rid)
    print("(1) verify of the committed record ok:", v.ok)

    # (2) cost of the per-delete hold check
    b, _ = Archive.init(Path(tmp) / "s2", operator="Rev")
    b.config.set("capture.allow_private", "true")
    ids = [b.capture(site.base_url + p).record_id for p in ("/plain", "/terms.pdf", "/hostile")]
    b.publications.publish(ids, actor="rev", passphrase=NOPASS)
    matters.create(b, "acme", actor="rev")
    matters.add(b, "acme", ids, actor="rev")
    matter_holds.place(b, "acme", "letter", actor="rev")
    for i in range(100):
        sha = b.blobs.put_bytes(f"orphan {i}".encode())
        os.utime(b.blobs.path(sha), (old, old))
    reads = 0
    real_read = b.blobs.read_bytes

    def read_bytes(sha: str) -> bytes:
        global reads
        reads += 1
        return real_read(sha)
    b.blobs.read_bytes = read_bytes  # type: ignore[method-assign]
    t0 = time.monotonic()
    rep = gc.collect(b)
    print(f"(2) gc deleted {len(rep.deleted)} orphans with 3 held records: {reads} blob reads, "
          f"{time.monotonic() - t0:.2f}s")
sys.exit(0)
