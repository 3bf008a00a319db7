"""Review of issue 32 (productions): a BagIt production logs one `export` custody entry per WACZ, whose
"to" is the production's temporary directory (renamed away at the end), so the custody log documents
copies at paths that never exist; when the production then fails, the entries stay for files deleted.

Run: PYTHONPATH=/work/wt-rev32 /work/main/.venv/bin/python -P review/32/production_custody.py
"""
from __future__ import annotations

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
    for k, v in (("tsa.urls", tsa.url), ("tsa.certs", str(tsa.ca_pem)), ("tsa.retries", "0")):
        a.config.set(k, v)
    rid = a.capture(site.base_url + "/plain").record_id
    matters.create(a, "m", actor="rev")
    matters.add(a, "m", [rid], actor="rev")
    make_set(a, [rid], matter="m", out_dir=t / "x", actor="rev", passphrase=NOPASS, label="Exhibit A")
    produce(a, "m", t / "bag", fmt="bagit", actor="rev", passphrase=NOPASS)
    for e in a.custody.entries():
        if e.event in ("export", "production"):
            to = e.detail.get("to", "")
            print(f"{e.event}: to={to} exists={Path(to).exists()}")
sys.exit(0)
