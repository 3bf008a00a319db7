"""Review of issue 32 (exhibits and productions).

(A) Two exhibit sets of one matter with labels 'Exhibit A' and 'Exhibit-A' (or 'Exhibit/A'): both are
    accepted (different -o dirs), but `produce --format csv|bagit` names each PDF by the sanitised label,
    so the second overwrites the first: the production silently holds one PDF for two exhibits and
    index.csv gives a pdf_sha256 that is not the file's.
(B) Bates prefixes 'ABC' (start 1000001) and 'ABC1' (start 1) stamp the same Bates numbers
    (ABC1000001…): the overlap check compares (prefix, number), never the printed number. The loadfile
    production then overwrites NATIVES/PDF/IMAGES files and the OPT repeats image keys.

Run: PYTHONPATH=/work/wt-rev32 /work/main/.venv/bin/python -P review/32/exhibit_collisions.py
"""
from __future__ import annotations

import csv
import hashlib
import sys
import tempfile
from pathlib import Path

from archiver import matters
from archiver.api import Archive
from archiver.demo.server import SampleSite
from archiver.demo.tsa import LocalTSA
from archiver.exhibits import make_set
from archiver.exhibits.produce import produce
from tests.conftest import ROUTES

NOPASS = lambda: None  # noqa: E731

with LocalTSA() as tsa, SampleSite(ROUTES) as site, tempfile.TemporaryDirectory() as tmp:
    t = Path(tmp)
    a, _ = Archive.init(t / "store", operator="Rev")
    a.config.set("capture.allow_private", "true")
    a.config.set("tsa.urls", tsa.url)
    a.config.set("tsa.certs", str(tsa.ca_pem))
    a.config.set("tsa.retries", "0")
    r1 = a.capture(site.base_url + "/plain").record_id
    r2 = a.capture(site.base_url + "/terms.pdf").record_id
    for m in ("m1", "m2"):
        matters.create(a, m, actor="rev")
        matters.add(a, m, [r1, r2], actor="rev")

    # (A)
    s1 = make_set(a, [r1], matter="m1", out_dir=t / "x1", actor="rev", passphrase=NOPASS, label="Exhibit A")
    s2 = make_set(a, [r2], matter="m1", out_dir=t / "x2", actor="rev", passphrase=NOPASS, label="Exhibit-A")
    print("(A) sets accepted:", [(e.label, e.pdf_sha256[:12]) for e in s1.exhibits + s2.exhibits])
    produce(a, "m1", t / "p-csv", fmt="csv", actor="rev", passphrase=NOPASS)
    pdfs = sorted((t / "p-csv" / "exhibits").iterdir())
    print("(A) csv production PDFs:", [p.name for p in pdfs])
    with open(t / "p-csv" / "index.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            real = hashlib.sha256((t / "p-csv" / row["pdf_file"]).read_bytes()).hexdigest()
            print(f"(A) index row {row['exhibit']!r}: pdf_file {row['pdf_file']} pdf_sha256 matches file: "
                  f"{real == row['pdf_sha256']}")
    produce(a, "m1", t / "p-bag", fmt="bagit", actor="rev", passphrase=NOPASS)
    print("(A) bag exhibits:", sorted(p.name for p in (t / "p-bag" / "data" / "exhibits").iterdir()),
          "for", 2, "exhibits")

    # (B)
    b1 = make_set(a, [r1], matter="m2", out_dir=t / "y1", actor="rev", passphrase=NOPASS, label="Exhibit 1",
                  bates_prefix="ABC", bates_start=1_000_001)
    b2 = make_set(a, [r2], matter="m2", out_dir=t / "y2", actor="rev", passphrase=NOPASS, label="Exhibit 2",
                  bates_prefix="ABC1", bates_start=1)
    for e in b1.exhibits + b2.exhibits:
        print(f"(B) {e.label}: {e.bates_first}-{e.bates_last} ({e.pages} pages)")
    produce(a, "m2", t / "p-load", fmt="loadfile", actor="rev", passphrase=NOPASS)
    opt = (t / "p-load" / "DATA" / "m2.opt").read_text("ascii").splitlines()
    keys = [ln.split(",")[0] for ln in opt]
    pages = sum(e.pages for e in b1.exhibits + b2.exhibits)
    print(f"(B) OPT lines {len(opt)}, distinct image keys {len(set(keys))}, page images on disk "
          f"{len(list((t / 'p-load' / 'IMAGES' / 'VOL001').iterdir()))}, pages produced {pages}; "
          f"natives {len(list((t / 'p-load' / 'NATIVES').iterdir()))} for 2 exhibits")
sys.exit(0)
