"""Review of issue 32 (capture -i list.csv): a row whose URL is valid but whose capture fails is not
reported with its line number, is not counted among the rows 'not captured', and the summary counts
it as 'taken'.

Run: PYTHONPATH=/work/wt-rev32 /work/main/.venv/bin/python -P review/32/csv_failed_rows.py
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from archiver.api import Archive
from archiver.demo.server import SampleSite
from tests.conftest import ROUTES

with SampleSite(ROUTES) as site, tempfile.TemporaryDirectory() as tmp:
    t = Path(tmp)
    a, _ = Archive.init(t / "store", operator="Rev")
    a.config.set("capture.allow_private", "true")
    sheet = t / "list.csv"
    sheet.write_text("url,entity\n"
                     f"{site.base_url}/plain,Example\n"
                     f"{site.base_url}/missing,Gone Inc\n"           # line 3: 404, capture refused
                     "http://127.0.0.1:9/closed,Nobody\n",            # line 4: connection refused
                     "utf-8")
    r = subprocess.run([sys.executable, "-P", "-m", "archiver.cli", "capture", "-i", str(sheet), "--store",
                        str(a.root)], capture_output=True, text=True, timeout=300, check=False)
    print("exit", r.returncode)
    print("stdout:\n" + r.stdout + "stderr:\n" + r.stderr)
    print("lines named in stderr:", [ln for ln in r.stderr.splitlines() if " line " in ln])
