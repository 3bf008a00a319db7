"""Exhibits and productions (``archiver/exhibits/``): which exhibit PDFs were made for a matter, with
their Bates ranges (so a later set continues the numbering and an overlapping one is refused), and
which productions were exported. Rows only; each is written with its custody entry in one unit of work
of the write path. A row names its matter and record by name and ID without a foreign key: matters are
another subsystem's, and the records table is an index that ``store rebuild-index`` empties."""

from __future__ import annotations

from store.migrations.base import Migration, both

MIGRATIONS: tuple[Migration, ...] = (
    both("exhibits", 1, "exhibit PDFs with their Bates ranges, and productions", """
CREATE TABLE exhibits (
    matter TEXT NOT NULL,
    label TEXT NOT NULL,
    record_id TEXT NOT NULL,
    pages INTEGER NOT NULL,
    bates_prefix TEXT NOT NULL,
    bates_first INTEGER NOT NULL,
    bates_last INTEGER NOT NULL,
    pdf_sha256 TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (matter, label)
);
CREATE INDEX exhibits_bates ON exhibits(matter, bates_prefix, bates_first);
CREATE TABLE productions (
    matter TEXT NOT NULL,
    format TEXT NOT NULL,
    out_path TEXT NOT NULL,
    exhibits INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX productions_matter ON productions(matter, created_at)"""),
)
