"""A catalog of BENCH_MILLION_RECORDS (default 100,000; the issue's goal is 1,000,000) records on SQLite
and on PostgreSQL, and the p95 of the everyday reads on it (issue 33, point 3).

How the catalog is made (what is real and what is shared, said plainly):

1. BENCH_MILLION_REAL (200) real records: the corpus HTML pages of ../shared/corpus served from
   127.0.0.1 under distinct URLs and captured with `archiver capture -i -j 8` (fetch, WARC, blobs,
   signed manifest, custody, catalog: everything a record holds).
2. The rest are catalog rows made through the catalog's own insert (``Catalog.insert_record``: the
   same SQL, tables and indexes a capture commits; on PostgreSQL the same statements sent in batches,
   see ``_fill``), from real ``Manifest`` values: each is one of the
   real manifests with a new record ID, URL (ten records per URL: each URL has a history), entity,
   document, title and capture time (spread over five years before the real captures), and its own
   artifact and manifest digests (so a hash lookup finds one record, as in a real archive). Their
   manifests and blobs are NOT written (a million signed files would measure the file system, not the
   catalog), and they have no custody entries: record pages are read for the real records, which sit
   in the same catalog; lists, searches, lookups and histories run over all rows.

Timings (sequential, one client, after one warm-up call each):
* CLI: `archiver list` (first page), `lookup --sha256`, `history URL` as child processes (wall time,
  Python's start-up included; `archiver --help`'s time is printed beside them), and the same calls
  in process through the library (what the catalog costs).
* Web: `archiver serve` on 127.0.0.1, a viewer token, requests (one kept connection): the records page
  (first page, a search for a common word, a search for a rare one, a date filter), a record page and
  its JSON (provenance),
  each record read once cold (first reading: rendered) and then warm (cached).
Writes bench/results-million.md. Asserts nothing. Goal: each read p95 <= 50 ms on both backends.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_web import Site, corpus_pages, free_port  # noqa: E402

RECORDS = int(os.environ.get("BENCH_MILLION_RECORDS", "100000"))
REAL = int(os.environ.get("BENCH_MILLION_REAL", "200"))
BACKENDS = [b for b in os.environ.get("BENCH_MILLION_BACKENDS", "sqlite,postgresql").split(",") if b]
SAMPLES = int(os.environ.get("BENCH_MILLION_SAMPLES", "40"))
ARCHIVER = [sys.executable, "-m", "archiver.cli"]
OUT = ROOT / "bench" / "out"
PER_URL = 10
ENTITIES = 997  # filler entities "Entity 0".."Entity 996": a name matches ~0.1% of the records
DOCUMENTS = ("Privacy Policy", "Terms of Service", "Cookie Policy", "Acceptable Use Policy", "Data Processing")
TX = 5000


def _rid(i: int) -> str:
    """The i-th filler record ID: a bijection of i onto 8 symbols, scattered (IDs are random in real stores)."""
    from archiver.provenance.ids import ALPHABET

    n = (i * 2654435761 + 12345) % (32 ** 8)
    chars = ""
    for _ in range(8):
        n, r = divmod(n, 32)
        chars += ALPHABET[r]
    return f"{chars[:4]}-{chars[4:]}"


def _fake(tag: str) -> str:
    return hashlib.sha256(tag.encode()).hexdigest()


def _capture_real(store: Path, catalog_url: str | None) -> float:
    site = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    Site.pages = corpus_pages()
    threading.Thread(target=site.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{site.server_address[1]}"
    init = [*ARCHIVER, "init", "--store", str(store)] + (["--catalog", catalog_url] if catalog_url else [])
    subprocess.run(init, check=True, capture_output=True)
    for k, v in (("capture.allow_private", "true"), ("capture.per_host", "8")):
        subprocess.run([*ARCHIVER, "config", "set", k, v, "--store", str(store)], check=True, capture_output=True)
    urls = store.parent / f"{store.name}-urls.txt"
    urls.write_text("".join(f"{base}/policy/{i}\tEntity {i % ENTITIES}\tPrivacy Policy\n" for i in range(REAL)))
    started = time.monotonic()
    subprocess.run([*ARCHIVER, "capture", "-i", str(urls), "-j", "8", "--json", "--store", str(store)],
                   check=True, stdout=subprocess.DEVNULL)
    site.shutdown()
    return time.monotonic() - started


def _filler(real: list[Any], taken: set[str], i: int, start: float, step: float) -> tuple[Any, str]:
    """The i-th filler manifest (a real one with a new ID, URL, entity, time and digests) and its hash."""
    rid = _rid(i)
    if rid in taken:
        rid = _rid(i + 10 ** 9)
    base = real[i % len(real)]
    u = i // PER_URL
    url = f"https://filler{u % 50}.example/{u}/policy"
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start + i * step)) + f".{i % 1000:03d}Z"
    entity, document = f"Entity {u % ENTITIES}", DOCUMENTS[u % len(DOCUMENTS)]
    m = dataclasses.replace(
        base, record_id=rid, captured_at=when, previous=None,
        subject=dataclasses.replace(base.subject, url=url, final_url=url, redirects=(), entity=entity,
                                    document=document, title=f"{entity} {document} {u}"),
        artifacts=tuple(dataclasses.replace(x, sha256=_fake(f"{rid}/{x.name}")) for x in base.artifacts))
    return m, _fake(f"{rid}/manifest")


def _fill(store: Path, n: int) -> float:
    """Insert ``n`` catalog rows, TX per transaction: on SQLite one ``Catalog.insert_record`` each; on
    PostgreSQL the same statements batched (``executemany``, which psycopg pipelines), because one
    record at a time is a round trip per statement (172 records/s on this machine: 1.6 h for a million)."""
    from archiver.api import Archive
    from store.catalog import Catalog

    a = Archive.open(store)
    real = [a.manifest(s.record_id) for s in a.catalog.list()]
    taken = {m.record_id for m in real}
    start = time.time() - 5 * 365 * 86400 - 7 * 86400
    step = 5 * 365 * 86400 / max(1, n)
    started = time.monotonic()
    i = 0
    with a.catalog.db() as d:
        while i < n:
            batch = [_filler(real, taken, j, start, step) for j in range(i, min(n, i + TX))]
            with d.tx():
                if a.catalog.backend == "sqlite":
                    for m, sha in batch:
                        Catalog.insert_record(d, m, sha)
                else:
                    _insert_batch(d, batch)
            i += len(batch)
            if i % 100000 < TX:
                print(f"  {i:,} rows, {time.monotonic() - started:.0f} s", flush=True)
    return time.monotonic() - started


def _insert_batch(d: Any, batch: list[tuple[Any, str]]) -> None:
    """``Catalog.insert_record``'s statements for many records at once (same SQL, same tables)."""
    docs: dict[str, Any] = {}
    for m, _ in batch:
        docs[m.subject.url] = m
    d.many("INSERT INTO documents(url, entity, document, first_record, last_record) VALUES (?,?,?,?,?) "
           "ON CONFLICT(url) DO UPDATE SET entity=COALESCE(excluded.entity, documents.entity), "
           "document=COALESCE(excluded.document, documents.document), last_record=excluded.last_record",
           [(u, m.subject.entity, m.subject.document, m.record_id, m.record_id) for u, m in docs.items()])
    ids = dict((str(r[1]), r[0]) for r in d.rows("SELECT doc_id, url FROM documents WHERE url = ANY(?)",
                                                 (list(docs),)))
    d.many("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
           [(m.record_id, ids[m.subject.url], m.subject.url, m.subject.final_url, m.subject.entity,
             m.subject.document, m.subject.title, m.captured_at, m.http.status, sha, m.digests.content_sha256,
             m.digests.text_sha256, m.digests.payload_sha1_b32, m.signature.key_id if m.signature else "", None)
            for m, sha in batch])
    d.many("INSERT INTO artifacts VALUES (?,?,?,?,?)",
           [(m.record_id, x.name, x.sha256, x.size, x.media_type) for m, sha in batch for x in m.artifacts]
           + [(m.record_id, "manifest", sha, -1, "application/json") for m, sha in batch])


def _size(store: Path, catalog_url: str | None) -> int:
    if catalog_url is None:
        return sum(p.stat().st_size for p in store.glob("catalog.sqlite3*"))
    import psycopg

    with psycopg.connect(catalog_url) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else 0


def _p(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))] * 1e3


def _timed(fn: Callable[[], object], n: int = SAMPLES) -> dict[str, float]:
    fn()  # warm-up
    got = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        got.append(time.perf_counter() - t0)
    return {"p50": _p(got, .5), "p95": _p(got, .95), "n": n}


def _each(fn: Callable[[Any], object], items: list[Any]) -> dict[str, float]:
    got = []
    for x in items:
        t0 = time.perf_counter()
        fn(x)
        got.append(time.perf_counter() - t0)
    return {"p50": _p(got, .5), "p95": _p(got, .95), "n": len(items)}


def _measure(store: Path, real: list[str]) -> dict[str, dict[str, float]]:
    import requests

    from archiver.access import create_token
    from archiver.api import Archive

    a = Archive.open(store)
    some = real[: min(len(real), SAMPLES)]
    sha = [a.manifest(r).artifact("content").sha256 for r in some]  # type: ignore[union-attr]
    u = (RECORDS - REAL) // PER_URL // 2 + 7
    filler_url = f"https://filler{u % 50}.example/{u}/policy"
    rare = f"filler{(u + 3) % 50}.example/{u + 3}/"  # ten records of a million hold it
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = [*ARCHIVER]
    res: dict[str, dict[str, float]] = {}

    def run(*args: str) -> None:
        subprocess.run([*cli, *args, "--store", str(store)], check=True, stdout=subprocess.DEVNULL, env=env)

    res["cli: archiver --help (start-up alone)"] = _timed(
        lambda: subprocess.run([*cli, "--help"], check=True, stdout=subprocess.DEVNULL, env=env), 15)
    res["cli: archiver list (first page)"] = _timed(lambda: run("list"), 15)
    res["cli: archiver lookup --sha256"] = _timed(lambda: run("lookup", "--sha256", sha[0]), 15)
    res["cli: archiver history URL"] = _timed(lambda: run("history", filler_url), 15)
    res["library: list first page"] = _timed(lambda: a.catalog.list(limit=100))
    res["library: lookup sha256"] = _each(lambda h: a.lookup(h), sha)
    res["library: history URL"] = _timed(lambda: a.watches.history(filler_url))

    token = create_token(a, f"bench-{os.getpid()}", "viewer", actor="bench").token
    port = free_port()
    server = subprocess.Popen([*cli, "serve", "--store", str(store), "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        with requests.Session() as c:
            c.headers["Authorization"] = f"Bearer {token}"
            for _ in range(300):
                try:
                    if c.get(base + "/healthz", timeout=5).status_code == 200:
                        break
                except requests.ConnectionError:
                    time.sleep(0.1)

            def get(path: str, **params: str) -> None:
                r = c.get(base + path, params=params, timeout=120)
                r.raise_for_status()

            res["web: records page (first page)"] = _timed(lambda: get("/"))
            res["web: records page, search (common: 'Entity 12')"] = _timed(lambda: get("/", q="Entity 12"))
            res["web: records page, search (rare: a URL)"] = _timed(lambda: get("/", q=rare))
            res["web: records page, date filter (one day)"] = _timed(
                lambda: get("/", since="2024-06-01", until="2024-06-01"))
            res["web: API records list, date filter"] = _timed(
                lambda: get("/api/v1/records", since="2024-06-01", until="2024-06-02", limit="50"))
            res["web: record page (first reading, rendered)"] = _each(lambda r: get(f"/records/{r}"), some)
            res["web: record page (again, cached)"] = _each(lambda r: get(f"/records/{r}"), some)
            res["web: record JSON provenance (cached)"] = _each(lambda r: get(f"/api/v1/records/{r}/provenance"), some)
            res["web: record JSON (manifest and addenda)"] = _each(lambda r: get(f"/api/v1/records/{r}"), some)
    finally:
        server.terminate()
        server.wait(timeout=60)
    return res


def _one(backend: str) -> dict[str, Any]:
    from tests.services import LocalPostgres

    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"million-{backend}-", dir=OUT))
    store = tmp / "store"
    pg = LocalPostgres(durable=True) if backend == "postgresql" else None
    try:
        url = None
        if pg is not None:
            pg.__enter__()
            url = pg.database("million")
        print(f"{backend}: capturing {REAL} real records", flush=True)
        capture_s = _capture_real(store, url)
        from archiver.api import Archive

        real = [r.record_id for r in Archive.open(store).catalog.list()]
        print(f"{backend}: inserting {RECORDS - REAL:,} catalog rows", flush=True)
        fill_s = _fill(store, RECORDS - REAL)
        print(f"{backend}: inserted in {fill_s:.0f} s", flush=True)
        if url is not None:
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
        else:
            import sqlite3

            with sqlite3.connect(store / "catalog.sqlite3") as conn:
                conn.execute("ANALYZE")
        size = _size(store, url)
        print(f"{backend}: measuring", flush=True)
        res = _measure(store, real)
        return {"backend": backend, "capture_s": capture_s, "fill_s": fill_s, "size": size, "res": res}
    finally:
        if pg is not None:
            pg.__exit__(None, None, None)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    runs = [_one(b) for b in BACKENDS]
    load = os.getloadavg()
    lines = ["# A million records (bench/bench_million.py)", "",
             f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
             f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (shared with other work).", "",
             f"Catalog: {RECORDS:,} records: {REAL} real captures of corpus pages plus {RECORDS - REAL:,} rows "
             "inserted through `Catalog.insert_record` from the real manifests with new IDs, URLs (10 per URL), "
             "entities, times and digests (their manifests and blobs are not written; see the module docstring).",
             ""]
    lines += ["| backend | real captures | rows inserted | insert time | catalog on disk |", "|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['backend']} | {REAL} in {r['capture_s']:.0f} s | {RECORDS - REAL:,} | {r['fill_s']:.0f} s "
                     f"({(RECORDS - REAL) / max(r['fill_s'], 1e-9):,.0f}/s) | {r['size'] / 2**20:,.0f} MiB |")
    names = list(runs[0]["res"])
    lines += ["", "| read | " + " | ".join(f"{r['backend']} p50 ms | {r['backend']} p95 ms" for r in runs) + " |",
              "|---|" + "---|---|" * len(runs)]
    for name in names:
        cells = " | ".join(f"{r['res'][name]['p50']:.1f} | {r['res'][name]['p95']:.1f}" for r in runs)
        lines.append(f"| {name} | {cells} |")
    lines += ["", "Goal (issue 33): each read p95 <= 50 ms on both backends. CLI rows are child processes: "
              "their time includes Python's start-up (the `--help` row); the library rows are the same "
              "calls in process.", ""]
    text = "\n".join(lines)
    name = "results-million.md" if RECORDS >= 1_000_000 else f"results-million-{RECORDS}.md"
    (ROOT / "bench" / name).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
