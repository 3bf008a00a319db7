"""Matters (``archiver/matters/``): a case or investigation that groups records, with notes, tags and
legal holds. Rows only; every change is a custody entry written by the use case through the one write
path.

A matter's ordered exhibit list *is* a collection (``collections``, the subsystem above): ``matters.
collection`` names it, so the two concepts stay one. Notes, tags and holds name their record by ID
without a foreign key, like a collection's items: ``store rebuild-index`` empties and refills
``records``, and a case file must survive that. A hold is never deleted: releasing it sets
``released_at`` (the custody log says the same, but the record page reads the table)."""

from __future__ import annotations

from store.migrations.base import Migration, both

MIGRATIONS: tuple[Migration, ...] = (
    both("matters", 1, "matters, notes, tags and legal holds", """
CREATE TABLE matters (
    name TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    client TEXT NOT NULL DEFAULT '',
    number TEXT NOT NULL DEFAULT '',
    collection TEXT NOT NULL UNIQUE REFERENCES collections(name),
    created_at TEXT NOT NULL
);
CREATE TABLE matter_notes (
    note_id TEXT PRIMARY KEY,
    record_id TEXT NOT NULL,
    matter TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX matter_notes_record ON matter_notes(record_id, created_at);
CREATE TABLE matter_tags (
    matter TEXT NOT NULL DEFAULT '',
    record_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (matter, record_id, tag)
);
CREATE INDEX matter_tags_record ON matter_tags(record_id);
CREATE TABLE legal_holds (
    hold_id TEXT PRIMARY KEY,
    matter TEXT NOT NULL REFERENCES matters(name),
    reason TEXT NOT NULL,
    placed_by TEXT NOT NULL,
    placed_at TEXT NOT NULL,
    released_by TEXT,
    released_at TEXT
);
CREATE INDEX legal_holds_matter ON legal_holds(matter, released_at)"""),
    # how far the S3 legal holds have followed the outbox: an addendum committed for a held record
    # (a timestamp, a publication, a derived text) gets the server's legal hold too (matters/holds.py)
    Migration("matters", 2, "position of the legal holds in the outbox",
              sqlite=("CREATE TABLE legal_hold_state (name TEXT PRIMARY KEY, outbox_seq BIGINT NOT NULL)",),
              postgresql=("CREATE TABLE legal_hold_state (name TEXT PRIMARY KEY, outbox_seq BIGINT NOT NULL)",),
              not_copied=frozenset({"legal_hold_state"})),
)
