"""The watch list's tables (``archiver/monitor.py``): configuration and run log, not evidence."""

from __future__ import annotations

from store.migrations.base import Migration, both

MIGRATIONS: tuple[Migration, ...] = (
    both("watches", 1, "baseline: watches and watch runs", """
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
CREATE INDEX IF NOT EXISTS watch_runs_url ON watch_runs(url, time)""", baseline=True),
    both("watches", 2, "declaration versions: each watch's rules with when, by whom and from where", """
CREATE TABLE watch_declarations (
    url TEXT NOT NULL,
    version INTEGER NOT NULL,
    rules TEXT NOT NULL,
    entity TEXT,
    document TEXT,
    interval_s INTEGER NOT NULL,
    valid_from TEXT,
    valid_until TEXT,
    actor TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (url, version)
);
INSERT INTO watch_declarations (url, version, rules, entity, document, interval_s, valid_from, valid_until, actor,
                                source)
    SELECT url, 1, options, entity, document, interval_s, created_at, NULL, '', 'watch-add' FROM watches"""),
)
