"""Record search for the web app and API: filters and keyset pagination that stay fast at 100,000 records.

Pages are cut by ``(captured_at, record_id)`` rather than OFFSET, so page 500 costs what page 1 does;
the ``records_captured`` index (search migration 1, store/migrations/search.py) serves the default order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archiver.records import RecordSummary
from store.catalog import _RECORD_COLS, Catalog, _summary


@dataclass(frozen=True, slots=True)
class Query:
    text: str | None = None  # matches URL, entity, document or title (substring), or a SHA-256
    url: str | None = None
    entity: str | None = None
    document: str | None = None
    since: str | None = None  # ISO date or time, inclusive
    until: str | None = None  # ISO date (whole day included) or time, exclusive
    state: str | None = None  # unstamped | stamped | verified | failed | watched (latest verification)
    after: tuple[str, str] | None = None  # keyset cursor: (captured_at, record_id) of the last row shown
    limit: int = 50


def search(catalog: Catalog, q: Query) -> list[RecordSummary]:
    """Newest first."""
    where: list[str] = []
    args: list[Any] = []
    if q.url:
        where.append("(r.url=? OR r.final_url=?)")
        args += [q.url, q.url]
    if q.entity:
        where.append("r.entity=?")
        args.append(q.entity)
    if q.document:
        where.append("r.document=?")
        args.append(q.document)
    if q.since:
        where.append("r.captured_at >= ?")
        args.append(q.since)
    if q.until:
        where.append("r.captured_at < ?")
        args.append(q.until + ("T99" if len(q.until) == 10 else ""))  # a date includes its whole day
    text = (q.text or "").strip()
    if text:
        hexed = text.lower().removeprefix("sha256:")
        if len(hexed) == 64 and all(c in "0123456789abcdef" for c in hexed):
            where.append("r.record_id IN (SELECT record_id FROM artifacts WHERE sha256=?)")
            args.append(hexed)
        else:
            found = _indexed_matches(catalog, text)
            if found is not None:  # few enough to name: the page is cut from them
                if not found:
                    return []
                where.append(f"r.record_id IN ({','.join('?' * len(found))})")
                args += found
            else:  # a common word (met within a few pages of the index scan), or one the index cannot take
                like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").lower() + "%"
                where.append("(LOWER(r.url) LIKE ? ESCAPE '\\' OR LOWER(COALESCE(r.entity,'')) LIKE ? ESCAPE '\\' "
                             "OR LOWER(COALESCE(r.document,'')) LIKE ? ESCAPE '\\' OR LOWER(COALESCE(r.title,'')) "
                             "LIKE ? ESCAPE '\\' OR LOWER(r.record_id) LIKE ? ESCAPE '\\')")
                args += [like] * 5
    if q.state == "unstamped":
        where.append("NOT EXISTS (SELECT 1 FROM addenda a WHERE a.record_id=r.record_id AND a.kind='timestamp')")
    elif q.state == "stamped":
        where.append("EXISTS (SELECT 1 FROM addenda a WHERE a.record_id=r.record_id AND a.kind='timestamp')")
    elif q.state == "verified":
        where.append("EXISTS (SELECT 1 FROM verifications v WHERE v.record_id=r.record_id AND v.ok=1)")
    elif q.state == "failed":
        where.append("EXISTS (SELECT 1 FROM verifications v WHERE v.record_id=r.record_id AND v.ok=0)")
    elif q.state == "watched":
        where.append("r.url IN (SELECT url FROM watches)")
    if q.after is not None:
        # a row value, not "a < ? OR (a = ? AND b < ?)": SQLite plans that OR as two index probes and a
        # sort of everything before the cursor; the row value is one range of records_captured, in order
        where.append("(r.captured_at, r.record_id) < (?, ?)")
        args += [q.after[0], q.after[1]]
    cols = ", ".join("r." + c.strip() for c in _RECORD_COLS.split(","))
    sql = f"SELECT {cols} FROM records r"  # noqa: S608
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY r.captured_at DESC, r.record_id DESC LIMIT {max(1, min(int(q.limit), 1000))}"
    with catalog.reader() as d:
        return [_summary(row) for row in d.rows(sql, args)]


#: A word matching more records than this is common: the newest-first index scan meets a page of
#: them within a few thousand rows, so the rows are filtered in index order instead of named
INDEXED_MAX = 5000


def _indexed_matches(catalog: Catalog, text: str) -> list[str] | None:
    """The IDs of the records whose searchable text holds ``text``, from the trigram index; None when
    the index cannot answer (fewer than three characters, a LIKE wildcard or a newline in the text) or
    the word is common (more than :data:`INDEXED_MAX` records), so the caller filters row by row."""
    if len(text) < 3 or any(c in text for c in "%_\\\n\r"):
        return None
    pattern = "%" + text.lower() + "%"
    if catalog.backend == "sqlite":
        # the index first, then its rows' IDs, in that order whatever the statistics say (CROSS JOIN
        # fixes SQLite's join order): as a plain join, once ANALYZE had run, the planner walked
        # search_text and asked the FTS index once per row (16 s at 20,000 records)
        sql = ("SELECT s.record_id FROM records_fts f CROSS JOIN search_text s ON s.id = f.rowid "
               "WHERE f.haystack LIKE ? LIMIT ?")
    else:
        from store.migrations.search import PG_HAYSTACK

        sql = f"SELECT record_id FROM records WHERE {PG_HAYSTACK} LIKE ? LIMIT ?"  # noqa: S608
    with catalog.reader() as d:
        rows = d.rows(sql, (pattern, INDEXED_MAX + 1))
    return None if len(rows) > INDEXED_MAX else [str(r[0]) for r in rows]


def stamped_among(catalog: Catalog, record_ids: list[str]) -> set[str]:
    if not record_ids:
        return set()
    marks = ",".join("?" * len(record_ids))
    with catalog.reader() as d:
        rows = d.rows(f"SELECT DISTINCT record_id FROM addenda WHERE kind='timestamp' "  # noqa: S608
                      f"AND record_id IN ({marks})", record_ids)
    return {str(r[0]) for r in rows}


def verification_states(catalog: Catalog, record_ids: list[str]) -> dict[str, bool]:
    return {rid: v.ok for rid, v in cached_verifications(catalog, record_ids).items()}


@dataclass(frozen=True, slots=True)
class CachedVerification:
    """The latest verification of a record as the cache holds it: a read, never a new verification."""

    time: str
    ok: bool
    failed: tuple[str, ...]


def cached_verifications(catalog: Catalog, record_ids: list[str]) -> dict[str, CachedVerification]:
    """The cached results of these records (the web's GETs show these instead of re-hashing)."""
    if not record_ids:
        return {}
    marks = ",".join("?" * len(record_ids))
    with catalog.reader() as d:
        rows = d.rows(f"SELECT record_id, time, ok, failed FROM verifications WHERE record_id IN ({marks})",  # noqa: S608
                      record_ids)
    return {str(r[0]): CachedVerification(str(r[1]), bool(r[2]), tuple(x for x in str(r[3] or "").split(",") if x))
            for r in rows}


def verification_queue(catalog: Catalog, limit: int) -> list[str]:
    """The records a background refresh should verify next: never verified first, then the oldest result."""
    with catalog.reader() as d:
        rows = d.rows("SELECT r.record_id FROM records r LEFT JOIN verifications v ON v.record_id = r.record_id "
                      "ORDER BY CASE WHEN v.time IS NULL THEN 0 ELSE 1 END, v.time, r.record_id LIMIT ?",
                      (max(0, int(limit)),))
    return [str(r[0]) for r in rows]


def watched_urls(catalog: Catalog) -> set[str]:
    with catalog.reader() as d:
        return {str(r[0]) for r in d.rows("SELECT url FROM watches")}


__all__ = [
    "CachedVerification",
    "Query",
    "cached_verifications",
    "search",
    "stamped_among",
    "verification_queue",
    "verification_states",
    "watched_urls",
]
