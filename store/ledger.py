"""The one write path for evidence: every manifest, addendum, import and custody entry goes through here.

Why one place: custody entries and catalog rows used to be written from nineteen call sites, each with
its own order, its own idea of the actor and its own crash window; the transparency log and alerts need
exactly one place where evidence events are appended, in commit order. A :class:`Ledger` commit is a
unit of work:

1. take the catalog's write lock (SQLite ``BEGIN IMMEDIATE``; PostgreSQL: the custody advisory lock
   inside the transaction), so units of work run one at a time;
2. *replay* (SQLite): custody entries past the catalog's journal position are indexed first — they are
   evidence whose catalog commit a crash cut off (see below);
3. ``prepare``: decisions that depend on what is committed, under the lock (a watch that exists, a
   token to revoke; a capture checks that its URL's chain has not moved since it signed — its signing
   and blob write happen before, under the URL's own ``StoreCore.chain_lock``, so the store-wide lock
   is never held across a blob's fsyncs). Every blob an entry names is written before this step;
4. the catalog rows (uncommitted: a conflict — a duplicate record ID, a watched URL — refuses the act
   here, before any custody entry names it);
5. append the custody entries (the custody file is fsynced: it is the journal), then one ``outbox`` row
   per evidence event (what the transparency log and alerts consume, in commit order) and the journal
   position, in the same catalog transaction;
6. COMMIT;
7. then, outside the transaction, ``on_commit`` (set by the store core: the transparency log's sync,
   which appends the new outbox rows to the log; its failure is logged and the next sync catches up).

Crash at any point (``kill -9``): before 5, nothing names the new blobs (an orphan blob is harmless; an
orphan manifest is signed but not a record: ``rebuild-index`` indexes only what custody commits).
Between 5 and 6, the custody file holds entries the catalog lacks: the next open (or the next commit,
under the lock) replays them from their blobs, written before. On PostgreSQL the custody table is in
the same database, so steps 4-6 are one transaction and there is nothing to replay.

The actor is an argument of every call, never ambient: a web request's token, a queue job's submitter
and the CLI's operator reach the log by being passed down.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from store.custody import ChainReport, CustodyEntry, CustodyLog, Event, PostgresCustodyLog, _parse

if TYPE_CHECKING:
    from store.blobs import BlobStore
    from store.catalog import Catalog, _Db
    from store.s3 import S3BlobStore

log = logging.getLogger(__name__)
T = TypeVar("T")

#: custody events that commit evidence: each names (``subject_sha256``) a signed document the catalog
#: indexes; replay re-indexes them from that blob. Other events (get, verify, export, key and token
#: changes, watches) are custody facts only.
EVIDENCE_EVENTS = frozenset({"capture", "import", "import-forced", "timestamp", "wayback", "derived", "publish",
                             "unpublish"})

JOURNAL = "custody"
#: how an evidence entry looks in a custody line (json.dumps with sorted keys), to search raw bytes
_MARKERS = tuple(f'"event": "{e}"'.encode() for e in sorted(EVIDENCE_EVENTS))


@dataclass(frozen=True, slots=True)
class Committed:
    """What a unit of work appended: its custody entries, in order."""

    entries: tuple[CustodyEntry, ...]


Prepare = Callable[["_Db"], tuple[Sequence[Event], Callable[["_Db"], None] | None, T]]


class Ledger:
    """Custody, catalog rows and the outbox, committed together (see the module docstring)."""

    def __init__(self, blobs: BlobStore | S3BlobStore, catalog: Catalog, custody: CustodyLog) -> None:
        self.blobs = blobs
        self.catalog = catalog
        self.custody = custody
        self._postgres = isinstance(custody, PostgresCustodyLog)
        #: URLs whose committed record waits for its blob (set by the last replay): a new record of such
        #: a URL would sign the same ``previous`` and fork the chain once the waiting one is indexed
        self.waiting_urls: set[str] = set()
        #: called after a unit of work that wrote outbox rows has committed (the transparency log's
        #: sync: ``archiver/tlog/log.py``); outside the transaction, and its failure is only logged —
        #: the evidence is committed, and the outbox keeps the rows for the next sync
        self.on_commit: Callable[[], object] | None = None

    # ---- evidence ------------------------------------------------------------------------------
    def commit(self, events: Sequence[Event], *, actor: str,
               index: Callable[[_Db], None] | None = None) -> Committed:
        """Append ``events`` and run ``index`` (catalog rows) as one unit of work."""
        def prepare(_d: _Db) -> tuple[Sequence[Event], Callable[[_Db], None] | None, None]:
            return events, index, None
        return self.run(prepare, actor=actor)[0]

    def run(self, prepare: Prepare[T], *, actor: str) -> tuple[Committed, T]:
        """The general unit of work: ``prepare(d)`` runs under the write lock and returns the events,
        the indexing step and a value for the caller (a capture returns its signed manifest)."""
        with self.catalog.db() as d, d.tx():
            if self._postgres:
                d.rows("SELECT pg_advisory_xact_lock(?)", (7232,))
                self._baseline_postgres(d)
                stuck = False
            else:
                self._refuse_if_moved(d)
                stuck = self._replay(d) < 0
            events, index, value = prepare(d)
            if index is not None:  # rows first: a conflict then refuses the act before custody names it
                index(d)
            if not events:
                entries, end = [], None
            elif self._postgres:
                entries = [PostgresCustodyLog.append_in(d, ev.event, actor=actor, record_id=ev.record_id,
                                                        subject_sha256=ev.subject_sha256, detail=ev.detail)
                           for ev in events]
                end = None
            else:
                entries, end = self.custody.append_at(events, actor=actor)
            self._outbox(d, entries)
            if end is not None and not stuck:  # never past an entry that waits for its blob
                self._set_journal(d, end, entries[-1].hash if entries else None)
        if self.on_commit is not None and any(e.event in EVIDENCE_EVENTS for e in entries):
            try:
                self.on_commit()
            except Exception as exc:  # the commit stands; the next sync appends what this one missed
                log.warning("after a commit: %s", exc)
        return Committed(tuple(entries)), value

    def note(self, event: str, *, actor: str, record_id: str | None = None,
             subject_sha256: str | None = None, detail: dict[str, str] | None = None) -> CustodyEntry:
        """A custody fact that indexes nothing (a download, an export, a verification, a key or token
        change): appended without the catalog's write lock, since replay has nothing to do for it."""
        if event in EVIDENCE_EVENTS:
            raise ValueError(f"{event} is evidence: commit it through Ledger.commit")
        if self._postgres:
            return self.custody.append(event, actor=actor, record_id=record_id, subject_sha256=subject_sha256,
                                       detail=detail)

        def not_moved() -> None:  # under the log's lock, which ``store migrate --to`` holds while it copies
            with self.catalog.db() as d:
                self._refuse_if_moved(d)
        return self.custody.append(event, actor=actor, record_id=record_id, subject_sha256=subject_sha256,
                                   detail=detail, locked_check=not_moved)

    @staticmethod
    def _outbox(d: _Db, entries: Sequence[CustodyEntry]) -> None:
        rows = [(e.event, e.record_id, e.subject_sha256, e.actor, e.time,
                 json.dumps({"custody_seq": e.seq, "custody_hash": e.hash, **e.detail}, sort_keys=True))
                for e in entries if e.event in EVIDENCE_EVENTS]
        if rows:
            d.many("INSERT INTO outbox(event, record_id, subject_sha256, actor, time, detail) VALUES (?,?,?,?,?,?)",
                   rows)

    @staticmethod
    def _refuse_if_moved(d: _Db) -> None:
        """A process that opened the store before ``store migrate --to`` switched it to PostgreSQL must
        not go on writing to the SQLite catalog and custody.log, which nothing reads any more."""
        from archiver.errors import StoreError

        row = d.one("SELECT value FROM meta WHERE key='moved_to'")
        if row is not None:
            raise StoreError(f"this store's catalog moved to {row[0]} while this command ran",
                             hint="run the command again (restart a running `archiver serve` or worker): it will "
                                  "use the new catalog")

    # ---- the journal (SQLite stores: the custody file ahead of the catalog) ---------------------
    @staticmethod
    def _journal(d: _Db) -> tuple[int, str | None] | None:
        row = d.one("SELECT position, last_hash FROM journal WHERE name=?", (JOURNAL,))
        return (int(row[0]), str(row[1]) if row[1] else None) if row else None

    @staticmethod
    def _set_journal(d: _Db, position: int, last_hash: str | None) -> None:
        d.run("INSERT INTO journal(name, position, last_hash) VALUES (?,?,?) ON CONFLICT(name) DO UPDATE SET "
              "position=excluded.position, last_hash=COALESCE(excluded.last_hash, journal.last_hash)",
              (JOURNAL, position, last_hash))

    def _tail(self, start: int) -> list[tuple[CustodyEntry, int, int]]:
        """Complete custody lines from byte ``start``: (entry, its start offset, its end offset)."""
        try:
            with open(self.custody.path, "rb") as fh:
                fh.seek(start)
                data = fh.read()
        except FileNotFoundError:
            return []
        out = []
        pos = 0
        while (nl := data.find(b"\n", pos)) >= 0:
            line = data[pos:nl]
            for e in _parse(iter([line])):
                out.append((e, start + pos, start + nl + 1))
            pos = nl + 1
        return out

    def pending(self) -> bool:
        """Is there work for :meth:`recover`? A read: no lock, no write.

        SQLite: custody entries past the journal position that the catalog lacks (a cut-off commit), or
        no journal at all (a store from before the write path: its outbox is filled once). PostgreSQL:
        no journal row yet (the same one-time backfill). The tail is searched as bytes for an evidence
        event before anything is parsed: downloads and verifications append custody facts without
        moving the journal, and tens of thousands of them must not slow every command down."""
        with self.catalog.db() as d:
            journal = self._journal(d)
            if self._postgres:
                return journal is None
            try:
                size = os.stat(self.custody.path).st_size
            except FileNotFoundError:
                return False
            if journal is None:
                return size > 0
            if journal[0] >= size:
                return False
            with open(self.custody.path, "rb") as fh:
                fh.seek(journal[0])
                tail = fh.read()
            if not any(marker in tail for marker in _MARKERS):
                return False
            return any(self._missing(d, e) for e, _, _ in self._tail(journal[0]))

    def recover(self) -> int:
        """Index what cut-off commits left in the custody log only, and fill the outbox of a store made
        before the write path (run at open when :meth:`pending`); returns the entries replayed."""
        with self.catalog.db() as d, d.tx():
            if self._postgres:
                d.rows("SELECT pg_advisory_xact_lock(?)", (7232,))
                self._baseline_postgres(d)
                return 0
            return max(0, self._replay(d))

    def recover_in(self, d: _Db) -> int:
        """:meth:`recover` inside a write transaction the caller holds (SQLite)."""
        return 0 if self._postgres else max(0, self._replay(d))

    def _baseline_postgres(self, d: _Db) -> None:
        """Once, on a PostgreSQL store upgraded from before the write path: the outbox gets a row for
        every evidence entry already in the custody table, in its order, so a consumer of the outbox
        (the transparency log) sees the records made before the upgrade too."""
        if self._journal(d) is not None:
            return
        rows = d.rows("SELECT seq, line FROM custody ORDER BY seq")
        entries = list(_parse(iter(r[1] for r in rows)))
        self._outbox(d, entries)
        self._set_journal(d, int(rows[-1][0]) if rows else 0, entries[-1].hash if entries else None)

    def _missing(self, d: _Db, e: CustodyEntry) -> bool:
        if e.event not in EVIDENCE_EVENTS or not e.subject_sha256:
            return False
        shas = [e.subject_sha256, *filter(None, e.detail.get("addenda", "").split(","))]
        for sha in shas:
            if d.one("SELECT 1 FROM artifacts WHERE name='manifest' AND sha256=? "
                     "UNION ALL SELECT 1 FROM addenda WHERE sha256=?", (sha, sha)) is None:
                return True
        return False

    def _index(self, d: _Db, e: CustodyEntry) -> bool:
        """Index the signed documents one custody entry names; False if one of them cannot be read."""
        from archiver.formats import classify
        from store.catalog import Catalog

        assert e.subject_sha256 is not None
        for sha in [e.subject_sha256, *filter(None, e.detail.get("addenda", "").split(","))]:
            try:
                doc = classify(self.blobs.read_bytes(sha))
            except Exception as exc:  # any failure to read: the entry waits, reported
                log.warning("custody entry %s names %s, which cannot be read: %s", e.seq, sha, exc)
                return False
            if doc.manifest is not None:
                if d.one("SELECT 1 FROM records WHERE record_id=?", (doc.manifest.record_id,)) is None:
                    # a replayed record moves its URL's tip only if it continues the chain (or starts
                    # it): one replayed late (its blob was unreadable a while) must not hijack the tip
                    Catalog.insert_record(d, doc.manifest, sha, job_key=e.detail.get("job_key") or None,
                                          tip=Catalog.tip_after_import(d, doc.manifest))
            elif doc.addendum is not None:
                Catalog.insert_addendum(d, sha, doc.addendum)
            else:
                log.warning("custody entry %s names %s, which is not a document this release reads (%s)",
                            e.seq, sha, doc.reason or doc.role)
                return False
        return True

    def _replay(self, d: _Db) -> int:
        """Under the write lock: index every evidence entry past the journal position, then move it;
        returns how many were indexed, or -1 when one still waits for its blob.

        The journal never moves past an entry that could not be indexed (its blob missing or
        unreadable): it is tried again at every commit and open until the blob is restored, and its
        outbox row is written only once it is indexed. Without a journal (a store made before the write
        path), the whole log is read once and every evidence entry gets its outbox row, in log order."""
        self.waiting_urls = set()
        try:
            size = os.stat(self.custody.path).st_size
        except FileNotFoundError:
            return 0
        journal = self._journal(d)
        if journal is not None and journal[0] >= size:
            return 0
        baseline = journal is None
        tail = self._tail(journal[0] if journal else 0)
        done: list[CustodyEntry] = []
        replayed = 0
        stuck: tuple[int, str | None] | None = None
        last: tuple[int, str | None] = journal or (0, None)
        for e, _start, end in tail:
            if self._missing(d, e):
                if self._index(d, e):
                    done.append(e)
                    replayed += 1
                else:
                    if e.detail.get("url"):  # its URL's chain waits for it (commit_record refuses)
                        self.waiting_urls.add(e.detail["url"])
                    if stuck is None:
                        stuck = last
            elif baseline and e.event in EVIDENCE_EVENTS:
                done.append(e)
            last = (end, e.hash)
        if replayed:
            log.warning("recovered %d custody entr%s whose catalog commit was cut off", replayed,
                        "y" if replayed == 1 else "ies")
        self._outbox(d, done)
        position, last_hash = stuck or last
        self._set_journal(d, position, last_hash)
        return -1 if stuck else replayed

    # ---- audit ----------------------------------------------------------------------------------
    def audit(self, report: ChainReport) -> ChainReport:
        """The custody chain's own check, plus what the catalog remembers of it: every outbox row and
        the journal name custody entries by hash. A log whose tail was cut off is still a valid chain
        (a prefix of a chain is a chain); the entries the catalog names and the log lacks show the cut."""
        with self.catalog.db() as d:
            named = [(json.loads(r[1]).get("custody_hash"), r[0], r[2]) for r in
                     d.rows("SELECT seq, detail, record_id FROM outbox ORDER BY seq")]
            journal = self._journal(d)
        if journal is not None and journal[1] and not self._postgres:
            named.append((journal[1], "journal", None))
        if not named:
            return report
        present = {e.hash for e in self.custody.entries()}
        gone = [(seq, rid) for h, seq, rid in named if h and h not in present]
        if not gone:
            return report
        shown = ", ".join(f"{'outbox ' + str(seq) if seq != 'journal' else 'the journal'}"
                          + (f" ({rid})" if rid else "") for seq, rid in gone[:5])
        problem = (f"{len(gone)} custody entr{'y' if len(gone) == 1 else 'ies'} the catalog names "
                   f"{'is' if len(gone) == 1 else 'are'} missing from the custody log: {shown}"
                   + (" …" if len(gone) > 5 else "") + " (entries were removed)")
        return ChainReport(report.entries, (*report.problems, problem))

    # ---- consumers ------------------------------------------------------------------------------
    def outbox(self, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Evidence events in commit order, for the transparency log and alerts (``seq > after``)."""
        with self.catalog.db() as d:
            rows = d.dicts("SELECT seq, event, record_id, subject_sha256, actor, time, detail FROM outbox "
                           "WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))
        for r in rows:
            r["detail"] = json.loads(r["detail"])
        return rows


__all__ = ["EVIDENCE_EVENTS", "Committed", "Ledger"]
