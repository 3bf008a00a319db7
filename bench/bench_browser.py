"""Seconds per page for browser captures: one Chromium reused for 20 pages (a batch) against a fresh
Chromium per page. Loopback only; prints figures, asserts nothing. Needs Debian's chromium."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from archiver.options import CaptureOptions

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from archiver.api import Archive
from archiver.capture.browser import BrowserOptions
from archiver.demo.server import SampleSite

PAGES = 20


def main() -> None:
    opts = BrowserOptions(timeout=30)
    with SampleSite() as site, tempfile.TemporaryDirectory() as tmp:
        archive, _ = Archive.init(Path(tmp) / "store")
        archive.config.set("capture.allow_private", "true")
        items = [(f"{site.base_url}/privacy?p={i}", None, None) for i in range(PAGES)]
        t = time.perf_counter()
        results = archive.capture_batch(items, CaptureOptions(browser=opts))
        reused = (time.perf_counter() - t) / PAGES
        ok = sum(r.ok for r in results)
        fresh = []
        for i in range(PAGES):
            t = time.perf_counter()
            archive.capture(f"{site.base_url}/privacy?f={i}", CaptureOptions(browser=opts))  # launches its own Chromium
            fresh.append(time.perf_counter() - t)
    print(f"browser capture, {PAGES} pages: reused browser {reused:.3f} s/page ({ok} ok); "
          f"fresh browser per page {statistics.mean(fresh):.3f} s/page (median {statistics.median(fresh):.3f}); "
          f"ratio {statistics.mean(fresh) / reused:.2f}x")


if __name__ == "__main__":
    main()
