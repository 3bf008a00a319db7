"""The capture queue's tables (``archiver/queue.py``): job claims (a retried job returns its record),
per-host start slots, and, on PostgreSQL where the queue runs, the log of failed attempts.

procrastinate's own tables are not here: that schema belongs to procrastinate (an optional extra) and
is applied by ``archiver.queue.ensure_schema`` when the queue is first used."""

from __future__ import annotations

from store.migrations.base import Migration, split

_BOTH = """
CREATE TABLE IF NOT EXISTS job_records (
    job_key TEXT PRIMARY KEY,
    record_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS host_slots (
    host TEXT PRIMARY KEY,
    next_at DOUBLE PRECISION NOT NULL
)"""

_FAILURES = """
CREATE TABLE IF NOT EXISTS queue_failures (
    job_id BIGINT NOT NULL,
    attempt INTEGER NOT NULL,
    url TEXT NOT NULL,
    error TEXT NOT NULL,
    retry BOOLEAN NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (job_id, attempt)
)"""

MIGRATIONS: tuple[Migration, ...] = (
    # host_slots hold booking times on the database clock: meaningless in another database
    Migration("queue", 1, "baseline: job claims, host slots, queue failures", sqlite=split(_BOTH),
              postgresql=split(_BOTH) + split(_FAILURES), baseline=True, not_copied=frozenset({"host_slots"})),
)
