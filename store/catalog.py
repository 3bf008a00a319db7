"""SQLite catalog in WAL mode: an index over the blobs, safe for several processes at once.

It holds nothing that cannot be rebuilt from the manifests in the blob store
(``archiver store rebuild-index``); the manifests stay the source of truth.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from archiver.errors import StoreCorruptError, StoreError
from archiver.records import ArtifactMatch, Manifest, RecordSummary

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id INTEGER PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    entity TEXT,
    document TEXT,
    first_record TEXT,
    last_record TEXT
);
CREATE TABLE IF NOT EXISTS records (
    record_id TEXT PRIMARY KEY,
    doc_id INTEGER NOT NULL REFERENCES documents(doc_id),
    url TEXT NOT NULL,
    final_url TEXT NOT NULL,
    entity TEXT,
    document TEXT,
    title TEXT,
    captured_at TEXT NOT NULL,
    status INTEGER NOT NULL,
    manifest_sha256 TEXT NOT NULL UNIQUE,
    content_sha256 TEXT NOT NULL,
    text_sha256 TEXT,
    payload_sha1_b32 TEXT,
    key_id TEXT NOT NULL,
    previous_record_id TEXT
);
CREATE INDEX IF NOT EXISTS records_url ON records(url, captured_at);
CREATE INDEX IF NOT EXISTS records_entity ON records(entity, document);
CREATE TABLE IF NOT EXISTS artifacts (
    record_id TEXT NOT NULL REFERENCES records(record_id),
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    PRIMARY KEY (record_id, name)
);
CREATE INDEX IF NOT EXISTS artifacts_sha256 ON artifacts(sha256);
CREATE TABLE IF NOT EXISTS addenda (
    sha256 TEXT PRIMARY KEY,
    record_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS addenda_record ON addenda(record_id, kind, created_at);
CREATE TABLE IF NOT EXISTS watches (
    url TEXT PRIMARY KEY,
    entity TEXT,
    document TEXT,
    interval_s INTEGER NOT NULL,
    options TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_run TEXT,
    last_outcome TEXT,
    last_record TEXT
);
CREATE TABLE IF NOT EXISTS watch_runs (
    run_id INTEGER PRIMARY KEY,
    url TEXT NOT NULL,
    time TEXT NOT NULL,
    outcome TEXT NOT NULL,
    record_id TEXT,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS watch_runs_url ON watch_runs(url, time);
CREATE TABLE IF NOT EXISTS signer_keys (
    key_id TEXT PRIMARY KEY,
    public_pem_sha256 TEXT NOT NULL
);
"""

_RECORD_COLS = ("record_id, url, final_url, entity, document, title, captured_at, status, "
                "manifest_sha256, content_sha256, key_id")


def _row_to_summary(row: sqlite3.Row) -> RecordSummary:
    return RecordSummary(**{k: row[k] for k in row.keys()})


ListOf = list  # the classes below define a method named list


class Catalog:
    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """One short-lived connection per operation: safe across threads and processes."""
        try:
            conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open catalog {self.path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA busy_timeout = 60000")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = FULL")
            yield conn
        except sqlite3.DatabaseError as exc:
            raise StoreCorruptError(f"catalog {self.path} failed: {exc}") from exc
        finally:
            conn.close()

    def create(self) -> None:
        with self.connect() as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def check(self) -> None:
        if not self.path.is_file():
            raise StoreCorruptError(f"catalog {self.path} is missing")
        with self.connect() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None or int(row[0]) != SCHEMA_VERSION:
                raise StoreCorruptError(f"catalog {self.path} has an unknown schema version")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not {"addenda", "watches", "watch_runs"} <= tables:  # added after the first stores were made
                conn.executescript(_SCHEMA)

    def add_record(self, manifest: Manifest, manifest_sha256: str) -> None:
        """All rows of one record in one transaction: a crash leaves all of them or none."""
        s = manifest.subject
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT INTO documents(url, entity, document, first_record, last_record) "
                    "VALUES (?,?,?,?,?) ON CONFLICT(url) DO UPDATE SET "
                    "entity=COALESCE(excluded.entity, entity), document=COALESCE(excluded.document, document), "
                    "last_record=excluded.last_record",
                    (s.url, s.entity, s.document, manifest.record_id, manifest.record_id),
                )
                doc_id = conn.execute("SELECT doc_id FROM documents WHERE url=?", (s.url,)).fetchone()[0]
                conn.execute(
                    "INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (manifest.record_id, doc_id, s.url, s.final_url, s.entity, s.document, s.title,
                     manifest.captured_at, manifest.http.status, manifest_sha256,
                     manifest.digests.content_sha256, manifest.digests.text_sha256,
                     manifest.digests.payload_sha1_b32,
                     manifest.signature.key_id if manifest.signature else "",
                     manifest.previous.record_id if manifest.previous else None),
                )
                conn.executemany(
                    "INSERT INTO artifacts VALUES (?,?,?,?,?)",
                    [(manifest.record_id, a.name, a.sha256, a.size, a.media_type) for a in manifest.artifacts]
                    + [(manifest.record_id, "manifest", manifest_sha256, -1, "application/json")],
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def has_record(self, record_id: str) -> bool:
        with self.connect() as conn:
            return conn.execute("SELECT 1 FROM records WHERE record_id=?", (record_id,)).fetchone() is not None

    def get(self, record_id: str) -> RecordSummary | None:
        with self.connect() as conn:
            row = conn.execute(f"SELECT {_RECORD_COLS} FROM records WHERE record_id=?",  # noqa: S608
                               (record_id,)).fetchone()
        return _row_to_summary(row) if row else None

    def list(self, *, url: str | None = None, entity: str | None = None,
             limit: int | None = None) -> ListOf[RecordSummary]:
        sql = f"SELECT {_RECORD_COLS} FROM records"  # noqa: S608
        where, args = [], []
        if url:
            where.append("(url=? OR final_url=?)")
            args += [url, url]
        if entity:
            where.append("entity=?")
            args.append(entity)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY captured_at, record_id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self.connect() as conn:
            return [_row_to_summary(r) for r in conn.execute(sql, args).fetchall()]

    def latest_for_url(self, url: str) -> RecordSummary | None:
        with self.connect() as conn:
            row = conn.execute(
                f"SELECT {_RECORD_COLS} FROM records WHERE url=? "  # noqa: S608
                "ORDER BY captured_at DESC, record_id DESC LIMIT 1", (url,)).fetchone()
        return _row_to_summary(row) if row else None

    def find_sha256(self, hexdigest: str) -> ListOf[ArtifactMatch]:
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT a.record_id, a.name, a.sha256, r.url, r.captured_at FROM artifacts a "
                "JOIN records r USING(record_id) WHERE a.sha256=? ORDER BY r.captured_at, a.record_id, a.name",
                (hexdigest,)).fetchall()
        return [ArtifactMatch(record_id=r[0], artifact=r[1], sha256=r[2], url=r[3], captured_at=r[4])
                for r in rows]

    def record_blobs(self, record_id: str) -> dict[str, str]:
        with self.connect() as conn:
            rows = conn.execute("SELECT name, sha256 FROM artifacts WHERE record_id=?", (record_id,)).fetchall()
        return {r[0]: r[1] for r in rows}

    def add_signer_key(self, key_id: str, public_pem_sha256: str) -> None:
        with self.connect() as conn:
            conn.execute("INSERT OR IGNORE INTO signer_keys VALUES (?,?)", (key_id, public_pem_sha256))

    def signer_key_blob(self, key_id: str) -> str | None:
        with self.connect() as conn:
            row = conn.execute("SELECT public_pem_sha256 FROM signer_keys WHERE key_id=?", (key_id,)).fetchone()
        return str(row[0]) if row else None

    def add_addendum(self, sha256: str, record_id: str, kind: str, created_at: str) -> None:
        with self.connect() as conn:
            conn.execute("INSERT OR IGNORE INTO addenda VALUES (?,?,?,?)", (sha256, record_id, kind, created_at))

    def addenda(self, record_id: str, kind: str | None = None) -> ListOf[tuple[str, str]]:
        """(sha256, kind) of a record's addenda, oldest first."""
        sql = "SELECT sha256, kind FROM addenda WHERE record_id=?"
        args = [record_id]
        if kind:
            sql += " AND kind=?"
            args.append(kind)
        with self.connect() as conn:
            return [(r[0], r[1]) for r in conn.execute(sql + " ORDER BY created_at, sha256", args).fetchall()]

    def records_without(self, kind: str) -> ListOf[str]:
        with self.connect() as conn:
            rows = conn.execute("SELECT record_id FROM records WHERE record_id NOT IN "
                                "(SELECT record_id FROM addenda WHERE kind=?) ORDER BY captured_at, record_id",
                                (kind,)).fetchall()
        return [r[0] for r in rows]

    # ---- watch list (configuration and run log: not evidence, so not rebuilt from blobs) --------
    def add_watch(self, url: str, entity: str | None, document: str | None, interval_s: int, options: str,
                  created_at: str) -> bool:
        with self.connect() as conn:
            cur = conn.execute("INSERT OR IGNORE INTO watches(url, entity, document, interval_s, options, "
                               "created_at) VALUES (?,?,?,?,?,?)",
                               (url, entity, document, interval_s, options, created_at))
            return cur.rowcount == 1

    def remove_watch(self, url: str) -> bool:
        with self.connect() as conn:
            return conn.execute("DELETE FROM watches WHERE url=?", (url,)).rowcount == 1

    def watches(self) -> ListOf[sqlite3.Row]:
        with self.connect() as conn:
            return list(conn.execute("SELECT * FROM watches ORDER BY url").fetchall())

    def record_watch_run(self, url: str, time: str, outcome: str, record_id: str | None, detail: str) -> None:
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO watch_runs(url, time, outcome, record_id, detail) VALUES (?,?,?,?,?)",
                         (url, time, outcome, record_id, detail))
            conn.execute("UPDATE watches SET last_run=?, last_outcome=?, last_record=COALESCE(?, last_record) "
                         "WHERE url=?", (time, outcome, record_id, url))
            conn.execute("COMMIT")

    def watch_runs(self, url: str) -> ListOf[sqlite3.Row]:
        with self.connect() as conn:
            return list(conn.execute("SELECT * FROM watch_runs WHERE url=? ORDER BY time, run_id", (url,)).fetchall())

    def records_for_url(self, url: str) -> ListOf[tuple[str, str, str | None, str, int]]:
        """(record_id, captured_at, text_sha256, content_sha256, status), oldest first."""
        with self.connect() as conn:
            rows = conn.execute("SELECT record_id, captured_at, text_sha256, content_sha256, status FROM records "
                                "WHERE url=? ORDER BY captured_at, record_id", (url,)).fetchall()
        return [(r[0], r[1], r[2], r[3], int(r[4])) for r in rows]

    def count(self) -> int:
        with self.connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def clear_index(self) -> None:
        """Drop the rows rebuild-index will recreate (signer keys stay: they point at blobs)."""
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM addenda")
            conn.execute("DELETE FROM artifacts")
            conn.execute("DELETE FROM records")
            conn.execute("DELETE FROM documents")
            conn.execute("COMMIT")
