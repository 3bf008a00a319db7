"""The custody log's table, on PostgreSQL only (``store/custody.py``): a SQLite store keeps its chain
in the ``custody.log`` file beside the catalog."""

from __future__ import annotations

from store.migrations.base import Migration, split

MIGRATIONS: tuple[Migration, ...] = (
    Migration("custody", 1, "baseline: custody table", sqlite=None, postgresql=split("""
CREATE TABLE IF NOT EXISTS custody (seq BIGINT PRIMARY KEY, record_id TEXT, line TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS custody_record ON custody(record_id)"""), baseline=True),
)
