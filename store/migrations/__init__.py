"""Numbered schema migrations per backend, declared by the subsystem that owns the tables.

Each subsystem has a module here listing its migrations (``core``, ``custody``, ``watches``,
``access``, ``queue``, ``search``, ``tlog``, ``collections``, ``fulltext``, ``provisions``, ``exhibits``,
``matters``, ``web``, ``alerts``) and :data:`SUBSYSTEMS` registers them in
the order they run: a subsystem may refer only to tables of the subsystems above it (the search index
is on ``records``).
Within a subsystem, migrations run by number. A migration that has no statements for a backend is
not part of that backend's schema (the custody table lives in the catalog on PostgreSQL only).

:mod:`store.migrations.runner` applies the pending ones when a catalog is created or opened, and
records each in ``schema_migrations``; ``store migrate --to`` copies the tables these migrations
create (:func:`copied_tables`), so a new table is carried over without anyone remembering to.

To change the schema: append a migration to the owning subsystem's tuple with the next number.
Never edit or renumber one that has shipped: stores in the field have recorded it as applied.
"""

from __future__ import annotations

from functools import cache

from store.migrations import (
    access,
    alerts,
    collections,
    core,
    custody,
    exhibits,
    fulltext,
    matters,
    provisions,
    queue,
    search,
    tlog,
    watches,
    web,
)
from store.migrations.base import BACKENDS, Migration

#: Subsystems in the order their migrations run, each with its migrations in number order.
SUBSYSTEMS: tuple[tuple[str, tuple[Migration, ...]], ...] = (
    ("core", core.MIGRATIONS),
    ("custody", custody.MIGRATIONS),
    ("watches", watches.MIGRATIONS),
    ("access", access.MIGRATIONS),
    ("queue", queue.MIGRATIONS),
    ("search", search.MIGRATIONS),
    ("tlog", tlog.MIGRATIONS),
    ("collections", collections.MIGRATIONS),
    ("fulltext", fulltext.MIGRATIONS),
    ("provisions", provisions.MIGRATIONS),
    ("exhibits", exhibits.MIGRATIONS),
    ("matters", matters.MIGRATIONS),
    ("web", web.MIGRATIONS),
    ("alerts", alerts.MIGRATIONS),
)


@cache
def known() -> dict[tuple[str, int], Migration]:
    """Every migration this code knows, on any backend, by (subsystem, version); checked for shape:
    each subsystem's own, numbered 1, 2, 3… without a gap (a gap would be a migration lost in a merge)."""
    found: dict[tuple[str, int], Migration] = {}
    for name, migrations in SUBSYSTEMS:
        for number, m in enumerate(migrations, 1):
            if m.subsystem != name or m.version != number:
                raise ValueError(f"subsystem {name}: migration {m.key} found where {name}/{number} belongs")
            found[(name, number)] = m
    return found


def registry(backend: str) -> tuple[Migration, ...]:
    """The migrations of ``backend``, in the order they run."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown catalog backend {backend!r}")
    return tuple(m for m in known().values() if m.statements(backend) is not None)


def tables(backend: str) -> list[str]:
    """The tables the migrations of ``backend`` leave, in the order they are created (parents first)."""
    live: list[str] = []
    for m in registry(backend):
        live = [t for t in live if t not in m.dropped(backend)]
        live += [t for t in m.created(backend) if t not in live]
    return live


def copied_tables(source: str, target: str) -> list[str]:
    """The tables whose rows ``store migrate`` carries from a ``source`` catalog to a ``target`` one,
    parents first: those both backends have, less the ones a migration marks ``not_copied``."""
    skip = {t for m in known().values() for t in m.not_copied}
    there = set(tables(target))
    return [t for t in tables(source) if t in there and t not in skip]


__all__ = ["SUBSYSTEMS", "Migration", "copied_tables", "known", "registry", "tables"]
