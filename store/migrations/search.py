"""Record search's indexes (``store/search.py``): pages of records newest first, cut by keyset, and
substring search over URL, entity, document, title and record ID that does not read every row.

Why trigrams: the records page's search is a substring match (``%word%``), which no B-tree serves; at
a million records a rare word read every row (about a second). SQLite's FTS5 ``trigram`` tokenizer
and PostgreSQL's ``pg_trgm`` GIN index answer ``LIKE '%word%'`` from an index for words of three
characters or more. On SQLite the text lives in ``search_text`` (an explicit INTEGER PRIMARY KEY, so
a VACUUM cannot renumber what the FTS index points to), filled by triggers on ``records``, so every
writer (capture, import, rebuild-index, ``store migrate``) keeps it without knowing it exists.
PostgreSQL needs the ``pg_trgm`` extension (contrib; trusted since PostgreSQL 13, so the database's
owner may create it)."""

from __future__ import annotations

from store.migrations.base import Migration, both

#: PostgreSQL's spelling of the same text, lower-cased (the index is on this expression)
PG_HAYSTACK = ("lower(url || chr(10) || COALESCE(entity, '') || chr(10) || COALESCE(document, '') || chr(10) "
               "|| COALESCE(title, '') || chr(10) || record_id)")

MIGRATIONS: tuple[Migration, ...] = (
    # a baseline although the old release made it only when the web app started: IF NOT EXISTS
    both("search", 1, "baseline: records_captured index",
         "CREATE INDEX IF NOT EXISTS records_captured ON records(captured_at, record_id)", baseline=True),
    Migration("search", 2, "records by final URL; trigram index for substring search", sqlite=(
        "CREATE INDEX records_final_url ON records(final_url, captured_at)",
        "CREATE TABLE search_text (id INTEGER PRIMARY KEY, record_id TEXT NOT NULL UNIQUE, haystack TEXT NOT NULL)",
        "CREATE VIRTUAL TABLE records_fts USING fts5(haystack, content='search_text', content_rowid='id', "
        "tokenize='trigram')",
        "CREATE TRIGGER search_text_ai AFTER INSERT ON search_text BEGIN "
        "INSERT INTO records_fts(rowid, haystack) VALUES (new.id, new.haystack); END",
        "CREATE TRIGGER search_text_ad AFTER DELETE ON search_text BEGIN "
        "INSERT INTO records_fts(records_fts, rowid, haystack) VALUES ('delete', old.id, old.haystack); END",
        # what a search matches, one field a line (a search with a newline in it is not sent to the index)
        "CREATE TRIGGER records_search_ai AFTER INSERT ON records BEGIN "
        "INSERT INTO search_text(record_id, haystack) VALUES (new.record_id, new.url || char(10) || "
        "COALESCE(new.entity, '') || char(10) || COALESCE(new.document, '') || char(10) || "
        "COALESCE(new.title, '') || char(10) || new.record_id); END",
        "CREATE TRIGGER records_search_ad AFTER DELETE ON records BEGIN "
        "DELETE FROM search_text WHERE record_id = old.record_id; END",
        "INSERT INTO search_text(record_id, haystack) SELECT record_id, url || char(10) || COALESCE(entity, '') "
        "|| char(10) || COALESCE(document, '') || char(10) || COALESCE(title, '') || char(10) || record_id "
        "FROM records",
    ), postgresql=(
        "CREATE INDEX records_final_url ON records(final_url, captured_at)",
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        f"CREATE INDEX records_text_trgm ON records USING gin (({PG_HAYSTACK}) gin_trgm_ops)",
    ), not_copied=frozenset({"search_text"})),
)
