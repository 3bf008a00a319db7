"""The full-text index of the documents' sections, on SQLite (FTS5) and PostgreSQL (tsvector + GIN).

Why in the catalog and not a search engine beside it: a law firm's archive is one SQLite file or one
PostgreSQL database, and both rank words well enough for "how does every service word this clause".
The index holds a copy of each section's text (so a hit shows its snippet without reading a blob) and
the record's URL, entity, document and time (so filters need no join). It is derived data, never
evidence: rows are replaced whenever a record's main-text is derived again, and the whole index can be
rebuilt from the outbox (``archiver/fulltext.py``).

Queries are parsed here, never passed through: a user's words become quoted FTS5 terms (so ``-``,
``:``, ``*`` or an unbalanced quote cannot make a syntax error or an unintended operator), and a
``"quoted phrase"`` stays a phrase; PostgreSQL gets the same meaning from ``websearch_to_tsquery``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from store.catalog import Catalog, _Db

#: marks around each matched word in a snippet: private-use characters, which no extracted text holds
#: (the extractor's own block marks are removed before text is stored) — front-ends turn them into <mark>
HIT_START, HIT_END = "\ue010", "\ue011"
STATE = "fulltext"
#: words or phrases in one query, and the longest query: beyond these a query is refused, not truncated
MAX_TERMS = 32
MAX_QUERY = 500

_TERM = re.compile(r'"([^"]*)"|([^\s"]+)')
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class SectionRow:
    record_id: str
    section: int
    url: str
    entity: str | None
    document: str | None
    captured_at: str
    heading: str
    body: str
    body_sha256: str


@dataclass(frozen=True, slots=True)
class Hit:
    id: int
    record_id: str
    section: int
    url: str
    entity: str | None
    document: str | None
    captured_at: str
    heading: str
    body_sha256: str
    snippet: str  # with HIT_START/HIT_END around matched words
    score: float  # higher is better, comparable within one query only


def terms(query: str) -> list[list[str]]:
    """The query as a list of terms, each a list of words (one word, or a phrase's words in order)."""
    found: list[list[str]] = []
    for phrase, word in _TERM.findall(query):
        words = _WORD.findall(phrase if phrase else word)
        if words:
            found.append([w.lower() for w in words])
    return found


def fts5_query(parsed: list[list[str]]) -> str:
    """Every term required (AND); a phrase's words adjacent. Each word quoted: never an operator."""
    return " ".join('"' + " ".join(words) + '"' for words in parsed)


#: pg_advisory_xact_lock key of a sync's write transaction (see :func:`lock`)
_SYNC_LOCK = 7311


def lock(d: _Db, postgres: bool) -> None:
    """Serialise syncs' write transactions (inside the caller's). SQLite's ``BEGIN IMMEDIATE`` already
    does; PostgreSQL's ``BEGIN`` does not, and under READ COMMITTED a second sync would read the old
    position while the first's transaction is open, pass its check and index the same records again."""
    if postgres:
        d.one("SELECT pg_advisory_xact_lock(?)", (_SYNC_LOCK,))


def position(d: _Db) -> int:
    row = d.one("SELECT outbox_seq FROM fulltext_state WHERE name=?", (STATE,))
    return int(row[0]) if row else 0


def set_position(d: _Db, seq: int, sections: int, records: int) -> None:
    """Move the position and add the deltas to the counts (inside the caller's transaction)."""
    if d.run("UPDATE fulltext_state SET outbox_seq=?, sections=sections+?, records=records+? WHERE name=?",
             (seq, sections, records, STATE)) == 0:
        d.run("INSERT INTO fulltext_state (name, outbox_seq, sections, records) VALUES (?, ?, ?, ?)",
              (STATE, seq, sections, records))


def replace_record(d: _Db, record_id: str, rows: list[SectionRow], postgres: bool) -> tuple[int, int]:
    """The record's sections become ``rows`` (inside the caller's transaction); returns the change in
    (sections, records) for :func:`set_position`."""
    old = d.rows("SELECT id, heading, body FROM fulltext_sections WHERE record_id=?", (record_id,))
    if old and not postgres:  # an external-content FTS5 index forgets a row only when told its words
        d.many("INSERT INTO fulltext (fulltext, rowid, heading, body) VALUES ('delete', ?, ?, ?)", old)
    if old:
        d.run("DELETE FROM fulltext_sections WHERE record_id=?", (record_id,))
    for r in rows:
        values = (r.record_id, r.section, r.url, r.entity, r.document, r.captured_at, r.heading, r.body,
                  r.body_sha256)
        d.run("INSERT INTO fulltext_sections (record_id, section, url, entity, document, captured_at, heading, "
              "body, body_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
        if not postgres:  # (PostgreSQL's tsvector column is generated from the row)
            rowid = d.one("SELECT last_insert_rowid()")
            assert rowid is not None
            d.run("INSERT INTO fulltext (rowid, heading, body) VALUES (?, ?, ?)", (rowid[0], r.heading, r.body))
    return len(rows) - len(old), int(bool(rows)) - int(bool(old))


def counts(catalog: Catalog) -> tuple[int, int, int]:
    """(sections, records, outbox position) of the index: one row."""
    with catalog.reader() as d:
        row = d.one("SELECT sections, records, outbox_seq FROM fulltext_state WHERE name=?", (STATE,))
    return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)


def entities(catalog: Catalog) -> list[str]:
    """Entities of the tracked documents (one ``documents`` row per URL: small), for a filter's choices."""
    with catalog.reader() as d:
        return [r[0] for r in d.rows("SELECT DISTINCT entity FROM documents WHERE entity IS NOT NULL ORDER BY entity")]


def query(catalog: Catalog, parsed: list[list[str]], *, entity: str | None = None, latest: bool = False,
          limit: int = 50) -> list[Hit]:
    """The best ``limit`` sections for ``parsed`` (every term present), best first, without snippets
    (:func:`snippets` makes them for the hits that are shown); a pure read."""
    if not parsed:
        return []
    postgres = catalog.backend == "postgresql"
    where: list[str] = []
    args: list[Any] = []
    if entity:
        where.append("s.entity = ?")
        args.append(entity)
    if latest:  # a URL's newest indexed record: its document's tip (a selector-missed capture is not indexed)
        where.append("NOT EXISTS (SELECT 1 FROM fulltext_sections t WHERE t.url = s.url "
                     "AND t.captured_at > s.captured_at)")
    cond = "".join(" AND " + w for w in where)
    with catalog.reader() as d:
        if postgres:
            sql = (f"SELECT s.id, ts_rank_cd(s.words, to_tsquery('english', ?), 1) AS score "  # noqa: S608
                   f"FROM fulltext_sections s WHERE s.words @@ to_tsquery('english', ?){cond} "
                   f"ORDER BY score DESC, s.id DESC LIMIT ?")
            q = pg_query(parsed)
            ranked = [(int(r[0]), float(r[1])) for r in d.rows(sql, [q, q, *args, limit])]
        elif where:
            # FTS5's rank column: bm25 with the heading weighted 3 (store/migrations/fulltext.py), negative
            ranked = [(int(r[0]), -float(r[1])) for r in d.rows(
                f"SELECT s.id, fulltext.rank FROM fulltext JOIN fulltext_sections s ON "  # noqa: S608
                f"s.id = fulltext.rowid WHERE fulltext MATCH ?{cond} ORDER BY fulltext.rank LIMIT ?",
                [fts5_query(parsed), *args, limit])]
        else:
            ranked = [(int(r[0]), -float(r[1])) for r in d.rows(
                "SELECT rowid, rank FROM fulltext WHERE fulltext MATCH ? ORDER BY rank LIMIT ?",
                [fts5_query(parsed), limit])]
        if not ranked:
            return []
        marks = ", ".join("?" * len(ranked))
        rows = {int(r[0]): r for r in d.rows(
            "SELECT id, record_id, section, url, entity, document, captured_at, heading, body_sha256 "  # noqa: S608
            f"FROM fulltext_sections WHERE id IN ({marks})", [i for i, _ in ranked])}
    return [Hit(i, r[1], int(r[2]), r[3], r[4], r[5], r[6], r[7], r[8], "", score)
            for i, score in ranked if (r := rows.get(i)) is not None]


def snippets(catalog: Catalog, parsed: list[list[str]], ids: list[int]) -> dict[int, str]:
    """The words around the match in each of these sections, matched words between HIT_START/HIT_END.

    Made one section at a time, for the hits shown only: FTS5's snippet() and PostgreSQL's
    ts_headline() read the whole text again, so in a ranking query they would run for every match."""
    out: dict[int, str] = {}
    with catalog.reader() as d:
        for i in ids:
            if catalog.backend == "postgresql":
                row = d.one(f"SELECT ts_headline('english', body, to_tsquery('english', ?), "  # noqa: S608
                            f"'StartSel={HIT_START}, StopSel={HIT_END}, MaxWords=28, MinWords=12, MaxFragments=1') "
                            f"FROM fulltext_sections WHERE id = ?", (pg_query(parsed), i))
            else:
                row = d.one(f"SELECT snippet(fulltext, 1, '{HIT_START}', '{HIT_END}', ' … ', 24) "  # noqa: S608
                            f"FROM fulltext WHERE fulltext MATCH ? AND rowid = ?", (fts5_query(parsed), i))
            out[i] = (row[0] or "") if row else ""
    return out


def pg_query(parsed: list[list[str]]) -> str:
    """Every term required; a phrase's words adjacent (``<->``); each word quoted: never an operator."""
    return " & ".join("(" + " <-> ".join(_pg_word(w) for w in words) + ")" for words in parsed)


def _pg_word(word: str) -> str:
    """One word as a to_tsquery operand: quoted, so it is a lexeme and never an operator."""
    return "'" + word.replace("'", "''").replace("\\", "") + "'"


__all__ = [
    "HIT_END",
    "HIT_START",
    "MAX_QUERY",
    "MAX_TERMS",
    "Hit",
    "SectionRow",
    "counts",
    "entities",
    "fts5_query",
    "lock",
    "pg_query",
    "position",
    "query",
    "replace_record",
    "set_position",
    "snippets",
    "terms",
]
