"""Every list and search of the catalog runs on an index with keyset pages (issue 33: a million records).

Each read is run for real and the statements it sends are captured, then explained on the same
catalog (SQLite ``EXPLAIN QUERY PLAN``; PostgreSQL ``EXPLAIN`` with sequential scans priced out, so
the plan says whether an index *can* serve it: on a few rows the planner would rightly scan). A read
that scans ``records`` or sorts it in a temporary B-tree fails. Substring search goes through the
trigram index and finds what the row-by-row filter finds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from archiver.api import Archive
from store import catalog as catalog_mod
from store.catalog import Catalog
from store.search import INDEXED_MAX, Query, search

N = 60


@pytest.fixture()
def filled(archive: Archive, site: Any) -> Archive:
    """One real record, and N more catalog rows made from it through ``Catalog.insert_record``."""
    base = archive.capture(site.base_url + "/policy", actor="tester")
    with archive.catalog.db() as d, d.tx():
        for i in range(N):
            rid = f"T{i:03d}-AAAA".replace("T", "Q")[:4] + f"-{i:04d}"
            url = f"https://site{i % 3}.example/doc_{i // 4}/terms"
            m = dataclasses.replace(
                base, record_id=rid, captured_at=f"2025-0{1 + i % 9}-1{i % 10}T10:00:{i % 60:02d}.000Z",
                previous=None, subject=dataclasses.replace(base.subject, url=url, final_url=url + "?final",
                                                           entity=f"Entity {i % 5}", document="Terms",
                                                           title=f"Terms number {i}"),
                artifacts=tuple(dataclasses.replace(x, sha256=hashlib.sha256(f"{rid}{x.name}".encode()).hexdigest())
                                for x in base.artifacts))
            Catalog.insert_record(d, m, hashlib.sha256(rid.encode()).hexdigest())
    return archive


@pytest.fixture()
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    sent: list[tuple[str, tuple[Any, ...]]] = []
    for cls in (catalog_mod._SqliteDb, catalog_mod._PgDb):
        orig = cls.rows

        def rows(self: Any, sql: str, args: Any = (), _orig: Callable[..., Any] = orig) -> Any:
            sent.append((sql, tuple(args)))
            return _orig(self, sql, args)

        monkeypatch.setattr(cls, "rows", rows)
    yield sent


def _plans(archive: Archive, sent: list[tuple[str, tuple[Any, ...]]]) -> list[tuple[str, str]]:
    out = []
    if archive.catalog.backend == "sqlite":
        with sqlite3.connect(archive.root / "catalog.sqlite3") as db:
            for sql, args in sent:
                plan = " | ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql, args))
                out.append((sql, plan))
        return out
    import psycopg

    with psycopg.connect(archive.catalog.location) as conn:
        conn.execute("SET enable_seqscan = off")
        for sql, args in sent:
            rows = conn.execute("EXPLAIN " + catalog_mod._pg(sql), args).fetchall()  # type: ignore[arg-type]
            out.append((sql, " | ".join(str(r[0]) for r in rows)))
    return out


#: indexes that narrow records by a value (PostgreSQL plans must name one of them for a narrowing read)
NARROWING = ("records_url", "records_final_url", "artifacts_sha256", "records_text_trgm", "records_pkey",
             "artifacts_pkey", "records_entity")


def _check(archive: Archive, sent: list[tuple[str, tuple[Any, ...]]], what: str, mode: str) -> None:
    """``mode`` "ordered": the newest (or oldest) page read from ``records_captured`` in order, which
    stops after a page (a scan of that index is the right plan, a sort of the table is not);
    "narrowing": a value narrows the rows (a URL, a hash, a word, named IDs): no scan of ``records``."""
    assert sent, f"{what}: no statement captured"
    for sql, plan in _plans(archive, sent):
        if "records" not in sql:
            continue
        steps = plan.split(" | ")
        if archive.catalog.backend == "sqlite":
            scans = [p for p in steps if p.startswith(("SCAN r ", "SCAN records")) or p in ("SCAN r", "SCAN records")]
            if mode == "ordered":
                bad = [p for p in scans if "records_captured" not in p]
                bad += [p for p in steps if "TEMP B-TREE FOR ORDER BY" in p]
            else:  # a sort of what an equality probe found (one URL's records, named IDs) is fine
                bad = [p for p in steps if p.startswith("SCAN ") and "VIRTUAL TABLE" not in p]
        else:
            bad = [p for p in steps if "Seq Scan on records" in p]
            if mode == "narrowing" and not any(ix in plan for ix in NARROWING):
                bad.append("no narrowing index")
        assert not bad, f"{what}: {bad} in the plan of {sql!r}:\n{plan}"
    sent.clear()


@pytest.mark.parametrize("catalog", ["sqlite", "postgresql"], indirect=True)
def test_every_list_and_search_is_indexed(filled: Archive, captured: list[tuple[str, tuple[Any, ...]]]) -> None:
    a = filled
    c = a.catalog
    with c.db() as d:  # the planner with statistics, as on a store that has lived (bench_million runs it)
        d.run("ANALYZE")
    captured.clear()
    first = c.list(limit=10)
    _check(a, captured, "list, first page", "ordered")
    nxt = c.list(limit=10, after=first[-1].record_id)
    _check(a, captured, "list, next page", "ordered")
    assert [r.record_id for r in c.list(limit=20)][10:] == [r.record_id for r in nxt]
    captured.clear()
    assert c.list(url="https://site1.example/doc_1/terms?final")
    _check(a, captured, "list --url (a final URL)", "narrowing")
    some = first[3]
    assert [m.record_id for m in a.lookup(a.catalog.record_blobs(some.record_id)["content"])] == [some.record_id]
    _check(a, captured, "lookup --sha256", "narrowing")
    assert a.watches.history("https://site0.example/doc_0/terms").versions
    _check(a, captured, "history URL", "narrowing")
    page = search(c, Query(limit=51))
    _check(a, captured, "records page", "ordered")
    after = search(c, Query(limit=5, after=(page[4].captured_at, page[4].record_id)))
    assert [r.record_id for r in after] == [r.record_id for r in page[5:10]]
    _check(a, captured, "records page, next page", "ordered")
    assert search(c, Query(since="2025-03-01", until="2025-03-31", limit=51))
    _check(a, captured, "records page, date filter", "ordered")
    assert len(search(c, Query(text="doc_1/", limit=51))) == 4  # '_' taken literally (row by row, escaped)
    captured.clear()
    found = search(c, Query(text="Number 17", limit=51))
    _check(a, captured, "records page, search", "narrowing")
    want = [r.record_id for r in c.list(limit=100) if r.title == "Terms number 17"]
    assert [r.record_id for r in found] == want and len(want) == 1


def test_indexed_search_finds_what_the_row_filter_finds(filled: Archive) -> None:
    """The trigram path and the row-by-row LIKE agree, on words of every frequency and in any case."""
    from store import search as search_mod

    c = filled.catalog
    words = ["site1", "SITE2.example", "terms number 4", "Entity 3", "doc_", "policy", "zzz-nothing", "Q00",
             "/terms", "ms nu", "entity"]
    for w in words:
        fast = [r.record_id for r in search(c, Query(text=w, limit=500))]
        old = search_mod._indexed_matches
        try:
            search_mod._indexed_matches = lambda *_: None  # type: ignore[assignment]
            slow = [r.record_id for r in search(c, Query(text=w, limit=500))]
        finally:
            search_mod._indexed_matches = old
        assert fast == slow, w
    assert INDEXED_MAX >= 1000
    # and the index answered the rare words (a common one, or one under three characters, it leaves)
    assert search_mod._indexed_matches(c, "terms number 4") is not None
    assert search_mod._indexed_matches(c, "Q0") is None
