"""Provisions (``archiver/provisions/``): pinned clauses of a document and every observation of them.

``provisions`` holds what was pinned (its first text, section and record; who and when), and when it
stopped being tracked; ``provision_checks`` is append-only: one row per provision and record in which
it was looked for (the pin itself is the first), so every version of the clause text and every
"last verified" comes from it. Records are named by ID without a foreign key: the records table is an
index that ``store rebuild-index`` empties and refills, and provisions must survive that."""

from __future__ import annotations

from store.migrations.base import Migration, both

MIGRATIONS: tuple[Migration, ...] = (
    both("provisions", 1, "provisions and their observations", """
CREATE TABLE provisions (
    provision_id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    entity TEXT,
    document TEXT,
    label TEXT,
    record_id TEXT NOT NULL,
    section TEXT,
    section_key TEXT,
    text TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    untracked_at TEXT,
    untracked_by TEXT
);
CREATE INDEX provisions_url ON provisions(url);
CREATE TABLE provision_checks (
    seq {autoid},
    provision_id TEXT NOT NULL REFERENCES provisions(provision_id),
    record_id TEXT NOT NULL,
    captured_at TEXT NOT NULL,
    checked_at TEXT NOT NULL,
    status TEXT NOT NULL,
    section TEXT,
    section_key TEXT,
    text TEXT,
    sha256 TEXT,
    similarity REAL NOT NULL,
    UNIQUE (provision_id, record_id)
);
CREATE INDEX provision_checks_record ON provision_checks(record_id)"""),
)
