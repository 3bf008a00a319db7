"""``archiver store migrate``: apply the catalog's pending schema migrations and report them, or
(``--to``) move the catalog and custody log from SQLite into PostgreSQL."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from typing import Any

from archiver.api import Archive
from archiver.config import SHARED_PREFIX
from archiver.errors import StoreError, UsageError
from archiver.location import Backends, write_marker
from archiver.schema import Report
from store.catalog import PostgresCatalog, open_catalog
from store.custody import PostgresCustodyLog
from store.migrations import copied_tables
from store.migrations.runner import SchemaMigration


@dataclasses.dataclass(frozen=True, slots=True)
class SchemaReport(Report):
    """A catalog's schema: the migrations applied now (when the store was opened or by this command)
    and every migration of its backend with when it was applied."""

    catalog: str
    backend: str
    applied: tuple[SchemaMigration, ...]
    migrations: tuple[SchemaMigration, ...]


def apply_migrations(archive: Archive) -> SchemaReport:
    """Apply what is pending. Opening the store has already applied it under the lock (a store made
    by an older release is upgraded the moment anything opens it): both are reported as applied now."""
    applied = (*archive.catalog.migrated_at_open, *archive.catalog.migrate())
    return SchemaReport(catalog=archive.catalog.location, backend=archive.catalog.backend, applied=applied,
                        migrations=tuple(archive.catalog.migrations()))


@dataclasses.dataclass(frozen=True, slots=True)
class MigrationReport(Report):
    """A catalog moved into PostgreSQL: rows copied per table, custody entries carried over."""

    target: str
    rows: dict[str, int]
    custody_entries: int


def migrate_catalog(archive: Archive, url: str) -> MigrationReport:
    """Copy a SQLite catalog and the custody log into PostgreSQL in one transaction, check every
    table's row count and the custody chain there, then point the store at it.

    The SQLite file and custody.log stay where they were (no longer written), so nothing is lost if
    the copy is abandoned; a target that already holds records is refused."""
    if isinstance(archive.catalog, PostgresCatalog):
        raise UsageError(f"the catalog of {archive.root} is already {archive.catalog.location}")
    target = open_catalog(url)
    if not isinstance(target, PostgresCatalog):
        raise UsageError(f"--to must be a postgresql:// URL, not {url!r}")
    target.create()  # every migration, the custody table's among them
    custody = PostgresCustodyLog(target)
    if target.count() or next(iter(custody.lines()), None) is not None:
        raise StoreError(f"{target.location} already holds an archive", hint="migrate into an empty database")
    tables = copied_tables(archive.catalog.backend, target.backend)  # parents first, from the migrations
    columns = {t: archive.catalog.columns(t) for t in tables}
    for t in tables:
        missing = set(columns[t]) - set(target.columns(t))
        if missing:
            raise StoreError(f"{target.location} has no column {sorted(missing)[0]} in {t}",
                             hint="both catalogs should be at the same migrations; is the target older?")
    # Nothing may commit into the SQLite catalog or append to custody.log from here until the switch: a
    # capture committing during the copy would be in the old catalog only, lost to the new one. So the
    # copy runs inside a write transaction of the old catalog and under custody.log's append lock, and
    # that transaction marks it moved: a process that opened the store before the switch is refused
    # on its next write instead of writing where nothing reads (store.ledger).
    with archive.catalog.session(), archive.catalog.db() as src:
        src.begin()  # the old catalog's write lock first, custody.log's second: the write path's order
        try:
            with archive.custody.locked():
                copied, entries = _copy(archive, src, target, custody, tables, columns, url)
                src.run("COMMIT")  # the 'moved' mark lands before custody.log's lock is let go
        except BaseException:
            with contextlib.suppress(Exception):
                src.run("ROLLBACK")
            raise
    moved = Archive.open(archive.root)
    moved.note("catalog-migrate", actor=moved.default_actor(),
               detail={"from": "sqlite", "to": target.location, "records": str(copied["records"])})
    return MigrationReport(target=target.location, rows=copied, custody_entries=entries)


def _copy(archive: Archive, src: Any, target: PostgresCatalog, custody: PostgresCustodyLog, tables: list[str],
          columns: dict[str, tuple[str, ...]], url: str) -> tuple[dict[str, int], int]:
    """The copy, inside the old catalog's write transaction and under custody.log's append lock; marks
    the old catalog moved (the caller commits). Returns the rows copied per table and the custody entries."""
    archive.ledger.recover_in(src)  # a commit cut off earlier: into the old catalog, then copied
    rows = {t: archive.catalog.dump(t, columns[t]) for t in tables}
    lines = list(archive.custody.lines())
    with target.db() as d, d.tx():  # load() runs on this thread's connection: inside the transaction
        for table in tables:
            if rows[table]:
                target.load(table, columns[table], rows[table])
            for col in target.identity_columns(table):  # outbox.seq, documents.doc_id…: preserved, so
                d.rows(f"SELECT setval(pg_get_serial_sequence('{table}', '{col}'), "  # noqa: S608
                       f"COALESCE((SELECT MAX({col}) FROM {table}), 0) + 1, false)")  # go on after them
        d.many("INSERT INTO custody VALUES (?,?,?)",
               [(i, _line_record_id(line), line) for i, line in enumerate(lines, 1)])
    copied = {t: len(target.dump(t, columns[t])) for t in tables}
    wrong = {t: (len(rows[t]), copied[t]) for t in tables if copied[t] != len(rows[t])}
    if wrong:
        raise StoreError(f"migration to {target.location} lost rows: {wrong}")
    report = custody.verify_chain()
    if report.entries != len(lines):
        raise StoreError(f"migration copied {report.entries} of {len(lines)} custody entries")
    for key, value in archive.config._load_file().items():  # queue.* settings now live in the catalog
        if key.startswith(SHARED_PREFIX):
            target.put_shared_setting(key, value)
    write_marker(archive.root, Backends(catalog=url, s3=archive.backends.s3))  # the switch
    src.run("INSERT INTO meta VALUES ('moved_to', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (target.location,))
    return copied, report.entries


def _line_record_id(line: str) -> str | None:
    try:
        rid = json.loads(line).get("record_id")
    except (ValueError, AttributeError):
        return None
    return str(rid) if rid else None


__all__ = ["MigrationReport", "SchemaReport", "apply_migrations", "migrate_catalog"]
