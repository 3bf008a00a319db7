"""Check for the --latest fix on this branch: p95 of `search --latest` over 100,000 synthetic sections
(1,000 URLs x 10 records x 10 sections) on SQLite, with the fulltext/2 index (url, captured_at)."""

import random
import statistics
import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).parent))  # noqa: E401
import time

from _common import store

from store import fulltext as ft

WORDS = ("data account delete training opt out model privacy share sell partners law court notice consent "
         "cookies advertising retention security children transfer rights access correct object").split()
a = store()
rnd = random.Random(7)
with a.catalog.db() as d, d.tx():
    for u in range(1000):
        for r in range(10):
            rid = f"R{u:04d}-{r:02d}"
            rows = [ft.SectionRow(rid, i, f"https://ex{u}.test/terms", f"E{u % 50}", "Terms",
                                  f"2026-01-{r + 1:02d}T00:00:00.000Z", f"{i}. Heading {rnd.choice(WORDS)}",
                                  " ".join(rnd.choice(WORDS) for _ in range(60)), f"{u}-{r}-{i}")
                    for i in range(10)]
            ft.replace_record(d, rid, rows, False)
    ft.set_position(d, 0, 100_000, 10_000)
for latest in (False, True):
    for q in ("opt out", '"delete account"', "children privacy consent"):
        times = []
        for _ in range(30):
            t = time.perf_counter()
            hits = a.fulltext.search(q, latest=latest).hits
            times.append((time.perf_counter() - t) * 1000)
        p95 = statistics.quantiles(times, n=20)[18]
        print(f"latest={latest!s:<5} {q!r:<28} hits {len(hits):>2}  p50 {statistics.median(times):6.1f} ms  "
              f"p95 {p95:6.1f} ms  newest only: {all(h.record_id.endswith('-09') for h in hits) if latest else '-'}")
