"""What every process of ``archiver serve`` shares, on one machine or many: the key that signs
session cookies, one-time login codes, the capture rate-limit counters, and the claims on capture
jobs and on the server's singleton chores (``archiver/web/security.py``, ``archiver/web/deps.py``,
``archiver/jobs.py``).

Why in the catalog: it is the one place every server of a store reaches (a SQLite file all local
processes open, or the PostgreSQL database of a fleet), so a cookie issued by one process is read by
another, a login code printed by one is taken once by any, and a job is run by exactly one. None of
it is evidence: rows are small, short-lived and never copied by ``store migrate`` except the session
key (so sessions survive a move of the catalog).
"""

from __future__ import annotations

from store.migrations.base import Migration, both

MIGRATIONS: tuple[Migration, ...] = (
    both("web", 1, "shared web state: session key, login codes, rate counters, job and chore claims", """
CREATE TABLE web_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE web_login_codes (
    code_sha256 TEXT PRIMARY KEY,
    token_name TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE web_rate (
    bucket TEXT PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    granted INTEGER NOT NULL
);
CREATE TABLE web_leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until DOUBLE PRECISION NOT NULL
);
ALTER TABLE web_jobs ADD COLUMN owner TEXT;
ALTER TABLE web_jobs ADD COLUMN lease_until DOUBLE PRECISION""",
         not_copied=frozenset({"web_login_codes", "web_rate", "web_leases"})),
)
