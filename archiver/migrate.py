"""Moving a store's catalog and custody log from SQLite into PostgreSQL (``archiver store migrate``)."""

from __future__ import annotations

import dataclasses
import json

from archiver.api import Archive
from archiver.config import SHARED_PREFIX
from archiver.errors import StoreError, UsageError
from archiver.location import Backends, write_marker
from archiver.schema import Report
from store.catalog import PostgresCatalog, open_catalog
from store.custody import PostgresCustodyLog


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
    from store.tables import TABLES

    if isinstance(archive.catalog, PostgresCatalog):
        raise UsageError(f"the catalog of {archive.root} is already {archive.catalog.location}")
    target = open_catalog(url)
    if not isinstance(target, PostgresCatalog):
        raise UsageError(f"--to must be a postgresql:// URL, not {url!r}")
    target.create()
    custody = PostgresCustodyLog(target)
    custody.create()
    if target.count() or next(iter(custody.lines()), None) is not None:
        raise StoreError(f"{target.location} already holds an archive", hint="migrate into an empty database")
    rows = {t: list(archive.catalog.dump(t)) for t in TABLES}
    lines = list(archive.custody.lines())
    with target.db() as d, d.tx():  # load() runs on this thread's connection: inside the transaction
        for table in TABLES:
            if rows[table]:
                target.load(table, rows[table])
        for table, col in (("documents", "doc_id"), ("watch_runs", "run_id")):
            d.rows(f"SELECT setval(pg_get_serial_sequence('{table}', '{col}'), "  # noqa: S608
                   f"COALESCE((SELECT MAX({col}) FROM {table}), 0) + 1, false)")
        d.many("INSERT INTO custody VALUES (?,?,?)",
               [(i, _line_record_id(line), line) for i, line in enumerate(lines, 1)])
    copied = {t: sum(1 for _ in target.dump(t)) for t in TABLES}
    wrong = {t: (len(rows[t]), copied[t]) for t in TABLES if copied[t] != len(rows[t])}
    if wrong:
        raise StoreError(f"migration to {target.location} lost rows: {wrong}")
    report = custody.verify_chain()
    if report.entries != len(lines):
        raise StoreError(f"migration copied {report.entries} of {len(lines)} custody entries")
    for key, value in archive.config._load_file().items():  # queue.* settings now live in the catalog
        if key.startswith(SHARED_PREFIX):
            target.put_shared_setting(key, value)
    write_marker(archive.root, Backends(catalog=url, s3=archive.backends.s3))
    moved = Archive.open(archive.root)
    moved.note("catalog-migrate", actor=moved.default_actor(),
               detail={"from": "sqlite", "to": target.location, "records": str(copied["records"])})
    return MigrationReport(target=target.location, rows=copied, custody_entries=report.entries)


def _line_record_id(line: str) -> str | None:
    try:
        rid = json.loads(line).get("record_id")
    except (ValueError, AttributeError):
        return None
    return str(rid) if rid else None


__all__ = ["MigrationReport", "migrate_catalog"]
