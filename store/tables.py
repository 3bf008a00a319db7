"""The catalog's tables: the SQL both backends create (placeholders for the few words they spell
differently) and the columns ``store migrate`` copies."""

from __future__ import annotations

SCHEMA_VERSION = 1

_SCHEMA = """
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
    run_id {autoid},
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
CREATE TABLE IF NOT EXISTS job_records (
    job_key TEXT PRIMARY KEY,
    record_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS host_slots (
    host TEXT PRIMARY KEY,
    next_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS web_jobs (
    job_id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    params TEXT NOT NULL,
    actor TEXT NOT NULL,
    status TEXT NOT NULL,
    record_id TEXT,
    error TEXT,
    error_kind TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS web_jobs_status ON web_jobs(status, created_at);
CREATE TABLE IF NOT EXISTS outbox (
    seq {autoid},
    event TEXT NOT NULL,
    record_id TEXT,
    subject_sha256 TEXT,
    actor TEXT NOT NULL,
    time TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{{}}'
);
CREATE TABLE IF NOT EXISTS journal (name TEXT PRIMARY KEY, position BIGINT NOT NULL, last_hash TEXT);
CREATE TABLE IF NOT EXISTS verifications (
    record_id TEXT PRIMARY KEY,
    time TEXT NOT NULL,
    ok INTEGER NOT NULL,
    failed TEXT NOT NULL DEFAULT ''
);
"""

#: Tables copied by ``store migrate``, parents first (foreign keys), with their columns.
TABLES: dict[str, tuple[str, ...]] = {
    "documents": ("doc_id", "url", "entity", "document", "first_record", "last_record"),
    "records": ("record_id", "doc_id", "url", "final_url", "entity", "document", "title", "captured_at", "status",
                "manifest_sha256", "content_sha256", "text_sha256", "payload_sha1_b32", "key_id",
                "previous_record_id"),
    "artifacts": ("record_id", "name", "sha256", "size", "media_type"),
    "addenda": ("sha256", "record_id", "kind", "created_at"),
    "watches": ("url", "entity", "document", "interval_s", "options", "created_at", "last_run", "last_outcome",
                "last_record"),
    "watch_runs": ("run_id", "url", "time", "outcome", "record_id", "detail"),
    "signer_keys": ("key_id", "public_pem_sha256"),
    "job_records": ("job_key", "record_id"),
    "tokens": ("name", "role", "token_sha256", "created_at", "expires_at", "revoked_at"),
    "web_jobs": ("job_id", "url", "params", "actor", "status", "record_id", "error", "error_kind", "created_at",
                 "updated_at"),
    "verifications": ("record_id", "time", "ok", "failed"),
    "outbox": ("seq", "event", "record_id", "subject_sha256", "actor", "time", "detail"),
    "journal": ("name", "position", "last_hash"),
}

__all__ = ["SCHEMA_VERSION", "TABLES"]
