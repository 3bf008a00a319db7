"""Review of issue 32 (capture -i list.csv): two rows with the same URL (e.g. one page filed in two
matters, with different entities) are matched to their captures by URL only; capture_batch orders its
results by URL, and rows of one URL in completion order. When the second row's capture finishes first
(allowed: as_completed / worker pool), each record is filed under the other row's matter, tags and notes.
The completion order is forced here (the second row's result first), which capture_batch's
contract (archiver/api.py: results.sort by URL only) permits.

Run: PYTHONPATH=/work/wt-rev32 /work/main/.venv/bin/python -P review/32/csv_duplicate_url_filing.py
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from archiver import matters
from archiver.api import Archive
from archiver.cli import main
from archiver.demo.server import SampleSite
from tests.conftest import ROUTES

real = Archive.capture_batch


def completion_order(self: Archive, *args: Any, **kw: Any) -> Any:
    return sorted(real(self, *args, **kw), key=lambda r: r.entity != "Beta LLC")  # the second row finished first


Archive.capture_batch = completion_order  # type: ignore[method-assign]
with SampleSite(ROUTES) as site, tempfile.TemporaryDirectory() as tmp:
    t = Path(tmp)
    a, _ = Archive.init(t / "store", operator="Rev")
    a.config.set("capture.allow_private", "true")
    matters.create(a, "alpha", actor="rev")
    matters.create(a, "beta", actor="rev")
    sheet = t / "list.csv"
    sheet.write_text(f"url,entity,matter\n{site.base_url}/plain,Alpha Corp,alpha\n"
                     f"{site.base_url}/plain,Beta LLC,beta\n",
                     "utf-8")
    code = main(["capture", "-i", str(sheet), "--store", str(a.root)])
    for m in ("alpha", "beta"):
        ents = [a.manifest(r).subject.entity for r in matters.get(a, m).record_ids]
        print(f"matter {m}: records' entities {ents}")
sys.exit(0)
