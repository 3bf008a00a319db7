"""The core subsystem's tables: the evidence index (documents, records, artifacts, addenda), the
signer keys, cached verification results, ``meta``, and the write path's outbox and journal."""

from __future__ import annotations

from store.migrations.base import Migration, both

MIGRATIONS: tuple[Migration, ...] = (
    both("core", 1, "baseline: meta, documents, records, artifacts, addenda, signer keys, verifications", """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id {autoid},
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
    size BIGINT NOT NULL,
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
CREATE TABLE IF NOT EXISTS signer_keys (
    key_id TEXT PRIMARY KEY,
    public_pem_sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS verifications (
    record_id TEXT PRIMARY KEY,
    time TEXT NOT NULL,
    ok INTEGER NOT NULL,
    failed TEXT NOT NULL DEFAULT ''
)""", baseline=True, not_copied=frozenset({"meta"})),
    Migration("core", 2, "outbox and journal of the write path", sqlite=(
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL, record_id TEXT, "
        "subject_sha256 TEXT, actor TEXT NOT NULL, time TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '{}')",
        "CREATE TABLE journal (name TEXT PRIMARY KEY, position BIGINT NOT NULL, last_hash TEXT)",
    ), postgresql=(
        "CREATE TABLE outbox (seq BIGSERIAL PRIMARY KEY, event TEXT NOT NULL, record_id TEXT, "
        "subject_sha256 TEXT, actor TEXT NOT NULL, time TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '{}')",
        "CREATE TABLE journal (name TEXT PRIMARY KEY, position BIGINT NOT NULL, last_hash TEXT)",
    )),
    # whether a record is public is decided by the publish/unpublish events committed in THIS store (an
    # imported bundle's publication addenda are the sender's decisions): looked up per record, indexed
    both("core", 3, "outbox by record and event", "CREATE INDEX outbox_record ON outbox(record_id, event, seq)"),
)
