"""Collections (``archiver/collections.py``): named, ordered lists of records with a title — a public
page of citations with one bundle today, a matter's exhibit list later. Rows only; every change is a
custody entry written by the use case through the one write path. An item names its record by ID
without a foreign key: the records table is an index that ``store rebuild-index`` empties and refills,
and a collection must survive that."""

from __future__ import annotations

from store.migrations.base import Migration, both

MIGRATIONS: tuple[Migration, ...] = (
    both("collections", 1, "collections and their ordered records", """
CREATE TABLE collections (
    name TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    public INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE collection_items (
    name TEXT NOT NULL REFERENCES collections(name),
    position INTEGER NOT NULL,
    record_id TEXT NOT NULL,
    added_at TEXT NOT NULL,
    PRIMARY KEY (name, position),
    UNIQUE (name, record_id)
);
CREATE INDEX collection_items_record ON collection_items(record_id)"""),
)
