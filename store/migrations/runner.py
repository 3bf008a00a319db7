"""Applying migrations: under a lock, each recorded in ``schema_migrations``, all in one transaction.

A catalog's format is told by ``meta.schema_version``:

- absent (no ``meta`` table): a new catalog; every migration runs.
- 1: made by the release before migrations (no ``schema_migrations``). Its tables exist; the
  baseline migrations (idempotent, ``IF NOT EXISTS``) are run and recorded, then the later ones.
- 2 (:data:`SCHEMA_VERSION`): ``schema_migrations`` says what is applied.

The value is raised to 2 in the transaction that records the first migrations, so the release before
migrations, which opens only version 1, refuses an upgraded catalog instead of writing to it without
the outbox. A catalog holding a migration this code does not know, or a higher version, was upgraded
by a newer archiver: it is refused before anything is written, with a :class:`StoreError` saying to
upgrade (CLI exit 4).

The lock is the write transaction itself on SQLite (``BEGIN IMMEDIATE``) and an advisory transaction
lock on PostgreSQL (``pg_advisory_xact_lock``, the one ``init`` takes), and the state is read again
under it: several processes opening an old store at once apply each migration exactly once, and DDL
is transactional on both backends, so a crash leaves all of a run's migrations or none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from archiver.errors import StoreCorruptError, StoreError
from archiver.schema import Report
from store.migrations import known, registry

if TYPE_CHECKING:
    from store.catalog import _Db

#: ``meta.schema_version`` of a catalog whose schema is recorded in ``schema_migrations``.
SCHEMA_VERSION = 2
#: ``meta.schema_version`` written by the release before migrations.
LEGACY_SCHEMA_VERSION = 1
#: The advisory lock PostgreSQL catalogs take to change their schema (``init`` has always taken it).
PG_SCHEMA_LOCK = 7231

_BOOKKEEPING = ("CREATE TABLE IF NOT EXISTS schema_migrations (subsystem TEXT NOT NULL, version INTEGER NOT NULL, "
                "name TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (subsystem, version))")


@dataclasses.dataclass(frozen=True, slots=True)
class SchemaMigration(Report):
    """One migration of this backend and when it was applied (None: pending). ``baseline`` is set on
    the migrations a run applies to a store made before migrations (the tables were there already);
    it is not stored, so a later listing shows it False."""

    subsystem: str
    version: int
    name: str
    applied_at: str | None
    baseline: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class _State:
    version: int | None  # meta.schema_version; None: no meta table (a new catalog)
    applied: dict[tuple[str, int], tuple[str, str]]  # (subsystem, version) -> (name, applied_at)


def _table_names(d: _Db, backend: str) -> set[str]:
    if backend == "sqlite":
        return {str(r[0]) for r in d.rows("SELECT name FROM sqlite_master WHERE type='table'")}
    return {str(r[0]) for r in d.rows("SELECT table_name FROM information_schema.tables "
                                      "WHERE table_schema = current_schema()")}


def _read(d: _Db, backend: str, location: str) -> _State:
    names = _table_names(d, backend)
    version: int | None = None
    if "meta" in names:
        row = d.one("SELECT value FROM meta WHERE key='schema_version'")
        try:
            version = int(row[0]) if row is not None else -1
        except ValueError:
            version = -1
        if version < LEGACY_SCHEMA_VERSION:
            raise StoreCorruptError(f"catalog {location} has an unknown schema version")
    applied: dict[tuple[str, int], tuple[str, str]] = {}
    if "schema_migrations" in names:
        applied = {(str(s), int(v)): (str(n), str(t))
                   for s, v, n, t in d.rows("SELECT subsystem, version, name, applied_at FROM schema_migrations")}
    return _State(version, applied)


def _refuse_newer(state: _State, location: str) -> None:
    from archiver._version import __version__

    unknown = sorted(k for k in state.applied if k not in known())
    if not unknown and (state.version or 0) <= SCHEMA_VERSION:
        return
    what = (f"migration {unknown[0][0]} {unknown[0][1]} ({state.applied[unknown[0]][0]})" if unknown
            else f"schema version {state.version}")
    raise StoreError(f"catalog {location} was upgraded by a newer archiver: it has {what}, which archiver "
                     f"{__version__} does not know",
                     hint="upgrade archiver to open this store (nothing was changed); an older archiver must "
                          "not write to it")


def states(d: _Db, backend: str, location: str) -> list[SchemaMigration]:
    """Every migration of ``backend`` with when it was applied (None: pending), in run order.
    Refuses a catalog upgraded by a newer archiver."""
    state = _read(d, backend, location)
    _refuse_newer(state, location)
    return [SchemaMigration(m.subsystem, m.version, m.name, state.applied.get((m.subsystem, m.version), ("", ""))[1]
                            or None) for m in registry(backend)]


def upgrade(d: _Db, backend: str, location: str, *, existing: bool = True,
            missing_hint: str | None = None) -> list[SchemaMigration]:
    """Apply the pending migrations of ``backend`` in one locked transaction; return those applied
    (none when the catalog is current: then only three reads, no lock).

    ``existing``: the catalog must already be an archiver catalog (opening a store), rather than
    possibly empty (``init``); an empty one is then a :class:`StoreCorruptError` with ``missing_hint``."""
    state = _read(d, backend, location)
    if existing and state.version is None:
        raise StoreCorruptError(f"catalog {location} has no archiver tables", hint=missing_hint)
    _refuse_newer(state, location)
    if state.version == SCHEMA_VERSION and all((m.subsystem, m.version) in state.applied
                                               for m in registry(backend)):
        return []
    done: list[SchemaMigration] = []
    with d.tx():
        if backend == "postgresql":
            d.rows("SELECT pg_advisory_xact_lock(?)", (PG_SCHEMA_LOCK,))
        state = _read(d, backend, location)  # again, under the lock: another process may have done it
        _refuse_newer(state, location)
        legacy = state.version == LEGACY_SCHEMA_VERSION
        d.run(_BOOKKEEPING)
        for m in registry(backend):
            if (m.subsystem, m.version) in state.applied:
                continue
            for statement in _statements(m.statements(backend)):
                d.run(statement)
            at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            d.run("INSERT INTO schema_migrations (subsystem, version, name, applied_at) VALUES (?,?,?,?)",
                  (m.subsystem, m.version, m.name, at))
            done.append(SchemaMigration(m.subsystem, m.version, m.name, at, baseline=legacy and m.baseline))
        d.run("INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
              "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))
    return done


def _statements(statements: Sequence[str] | None) -> Sequence[str]:
    assert statements is not None  # registry(backend) holds only migrations with statements there
    return statements


__all__ = ["LEGACY_SCHEMA_VERSION", "PG_SCHEMA_LOCK", "SCHEMA_VERSION", "SchemaMigration", "states", "upgrade"]
