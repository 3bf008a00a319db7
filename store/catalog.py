"""The catalog: an index over the blobs, on SQLite (one file, WAL) or PostgreSQL (many machines).

It holds nothing that cannot be rebuilt from the manifests in the blob store
(``archiver store rebuild-index``); the manifests stay the source of truth. Both backends run the
same SQL through a tiny connection wrapper (:class:`_Db`), so their semantics cannot drift apart:
only placeholders, auto-increment columns, transaction start and error classes differ.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from archiver.errors import (
    StoreConflictError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
    StoreWriteError,
)
from archiver.records import Addendum, ArtifactMatch, Manifest, RecordSummary
from store.migrations.runner import SchemaMigration, states, upgrade

Row = tuple[Any, ...]


class _Db(ABC):
    """One connection, SQL written with ``?`` placeholders for both backends."""

    @abstractmethod
    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[Row]: ...

    @abstractmethod
    def dicts(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    @abstractmethod
    def run(self, sql: str, args: Sequence[Any] = ()) -> int: ...

    @abstractmethod
    def many(self, sql: str, seq: Sequence[Sequence[Any]]) -> None: ...

    @abstractmethod
    def script(self, sql: str) -> None: ...

    @abstractmethod
    def begin(self) -> None: ...

    def one(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        got = self.rows(sql, args)
        return got[0] if got else None

    @contextlib.contextmanager
    def tx(self) -> Iterator[_Db]:
        """A write transaction: everything inside commits together or not at all.

        A failed COMMIT is rolled back too: a connection held for a whole session (a batch worker's
        thread) must never stay inside a transaction that every later BEGIN would then refuse. A failed
        ROLLBACK (the disk is gone) never hides the error that caused it."""
        self.begin()
        try:
            yield self
            self.run("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                self.run("ROLLBACK")
            raise


class _SqliteDb(_Db):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        return [tuple(r) for r in self.conn.execute(sql, args).fetchall()]

    def dicts(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def run(self, sql: str, args: Sequence[Any] = ()) -> int:
        return self.conn.execute(sql, args).rowcount

    def many(self, sql: str, seq: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, seq)

    def script(self, sql: str) -> None:
        self.conn.executescript(sql)

    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")  # take the write lock now, not at the first write


def _pg(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class _PgDb(_Db):
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        return [tuple(r) for r in self.conn.execute(_pg(sql), args).fetchall()]

    def dicts(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(_pg(sql), args)
        names = [d.name for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def run(self, sql: str, args: Sequence[Any] = ()) -> int:
        return int(self.conn.execute(_pg(sql), args).rowcount)

    def many(self, sql: str, seq: Sequence[Sequence[Any]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(_pg(sql), seq)

    def script(self, sql: str) -> None:
        self.conn.execute(sql)

    def begin(self) -> None:
        self.conn.execute("BEGIN")


_RECORD_COLS = ("record_id, url, final_url, entity, document, title, captured_at, status, "
                "manifest_sha256, content_sha256, key_id")
_RECORD_NAMES = tuple(c.strip() for c in _RECORD_COLS.split(","))


def _summary(row: Row) -> RecordSummary:
    return RecordSummary(**dict(zip(_RECORD_NAMES, row, strict=True)))


ListOf = list  # the classes below define a method named list


class Catalog(ABC):
    """The catalog interface; :func:`open_catalog` picks the backend from a path or URL."""

    #: ``sqlite`` or ``postgresql``: what ``status`` and ``store info`` report.
    backend = ""
    location = ""

    @abstractmethod
    def db(self) -> contextlib.AbstractContextManager[_Db]: ...

    def session(self) -> contextlib.AbstractContextManager[None]:
        """Let the operations inside share one connection in this thread (a capture's id check, lookup
        of the previous record and commit). PostgreSQL already keeps one connection per thread."""
        return contextlib.nullcontext()

    def reader(self) -> contextlib.AbstractContextManager[_Db]:
        """A connection for reads only, kept by this thread between uses where opening one costs more
        than the queries (the public pages: a few indexed lookups per request). Default: ``db()``."""
        return self.db()

    #: What to tell the user whose catalog has no archiver tables at all.
    _missing_hint: str | None = None
    #: The migrations the last :meth:`check` (the store's open) applied; ``store migrate`` reports them.
    migrated_at_open: tuple[SchemaMigration, ...] = ()

    @abstractmethod
    def create(self) -> None:
        """Make the catalog, or bring an existing one up to date (``init`` is idempotent)."""

    def check(self) -> None:
        """Refuse a catalog that is not ours or was upgraded by a newer archiver, and apply the pending
        migrations (store/migrations/): opening a store made by an older release upgrades it in place."""
        with self.db() as d:
            self.migrated_at_open = tuple(upgrade(d, self.backend, self.location, missing_hint=self._missing_hint))

    def migrate(self) -> ListOf[SchemaMigration]:
        """Apply the pending migrations now; those applied (normally none: opening applied them)."""
        with self.db() as d:
            return upgrade(d, self.backend, self.location)

    def migrations(self) -> ListOf[SchemaMigration]:
        """Every migration of this backend with when it was applied, in the order they run."""
        with self.db() as d:
            return states(d, self.backend, self.location)

    @abstractmethod
    def columns(self, table: str) -> tuple[str, ...]:
        """The table's columns as this catalog has them (what ``store migrate`` copies)."""

    def add_record(self, manifest: Manifest, manifest_sha256: str, *, job_key: str | None = None) -> None:
        """All rows of one record in one transaction: a crash leaves all of them or none.

        With ``job_key`` the queue job that made the record is claimed in the same transaction, so a
        retried job can never leave two records behind (:class:`StoreConflictError` instead)."""
        with self.db() as d, d.tx():
            self.insert_record(d, manifest, manifest_sha256, job_key=job_key)

    @staticmethod
    def insert_record(d: _Db, manifest: Manifest, manifest_sha256: str, *, job_key: str | None = None,
                      tip: bool = True) -> None:
        """The rows of :meth:`add_record`, inside a transaction the caller holds.

        ``tip``: the record becomes its URL's ``last_record`` (what the next capture chains to). A
        capture always does; an imported record only when the URL has none or it continues that one
        (``tip_after_import``), so a record from another store never hijacks this store's chain."""
        s = manifest.subject
        if job_key is not None:
            d.run("INSERT INTO job_records VALUES (?,?)", (job_key, manifest.record_id))
        d.run("INSERT INTO documents(url, entity, document, first_record, last_record) "
              "VALUES (?,?,?,?,?) ON CONFLICT(url) DO UPDATE SET "
              "entity=COALESCE(excluded.entity, documents.entity), "
              "document=COALESCE(excluded.document, documents.document), "
              "last_record=" + ("excluded.last_record" if tip
                                else "COALESCE(documents.last_record, excluded.last_record)"),
              (s.url, s.entity, s.document, manifest.record_id, manifest.record_id))
        row = d.one("SELECT doc_id FROM documents WHERE url=?", (s.url,))
        assert row is not None
        d.run("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
              (manifest.record_id, row[0], s.url, s.final_url, s.entity, s.document, s.title,
               manifest.captured_at, manifest.http.status, manifest_sha256,
               manifest.digests.content_sha256, manifest.digests.text_sha256,
               manifest.digests.payload_sha1_b32,
               manifest.signature.key_id if manifest.signature else "",
               manifest.previous.record_id if manifest.previous else None))
        d.many("INSERT INTO artifacts VALUES (?,?,?,?,?)",
               [(manifest.record_id, a.name, a.sha256, a.size, a.media_type) for a in manifest.artifacts]
               + [(manifest.record_id, "manifest", manifest_sha256, -1, "application/json")])

    @staticmethod
    def tip_after_import(d: _Db, manifest: Manifest) -> bool:
        """Does an imported record continue its URL's chain here (or start it)?"""
        row = d.one("SELECT last_record FROM documents WHERE url=?", (manifest.subject.url,))
        current = row[0] if row else None
        return current is None or (manifest.previous is not None and manifest.previous.record_id == current)

    def has_record(self, record_id: str) -> bool:
        with self.db() as d:
            return d.one("SELECT 1 FROM records WHERE record_id=?", (record_id,)) is not None

    def get(self, record_id: str) -> RecordSummary | None:
        with self.db() as d:
            row = d.one(f"SELECT {_RECORD_COLS} FROM records WHERE record_id=?", (record_id,))  # noqa: S608
        return _summary(row) if row else None

    def get_many(self, record_ids: Sequence[str]) -> dict[str, RecordSummary]:
        """Several records over one connection (a batch being stamped), keyed by record id."""
        found: dict[str, RecordSummary] = {}
        with self.db() as d:
            for i in range(0, len(record_ids), 500):  # SQLite's host-parameter limit is far above 500
                part = record_ids[i:i + 500]
                rows = d.rows(f"SELECT {_RECORD_COLS} FROM records WHERE record_id IN "  # noqa: S608
                              f"({','.join('?' * len(part))})", tuple(part))
                found.update((r[0], _summary(r)) for r in rows)
        return found

    def list(self, *, url: str | None = None, entity: str | None = None,
             limit: int | None = None, after: str | None = None) -> ListOf[RecordSummary]:
        """Oldest first, cut by keyset: ``after`` is the last record ID of the previous page (its
        ``(captured_at, record_id)`` is where this page starts), so every page costs what the first does
        (the ``records_captured`` index; ``records_url`` and ``records_final_url`` for a URL)."""
        sql = f"SELECT {_RECORD_COLS} FROM records"  # noqa: S608
        where: list[str] = []
        args: list[Any] = []
        if url:
            where.append("(url=? OR final_url=?)")
            args += [url, url]
        if entity:
            where.append("entity=?")
            args.append(entity)
        if after:
            where.append("(captured_at, record_id) > (SELECT captured_at, record_id FROM records WHERE record_id=?)")
            args.append(after)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY captured_at, record_id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self.reader() as d:
            return [_summary(r) for r in d.rows(sql, args)]

    def latest_for_url(self, url: str) -> RecordSummary | None:
        with self.db() as d:
            row = d.one(f"SELECT {_RECORD_COLS} FROM records WHERE url=? "  # noqa: S608
                        "ORDER BY captured_at DESC, record_id DESC LIMIT 1", (url,))
        return _summary(row) if row else None

    def find_sha256(self, hexdigest: str) -> ListOf[ArtifactMatch]:
        with self.db() as d:
            rows = d.rows("SELECT a.record_id, a.name, a.sha256, r.url, r.captured_at FROM artifacts a "
                          "JOIN records r ON r.record_id = a.record_id WHERE a.sha256=? "
                          "ORDER BY r.captured_at, a.record_id, a.name", (hexdigest,))
        return [ArtifactMatch(record_id=r[0], artifact=r[1], sha256=r[2], url=r[3], captured_at=r[4])
                for r in rows]

    def note_verification(self, record_id: str, time: str, ok: bool, failed: str) -> None:
        """The latest verification result of a record (a cache of the custody log, for filtering)."""
        with self.db() as d:
            d.run("INSERT INTO verifications VALUES (?,?,?,?) ON CONFLICT(record_id) DO UPDATE SET "
                  "time=excluded.time, ok=excluded.ok, failed=excluded.failed", (record_id, time, int(ok), failed))

    def record_blobs(self, record_id: str) -> dict[str, str]:
        with self.db() as d:
            return {r[0]: r[1] for r in d.rows("SELECT name, sha256 FROM artifacts WHERE record_id=?",
                                               (record_id,))}

    def add_signer_key(self, key_id: str, public_pem_sha256: str) -> None:
        with self.db() as d:
            d.run("INSERT INTO signer_keys VALUES (?,?) ON CONFLICT DO NOTHING", (key_id, public_pem_sha256))

    def signer_key_blob(self, key_id: str) -> str | None:
        with self.db() as d:
            row = d.one("SELECT public_pem_sha256 FROM signer_keys WHERE key_id=?", (key_id,))
        return str(row[0]) if row else None

    def add_addendum(self, sha256: str, addendum: Addendum) -> None:
        with self.db() as d, d.tx():
            self.insert_addendum(d, sha256, addendum)

    @staticmethod
    def insert_addendum(d: _Db, sha256: str, addendum: Addendum) -> None:
        """Index an addendum; an artifact derived later (main-text) joins the record's artifacts, so
        lookups, ``get`` and change detection find it like one captured with the record."""
        d.run("INSERT INTO addenda VALUES (?,?,?,?) ON CONFLICT DO NOTHING",
              (sha256, addendum.record_id, addendum.kind, addendum.created_at))
        x = addendum.derived
        if x is not None:
            d.run("INSERT INTO artifacts VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING",
                  (addendum.record_id, x.name, x.sha256, x.size, x.media_type))

    def addenda(self, record_id: str, kind: str | None = None) -> ListOf[tuple[str, str]]:
        """(sha256, kind) of a record's addenda, oldest first."""
        sql = "SELECT sha256, kind FROM addenda WHERE record_id=?"
        args = [record_id]
        if kind:
            sql += " AND kind=?"
            args.append(kind)
        with self.db() as d:
            return [(r[0], r[1]) for r in d.rows(sql + " ORDER BY created_at, sha256", args)]

    def records_without(self, kind: str) -> ListOf[str]:
        with self.db() as d:
            rows = d.rows("SELECT record_id FROM records WHERE record_id NOT IN "
                          "(SELECT record_id FROM addenda WHERE kind=?) ORDER BY captured_at, record_id", (kind,))
        return [r[0] for r in rows]

    # ---- watch list (configuration and run log: not evidence, so not rebuilt from blobs) --------
    def add_watch(self, url: str, entity: str | None, document: str | None, interval_s: int, options: str,
                  created_at: str) -> bool:
        with self.db() as d:
            return self.insert_watch(d, url, entity, document, interval_s, options, created_at)

    @staticmethod
    def insert_watch(d: _Db, url: str, entity: str | None, document: str | None, interval_s: int, options: str,
                     created_at: str) -> bool:
        """Inside the caller's transaction (the write path logs ``watch-add`` with it)."""
        return d.run("INSERT INTO watches(url, entity, document, interval_s, options, created_at) "
                     "VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                     (url, entity, document, interval_s, options, created_at)) == 1

    @staticmethod
    def has_watch(d: _Db, url: str) -> bool:
        return d.one("SELECT 1 FROM watches WHERE url=?", (url,)) is not None

    @staticmethod
    def delete_watch(d: _Db, url: str) -> bool:
        return d.run("DELETE FROM watches WHERE url=?", (url,)) == 1

    def watches(self) -> ListOf[dict[str, Any]]:
        with self.db() as d:
            return d.dicts("SELECT * FROM watches ORDER BY url")

    def record_watch_run(self, url: str, time: str, outcome: str, record_id: str | None, detail: str) -> None:
        with self.db() as d, d.tx():
            d.run("INSERT INTO watch_runs(url, time, outcome, record_id, detail) VALUES (?,?,?,?,?)",
                  (url, time, outcome, record_id, detail))
            d.run("UPDATE watches SET last_run=?, last_outcome=?, last_record=COALESCE(?, last_record) "
                  "WHERE url=?", (time, outcome, record_id, url))

    def watch_runs(self, url: str) -> ListOf[dict[str, Any]]:
        with self.db() as d:
            return d.dicts("SELECT * FROM watch_runs WHERE url=? ORDER BY time, run_id", (url,))

    def records_for_url(self, url: str) -> ListOf[tuple[str, str, str | None, str, int]]:
        """(record_id, captured_at, text_sha256, content_sha256, status), oldest first."""
        with self.db() as d:
            # the document's own text (main-text) decides what is a new version when a record has one
            rows = d.rows("SELECT r.record_id, r.captured_at, COALESCE(a.sha256, r.text_sha256), r.content_sha256, "
                          "r.status FROM records r LEFT JOIN artifacts a ON a.record_id = r.record_id "
                          "AND a.name = 'main-text' WHERE r.url=? ORDER BY r.captured_at, r.record_id", (url,))
        return [(r[0], r[1], r[2], r[3], int(r[4])) for r in rows]

    def count(self) -> int:
        with self.db() as d:
            row = d.one("SELECT COUNT(*) FROM records")
        return int(row[0]) if row else 0

    def clear_index(self) -> None:
        """Drop the rows rebuild-index will recreate (signer keys and job claims stay)."""
        with self.db() as d, d.tx():
            for table in ("addenda", "artifacts", "records", "documents"):
                d.run(f"DELETE FROM {table}")  # noqa: S608

    # ---- queue support (PostgreSQL stores) ----------------------------------------------------
    def job_record(self, job_key: str) -> str | None:
        """The record a queue job already produced, so a retried job returns it instead of re-capturing."""
        with self.db() as d:
            row = d.one("SELECT record_id FROM job_records WHERE job_key=?", (job_key,))
        return str(row[0]) if row else None

    def reserve_host_slot(self, host: str, interval_s: float) -> float:
        """Book the next free start time for ``host`` (seconds on the database clock) and return how long
        to wait for it. One atomic upsert, so every worker on every machine gets a distinct slot."""
        raise StoreError(f"per-host rate limiting across workers needs PostgreSQL, not {self.backend}")

    # ---- settings shared by every machine using this catalog ----------------------------------
    def shared_settings(self) -> dict[str, Any]:
        import json

        with self.db() as d:
            rows = d.rows("SELECT key, value FROM meta WHERE key LIKE 'setting:%'")
        return {k.removeprefix("setting:"): json.loads(v) for k, v in rows}

    def put_shared_setting(self, key: str, value: Any | None) -> None:
        import json

        with self.db() as d:
            if value is None:
                d.run("DELETE FROM meta WHERE key = ?", ("setting:" + key,))
            else:
                d.run("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                      ("setting:" + key, json.dumps(value)))

    # ---- migration ----------------------------------------------------------------------------
    def dump(self, table: str, columns: Sequence[str]) -> ListOf[Row]:
        with self.db() as d:
            return d.rows(f"SELECT {', '.join(columns)} FROM {table}")  # noqa: S608


def _local_write_failure(path: Path, exc: sqlite3.OperationalError) -> str | None:
    """SQLite reports a full disk as "database or disk is full" or, when it cannot even grow its
    WAL index, as "disk I/O error": tell those (and read-only stores) from real damage."""
    text = str(exc).lower()
    if "readonly" in text or "read-only" in text:
        return "the store is read-only here (permissions or a read-only filesystem)"
    if "full" in text or "disk i/o" in text:
        try:
            st = os.statvfs(path.parent)
        except OSError:
            return None
        if "full" in text or st.f_bavail * st.f_frsize < (1 << 20):
            return "No space left on device (the store's filesystem is full)"
    return None


class SqliteCatalog(Catalog):
    backend = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
        self._held = threading.local()

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Opening a connection (three PRAGMAs) and closing the last one (a WAL checkpoint) cost more
        than a capture's queries: inside a session this thread's operations share one connection,
        closed at its end, so no connection outlives the work it was opened for."""
        if getattr(self._held, "db", None) is not None:
            yield
            return
        with self.db() as d:
            self._held.db = d
            try:
                yield
            finally:
                self._held.db = None

    @contextlib.contextmanager
    def db(self) -> Iterator[_Db]:
        """One short-lived connection per operation (or the session's): safe across threads and processes."""
        held = getattr(self._held, "db", None)
        if held is not None:
            with self._mapped():
                yield held
            return
        try:
            conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open catalog {self.path}: {exc}") from exc
        try:
            with self._mapped():
                conn.execute("PRAGMA busy_timeout = 60000")
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute("PRAGMA synchronous = FULL")
                yield _SqliteDb(conn)
        finally:
            conn.close()

    @contextlib.contextmanager
    def reader(self) -> Iterator[_Db]:
        """This thread's read-only connection (``query_only``), opened once and kept: opening one (three
        PRAGMAs) and closing it cost more than a public page's lookups. In autocommit mode every SELECT
        is its own read transaction, so it sees each commit as it happens; it never holds a write lock
        and never blocks a checkpoint between statements. Dropped after any error."""
        held = getattr(self._held, "db", None)
        if held is not None:
            with self._mapped():
                yield held
            return
        conn = getattr(self._held, "reader", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=True)
                conn.execute("PRAGMA busy_timeout = 60000")
                conn.execute("PRAGMA query_only = ON")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open catalog {self.path}: {exc}") from exc
            self._held.reader = conn
        try:
            with self._mapped():
                yield _SqliteDb(conn)
        except BaseException:
            self._held.reader = None
            conn.close()
            raise

    @contextlib.contextmanager
    def _mapped(self) -> Iterator[None]:
        """SQLite's errors as the store's: a conflict, a local write failure, or a damaged catalog."""
        try:
            yield
        except sqlite3.IntegrityError as exc:
            raise StoreConflictError(f"catalog {self.path}: {exc}") from exc
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc).lower():  # the busy timeout ran out: busy, not damaged
                raise StoreError(f"catalog {self.path} stayed locked by another process for over a minute",
                                 hint="a long `store rebuild-index` or `store migrate` may be running; "
                                      "try again when it is done") from exc
            local = _local_write_failure(self.path, exc)
            if local:
                raise StoreWriteError(f"catalog {self.path} failed: {exc}: {local}") from exc
            raise StoreCorruptError(f"catalog {self.path} failed: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise StoreCorruptError(f"catalog {self.path} failed: {exc}") from exc

    def create(self) -> None:
        with self.db() as d:
            d.run("PRAGMA journal_mode = WAL")
            upgrade(d, self.backend, self.location, existing=False)

    def check(self) -> None:
        if not self.path.is_file():
            raise StoreCorruptError(f"catalog {self.path} is missing")
        super().check()

    def columns(self, table: str) -> tuple[str, ...]:
        with self.db() as d:
            return tuple(str(r[1]) for r in d.rows(f"PRAGMA table_info({table})"))


def redact_url(url: str) -> str:
    """The URL without its password, for messages and ``status``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


class _Held:
    """Owns one thread's connection and closes it when the thread (or the catalog) goes away."""

    __slots__ = ("conn",)

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()


class PostgresCatalog(Catalog):
    """PostgreSQL via psycopg 3. One connection per thread, reused: connecting costs more than a query."""

    backend = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self.location = redact_url(url)
        self._local = threading.local()

    _missing_hint = "create them with `archiver init --catalog URL`"

    def connection(self) -> Any:
        from archiver.extras import require

        require("postgres", "psycopg")
        import psycopg

        held = getattr(self._local, "held", None)
        if held is not None and not held.conn.closed and not held.conn.broken:
            return held.conn
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10,
                                   application_name="archiver")
        except psycopg.Error as exc:
            raise StoreUnavailableError(f"cannot connect to catalog {self.location}: "
                                        f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc}") from exc
        self._local.held = _Held(conn)
        return conn

    @contextlib.contextmanager
    def db(self) -> Iterator[_Db]:
        conn = self.connection()  # first: it says which extra to install when psycopg is missing
        import psycopg
        from psycopg import errors as pg_errors

        try:
            yield _PgDb(conn)
        except pg_errors.IntegrityError as exc:
            raise StoreConflictError(f"catalog {self.location}: {str(exc).strip()}") from exc
        except psycopg.OperationalError as exc:
            with contextlib.suppress(Exception):
                conn.close()
            raise StoreUnavailableError(f"catalog {self.location} failed: {str(exc).strip()}") from exc
        except psycopg.Error as exc:
            raise StoreCorruptError(f"catalog {self.location} failed: {str(exc).strip()}") from exc

    def close(self) -> None:
        held = getattr(self._local, "held", None)
        if held is not None:
            held.conn.close()
            self._local.held = None

    def create(self) -> None:
        with self.db() as d:  # under the schema lock: two `init`s at once must not race on DDL
            upgrade(d, self.backend, self.location, existing=False)

    def columns(self, table: str) -> tuple[str, ...]:
        with self.db() as d:
            return tuple(str(r[0]) for r in d.rows(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = ? ORDER BY ordinal_position", (table,)))

    def identity_columns(self, table: str) -> ListOf[str]:
        """Columns numbered by a sequence (serial or identity): ``store migrate`` moves each sequence
        past the rows it copied, so the next insert does not collide with them."""
        with self.db() as d:
            return [str(r[0]) for r in d.rows(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = ? AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')", (table,))]

    def reserve_host_slot(self, host: str, interval_s: float) -> float:
        with self.db() as d:
            row = d.one(
                "WITH now AS (SELECT extract(epoch FROM clock_timestamp())::double precision AS t) "
                "INSERT INTO host_slots(host, next_at) SELECT ?, now.t + ? FROM now "
                "ON CONFLICT (host) DO UPDATE SET next_at = GREATEST(host_slots.next_at, "
                "(SELECT t FROM now)) + ? "
                "RETURNING next_at - ? - (SELECT t FROM now)",
                (host, interval_s, interval_s, interval_s))
        return max(0.0, float(row[0])) if row else 0.0

    def load(self, table: str, cols: Sequence[str], rows: Sequence[Row]) -> None:
        """Bulk insert for ``store migrate`` (caller holds the transaction)."""
        with self.db() as d:
            d.many(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",  # noqa: S608
                   rows)


def open_catalog(location: str | Path) -> Catalog:
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresCatalog(text)
    return SqliteCatalog(Path(location))
