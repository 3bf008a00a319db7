"""Review of issue 32 (legal holds on S3 / SeaweedFS with Object Lock).

Shows that the server-side Object Lock legal hold is NOT put on every object a held record needs:
  (1) a record added to a held matter through `archiver collection add matter-<name> ID` (the matter's
      exhibit list is that collection, and our own guard treats the record as held) gets no legal hold;
  (2) an addendum signed for a held record after the hold (here: publish) gets no legal hold.
And (3) on S3 a blob stored again keeps its old LastModified, so `store gc` deletes an orphan that a
capture in progress has just stored again (the local store touches it; gc.py's docstring promises this).

Run: PYTHONPATH=/work/wt-rev32 /work/main/.venv/bin/python -P review/32/s3_hold_gaps.py
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from archiver import gc, matters
from archiver.api import Archive
from archiver.cli import main
from archiver.demo.server import SampleSite
from archiver.matters import holds as matter_holds
from store.holds import record_blobs
from tests.conftest import ROUTES
from tests.services import LocalSeaweed

NOPASS = lambda: None  # noqa: E731


def store(root: Path, sw: LocalSeaweed, bucket: str, *extra: str) -> Archive:
    code = main(["init", "--store", str(root), "--operator", "Rev", "--blobs", f"s3://{bucket}/cases",
                 "--s3-endpoint", sw.endpoint, *extra])
    assert code == 0
    a = Archive.open(root)
    a.config.set("capture.allow_private", "true")
    return a


with LocalSeaweed() as sw, SampleSite(ROUTES) as site, tempfile.TemporaryDirectory() as tmp:
    os.environ.update(sw.env())
    a = store(Path(tmp) / "locked", sw, f"lock-{uuid.uuid4().hex[:10]}", "--object-lock", "governance",
              "--retain", "1d")
    rid = a.capture(site.base_url + "/plain").record_id
    other = a.capture(site.base_url + "/terms.pdf").record_id
    matters.create(a, "acme", actor="rev")
    matters.add(a, "acme", [rid], actor="rev")
    ch = matter_holds.place(a, "acme", "preservation letter", actor="rev")
    print("hold placed: server_legal_hold", ch.server_legal_hold, "objects", ch.objects)

    # (1) the matter's own collection, added to through the collection command
    code = main(["collection", "add", "matter-acme", other, "--store", str(a.root)])
    with a.catalog.db() as d:
        from store.holds import held
        print("(1) collection add exit", code, "; our guard says held:", other in held(d, [other]))
        shas = sorted(record_blobs(d, a.blobs, other))
    lh = {s[:12]: a.blobs.legal_hold(s) for s in shas}  # type: ignore[union-attr]
    print("(1) server legal hold on the added record's objects:", lh)

    # (2) an addendum made after the hold
    with a.catalog.db() as d:
        before = set(record_blobs(d, a.blobs, rid))
    a.publications.publish([rid], actor="rev", passphrase=NOPASS)
    with a.catalog.db() as d:
        new = set(record_blobs(d, a.blobs, rid)) - before
    print("(2) new names of the held record after publish:", sorted(s[:12] for s in new))
    print("(2) of which stored blobs, and their server legal hold:",
          {s[:12]: a.blobs.legal_hold(s) for s in sorted(new) if a.blobs.exists(s)})  # type: ignore[union-attr]
    kid = [s for s in new if not a.blobs.exists(s)]
    print("(2) names that are no blob (the signer's key id, read as a blob name):", [s[:12] for s in kid])
    # (2b) so placing a hold again (or on another matter holding this published record) fails part-way
    matters.create(a, "beta", actor="rev")
    matters.add(a, "beta", [rid], actor="rev")
    try:
        ch = matter_holds.place(a, "beta", "second case", actor="rev")
        print("(2b) hold on beta:", ch.objects)
    except Exception as exc:
        print("(2b) hold on beta FAILED:", type(exc).__name__, exc)
        with a.catalog.db() as d:
            print("(2b) ... yet the catalog has the hold:", d.rows("SELECT matter, released_at FROM legal_holds"))
    try:
        matter_holds.release(a, "acme", actor="rev")
        print("(2c) release acme ok")
    except Exception as exc:
        print("(2c) release of acme FAILED:", type(exc).__name__, exc)
        with a.catalog.db() as d:
            print("(2c) ... yet the catalog released it:", d.rows("SELECT matter, released_at FROM legal_holds"))

    # (3) gc on S3 and a blob stored again by a capture in progress
    b = store(Path(tmp) / "plain", sw, f"gc-{uuid.uuid4().hex[:10]}")
    data = b"the WARC of a capture in progress, same bytes as an old orphan"
    sha = b.blobs.put_bytes(data)
    time.sleep(3)
    b.blobs.put_bytes(data)  # the capture stores the same bytes again: 'made young again'?
    age = time.time() - b.blobs.modified(sha)
    rep = gc.collect(b, min_age_hours=2 / 3600)  # gc sparing blobs younger than 2 s
    print(f"(3) S3: blob age after re-store {age:.1f}s; gc deleted it: {sha in rep.deleted}")
    c, _ = Archive.init(Path(tmp) / "local", operator="Rev")
    sha = c.blobs.put_bytes(data)
    os.utime(c.blobs.path(sha), (time.time() - 3, time.time() - 3))
    c.blobs.put_bytes(data)
    rep = gc.collect(c, min_age_hours=2 / 3600)
    print(f"(3) local: gc deleted it: {sha in rep.deleted}")
sys.exit(0)
