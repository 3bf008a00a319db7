"""The web app's tables (``archiver/access.py``, ``archiver/jobs.py``): access tokens (hashed) and the
capture jobs submitted through it."""

from __future__ import annotations

from store.migrations.base import Migration, both

MIGRATIONS: tuple[Migration, ...] = (
    both("access", 1, "baseline: tokens and web jobs", """
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
CREATE INDEX IF NOT EXISTS web_jobs_status ON web_jobs(status, created_at)""", baseline=True),
)
