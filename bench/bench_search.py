"""Search across documents over >= 100,000 main-text sections (issue 31): p50/p95 per query.

How the index is made: the 13 corpus documents x 3 versions (../shared/corpus) are watched at one
local URL each with OTA's declarations, as a user would, and indexed by ``archive.fulltext.sync`` (the
real code). Their sections (about 1,340) are then written again through the same
``store.fulltext.replace_record`` under other record IDs and URLs (entity names kept, so ``--entity``
filters as much as on a real archive) until the index holds ``SECTIONS`` sections: the words are
real, the count is synthetic. Then each query runs ``ROUNDS`` times through ``archive.fulltext.search``
(what the CLI and the API call), on SQLite and, when PostgreSQL's binaries are there, PostgreSQL.

Peer in the same run: GNU grep -c -i -F over a file holding the same sections' text (one line each),
i.e. a scan with no index, which is what finding a clause costs without one.

    .venv/bin/python bench/bench_search.py [SECTIONS]      (default 100000)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archiver.api import Archive  # noqa: E402
from store import fulltext as ft  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
QUERIES = ("opt out", "delete your account", '"law enforcement"', "cookies advertising partners",
           "children", "data retention", '"personal information"', "arbitration", "transfer outside",
           "security breach notify")
ROUNDS = 30


def build(root: Path, sections: int, catalog: str | None) -> tuple[Archive, float, list[str]]:
    from archiver.location import Backends
    from tests.test_fulltext import _watch_all

    backends = Backends(catalog=catalog) if catalog else None
    archive, _ = Archive.init(root, operator="Bench", backends=backends)
    archive.config.set("capture.allow_private", "true")
    _watch_all(archive)
    archive.fulltext.sync()
    with archive.catalog.reader() as d:
        rows = [ft.SectionRow(*r) for r in d.rows(
            "SELECT record_id, section, url, entity, document, captured_at, heading, body, body_sha256 "
            "FROM fulltext_sections ORDER BY id")]
    postgres = archive.catalog.backend == "postgresql"
    by_record: dict[str, list[ft.SectionRow]] = {}
    for r in rows:
        by_record.setdefault(r.record_id, []).append(r)
    started = time.perf_counter()
    have, copy = len(rows), 0
    texts = [f"{r.heading} {r.body}".replace("\n", " ") for r in rows]
    while have < sections:
        copy += 1
        with archive.catalog.db() as d, d.tx():
            delta = [0, 0]
            for rid, rs in by_record.items():
                fake = f"{rid}-{copy}"
                ds, dr = ft.replace_record(d, fake, [ft.SectionRow(fake, r.section, f"{r.url}?copy={copy}", r.entity,
                                                          r.document, r.captured_at, r.heading, r.body, r.body_sha256)
                                            for r in rs], postgres)
                delta[0] += ds
                delta[1] += dr
                have += len(rs)
                texts += [f"{r.heading} {r.body}".replace("\n", " ") for r in rs]
            ft.set_position(d, ft.position(d), delta[0], delta[1])  # the counts a search shows
    return archive, time.perf_counter() - started, texts


def measure(archive: Archive) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for q in QUERIES:
        archive.fulltext.search(q)  # warm
        times = []
        for _ in range(ROUNDS):
            t = time.perf_counter()
            r = archive.fulltext.search(q, limit=10)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        out[q] = {"hits": len(r.hits), "p50": statistics.median(times), "p95": times[int(0.95 * len(times)) - 1]}
    return out


def grep_peer(texts: list[str], tmp: Path) -> dict[str, float]:
    f = tmp / "sections.txt"
    f.write_text("\n".join(texts), "utf-8")
    out = {}
    for q in QUERIES:
        word = q.strip('"').split()[0]
        times = []
        for _ in range(5):
            t = time.perf_counter()
            subprocess.run(["grep", "-c", "-i", "-F", word, str(f)], capture_output=True, check=False)
            times.append((time.perf_counter() - t) * 1000)
        out[q] = statistics.median(times)
    return out


def report(name: str, n: int, built: float, res: dict[str, Any], peer: dict[str, float], size: int) -> list[str]:
    lines = [f"### {name}: {n:,} sections (synthetic copies written in {built:.1f} s), index {size / 1e6:.0f} MB",
             "", "| query | hits | p50 ms | p95 ms | grep -c -i -F first word, ms | grep / p50 |",
             "|---|---:|---:|---:|---:|---:|"]
    for q, r in res.items():
        lines.append(f"| `{q}` | {r['hits']} | {r['p50']:.1f} | {r['p95']:.1f} | {peer[q]:.1f} | "
                     f"{peer[q] / r['p50']:.1f}x |")
    worst = max(r["p95"] for r in res.values())
    lines += ["", f"Worst p95: **{worst:.1f} ms** (goal <= 50 ms): {'met' if worst <= 50 else 'NOT met'}.", ""]
    return lines


def main() -> None:
    if not (CORPUS / "manifest.json").is_file():
        sys.exit("../shared/corpus is not beside the checkout: nothing to index")
    sections = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    load = os.getloadavg()
    lines = ["# Search across documents: >= 100,000 sections", "",
             f"Machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the start; "
             f"{ROUNDS} rounds per query, limit 10.", ""]
    keep = os.environ.get("BENCH_SEARCH_KEEP")  # a directory to keep the stores in (for profiling)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(keep) if keep else Path(tmp)
        archive, built, texts = build(t / "sqlite", sections, None)
        n = ft.counts(archive.catalog)[0]
        size = sum(p.stat().st_size for p in (t / "sqlite").glob("catalog.sqlite3*"))
        peer = grep_peer(texts, t)
        lines += report("SQLite FTS5", n, built, measure(archive), peer, size)
        sys.path.insert(0, str(ROOT))
        from tests.services import LocalPostgres, pg_bindir

        if pg_bindir() is not None and not os.environ.get("BENCH_SEARCH_SQLITE_ONLY"):
            with LocalPostgres() as pg:
                archive, built, _ = build(t / "pg", sections, pg.database())
                n = ft.counts(archive.catalog)[0]
                with archive.catalog.reader() as d:
                    size = int(d.one("SELECT pg_total_relation_size('fulltext_sections')")[0])  # type: ignore[index]
                lines += report("PostgreSQL tsvector + GIN", n, built, measure(archive), peer, size)
                archive.catalog.close()  # type: ignore[attr-defined]
        else:
            lines += ["PostgreSQL: its server binaries are not installed; not measured.", ""]
    text = "\n".join(lines)
    print(text)
    (ROOT / "bench" / "results-search.md").write_text(text + "\n", "utf-8")
    print(json.dumps({"sections": sections}), file=sys.stderr)


if __name__ == "__main__":
    main()
