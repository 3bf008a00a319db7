"""The transparency log's tables (``archiver/tlog/``): its leaves in log order, the tile-level hashes
above them, its position in the outbox, and the checkpoints it signed.

The catalog holds the log's index (what a leaf is, at which index; the hash of every full tile), so an
append is one catalog transaction; the tiles and entry bundles in the store are written from these
rows, and ``log audit`` rebuilds the tree from those files to check that both agree.
"""

from __future__ import annotations

from store.migrations.base import Migration, split

_TABLES = """
CREATE TABLE tlog_leaves (idx {idx} PRIMARY KEY, leaf_hash {blob} NOT NULL UNIQUE, kind TEXT NOT NULL,
    record_id TEXT NOT NULL, sha256 TEXT NOT NULL, outbox_seq BIGINT NOT NULL);
CREATE INDEX tlog_leaves_record ON tlog_leaves(record_id);
CREATE TABLE tlog_nodes (level INTEGER NOT NULL, idx BIGINT NOT NULL, hash {blob} NOT NULL, PRIMARY KEY (level, idx));
CREATE TABLE tlog_state (name TEXT PRIMARY KEY, outbox_seq BIGINT NOT NULL, size BIGINT NOT NULL,
    tiles_size BIGINT NOT NULL);
CREATE TABLE tlog_checkpoints (size BIGINT PRIMARY KEY, root TEXT NOT NULL, origin TEXT NOT NULL,
    signed_at TEXT NOT NULL, note TEXT NOT NULL)"""

#: the witnesses a log submits its checkpoints to (c2sp.org/tlog-witness): name = the witness key's name,
#: ``size`` = the largest size it cosigned as far as this log knows (the next request's ``old``)
_WITNESSES = """
CREATE TABLE tlog_witnesses (name TEXT PRIMARY KEY, vkey TEXT NOT NULL UNIQUE, url TEXT NOT NULL,
    size BIGINT NOT NULL, added_at TEXT NOT NULL)"""


MIGRATIONS: tuple[Migration, ...] = (
    Migration("tlog", 1, "transparency log: leaves, tile hashes, position, checkpoints",
              sqlite=split(_TABLES.format(idx="INTEGER", blob="BLOB")),
              postgresql=split(_TABLES.format(idx="BIGINT", blob="BYTEA"))),
    Migration("tlog", 2, "transparency log: the witnesses its checkpoints are submitted to",
              sqlite=split(_WITNESSES), postgresql=split(_WITNESSES)),
)
