"""Record search's index (``store/search.py``): pages of records newest first, cut by keyset."""

from __future__ import annotations

from store.migrations.base import Migration, both

MIGRATIONS: tuple[Migration, ...] = (
    # a baseline although the old release made it only when the web app started: IF NOT EXISTS
    both("search", 1, "baseline: records_captured index",
         "CREATE INDEX IF NOT EXISTS records_captured ON records(captured_at, record_id)", baseline=True),
)
