"""The store core: the parts of one store, its one write path, and reading records back.

Why a core apart from the :class:`~archiver.api.Archive` facade: every use case (capture, stamping,
Wayback, derive, bundles, watches, tokens) needs the same handful of things — blobs, catalog, keys,
settings, *the* unit of work (:class:`store.ledger.Ledger`) and record resolution — and nothing else.
Giving them this object instead of the facade keeps imports one way and keeps the facade a thin
composition of subsystems. The actor of every write is an explicit argument: a web request's token, a
queue job's submitter, or (``default_actor``) the operator named in the settings, for the CLI.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archiver.config import Config
from archiver.errors import (
    IntegrityError,
    NotFoundError,
    StoreConflictError,
    StoreCorruptError,
    StoreError,
    StoreNotFoundError,
    UnknownFormatError,
    UsageError,
)
from archiver.location import STORE_FORMAT, STORE_MARKER, Backends, default_store_path, read_marker, write_marker
from archiver.provenance.ids import new_record_id, normalize_record_id
from archiver.provenance.keys import KeyStore, public_pem
from archiver.records import Addendum, ArtifactMatch, Manifest, Operator, PreviousRef, RecordSummary
from archiver.tlog.log import TransparencyLog
from store.blobs import BlobStore
from store.catalog import Catalog, PostgresCatalog, _Db, open_catalog
from store.custody import CustodyEntry, CustodyLog, Event, PostgresCustodyLog
from store.ledger import Ledger

if TYPE_CHECKING:
    from store.s3 import S3BlobStore

ListOf = list  # subclasses define a method named list

#: stripes of the per-URL chain lock: enough that captures of different URLs rarely wait on each other
CHAIN_STRIPES = 64

#: builds the signed manifest once ``previous`` is decided under the write lock: (manifest, file bytes)
BuildManifest = Callable[[PreviousRef | None], tuple[Manifest, bytes]]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def addendum_event(add: Addendum, sha: str) -> Event:
    """The custody event that commits an addendum (its kind is the event's name, its detail the kind's)."""
    from archiver.formats import custody_detail

    return Event(add.kind, add.record_id, sha, custody_detail(add, sha))


class StoreCore:
    """One store: blobs, catalog, custody log, keys and settings under a single directory."""

    def __init__(self, root: Path, backends: Backends | None = None) -> None:
        self.root = root
        self.backends = backends or Backends()
        self.blobs: BlobStore | S3BlobStore
        if self.backends.s3 is not None:
            from store.s3 import S3BlobStore

            self.blobs = S3BlobStore(root, self.backends.s3)
        else:
            self.blobs = BlobStore(root)
        self.catalog: Catalog = open_catalog(self.backends.catalog or root / "catalog.sqlite3")
        if isinstance(self.catalog, PostgresCatalog):
            self.custody: CustodyLog = PostgresCustodyLog(self.catalog)
        else:
            self.custody = CustodyLog(root / "custody.log")
        self.ledger = Ledger(self.blobs, self.catalog, self.custody)
        self._install_hold_guard()
        self.keys = KeyStore(root)
        # queue.* settings (the politeness limit among them) live in a PostgreSQL catalog when there is
        # one, so every machine of a fleet obeys the same values.
        self.config = Config(root / "config.json", self.catalog if isinstance(self.catalog, PostgresCatalog) else None)
        # the transparency log of every manifest and addendum: appended from the outbox after each
        # evidence commit (cheap), and by whatever reads it (archiver/tlog/log.py says why that is safe)
        s3_blobs = None if isinstance(self.blobs, BlobStore) else self.blobs
        self.log = TransparencyLog.for_store(root, self.catalog, s3_blobs, self.config)
        self.ledger.on_commit = self.log.sync
        if self.backends.s3 is not None:  # read when the S3 client is made; a weak reference, so the blob
            import weakref  # store holding its core makes no cycle (one would keep a PostgreSQL connection)

            core = weakref.ref(self)
            blobs: Any = self.blobs
            blobs.tuning = lambda: c._s3_tuning() if (c := core()) is not None else (10.0, 60.0, 4)

    def _install_hold_guard(self) -> None:
        """Every blob delete asks the catalog for legal holds first (``store.holds.guard``): the blob
        store refuses deletes until it has this check. A weak reference: no core <-> blobs cycle."""
        import weakref

        from store.holds import guard

        core = weakref.ref(self)

        def hold_guard(hexdigest: str) -> Any:
            c = core()
            if c is None:
                raise StoreError(f"refusing to delete sha256:{hexdigest}: its store is closed")
            return guard(c.catalog, c.blobs, hexdigest)
        self.blobs.hold_guard = hold_guard

    def _s3_tuning(self) -> tuple[float, float, int]:
        """The s3.* settings; their defaults while the catalog that may hold settings is being made."""
        try:
            return (self.config.float_("s3.connect_timeout"), self.config.float_("s3.read_timeout"),
                    max(1, self.config.int_("s3.max_attempts")))
        except StoreError:
            return 10.0, 60.0, 4

    # ---- lifecycle -------------------------------------------------------------------------
    @classmethod
    def _create(cls, root: Path | None, backends: Backends | None) -> tuple[Any, bool]:
        """Create (or extend) the store's parts; returns the handle and whether its backends changed.

        ``backends`` puts blobs on S3 and/or the catalog on PostgreSQL. On an existing store they are
        merged with its own (``init --blobs …`` then ``init --catalog …``), which is allowed only while
        it holds no records; ``store migrate`` moves the catalog of a store that does."""
        root = (root or default_store_path()).expanduser()
        marker = root / STORE_MARKER
        if root.exists() and any(root.iterdir()) and not marker.exists():
            raise StoreError(f"{root} exists and is not an archiver store",
                             hint="choose an empty or new directory for --store")
        changed = False
        if marker.exists():
            existing = read_marker(root)
            if backends is not None:  # `init --blobs ...` then `init --catalog ...` on one store adds both
                merged = Backends(catalog=backends.catalog or existing.catalog, s3=backends.s3 or existing.s3)
                if merged != existing:
                    if cls(root, existing).catalog.count():
                        raise UsageError(f"{root} already holds records ({existing.describe()})",
                                         hint="`archiver store migrate --to postgresql://...` moves its catalog")
                    changed = True
                backends = merged
            else:
                backends = existing
        backends = backends or Backends()
        fresh = not marker.exists()
        made_root = not root.exists()
        root.mkdir(parents=True, exist_ok=True)
        core = cls(root, backends)
        try:  # reach the backends before anything is written: an unreachable one leaves no half store
            core.blobs.ensure()
            core.catalog.create()
            if isinstance(core.custody, PostgresCustodyLog):
                core.custody.create()
        except BaseException:
            if fresh:
                import shutil

                shutil.rmtree(root) if made_root else shutil.rmtree(root / "tmp", ignore_errors=True)
                with contextlib.suppress(FileNotFoundError):
                    (root / "catalog.sqlite3").unlink()
            raise
        if fresh or changed:
            write_marker(root, backends)
        return core, changed

    @classmethod
    def _open_root(cls, root: Path | None) -> Any:
        root = (root or default_store_path()).expanduser()
        marker = root / STORE_MARKER
        if not marker.is_file():
            raise StoreNotFoundError(f"no archiver store at {root}")
        try:
            fmt = json.loads(marker.read_text("utf-8")).get("format")
        except (ValueError, AttributeError) as exc:
            raise StoreCorruptError(f"store marker {marker} is unreadable") from exc
        if fmt != STORE_FORMAT:
            raise StoreCorruptError(f"{root} has unknown store format {fmt!r}")
        core = cls(root, read_marker(root))
        core.catalog.check()
        if core.ledger.pending():  # a commit cut off between its custody entry and its catalog rows
            core.ledger.recover()
        return core

    # ---- settings --------------------------------------------------------------------------
    def allow_private(self, override: bool | None = None) -> bool:
        if override:
            return True
        return _env_true("ARCHIVER_ALLOW_PRIVATE") or self.config.bool_("capture.allow_private")

    def operator(self) -> Operator:
        from archiver.records import operator_from

        return operator_from(self.config.str_("operator.name"), self.config.str_("operator.organization"))

    def default_actor(self) -> str:
        """Who a custody entry names when the caller is the operator at this machine (the CLI)."""
        return self.operator().name or "unknown"

    def tsa_configured(self) -> bool:
        return bool(self.config.get("tsa.urls"))

    # ---- keys ------------------------------------------------------------------------------
    def register_signing_key(self) -> None:
        """Every key this store ever signed with stays findable by its id (bundles carry them all)."""
        from archiver.provenance.keys import key_id_of

        pub = self.keys.signing_public_key()
        blob = self.blobs.put_bytes(public_pem(pub))
        self.catalog.add_signer_key(key_id_of(pub), blob)

    def note(self, event: str, *, actor: str, record_id: str | None = None, subject_sha256: str | None = None,
             detail: dict[str, str] | None = None) -> CustodyEntry:
        """A custody fact that is not evidence (a download, an export, a key or token change)."""
        return self.ledger.note(event, actor=actor, record_id=record_id, subject_sha256=subject_sha256,
                                detail=detail)

    # ---- committing evidence (the one write path: store.ledger) ----------------------------
    def unused_record_id(self) -> str:
        for _ in range(100):
            rid = new_record_id()
            if not self.catalog.has_record(rid):
                return rid
        raise StoreError("could not find an unused record ID after 100 tries")

    @contextlib.contextmanager
    def chain_lock(self, url: str) -> Iterator[None]:
        """Serialise the commits of one URL's records (captures and imports), not of the whole store.

        Why: a record's ``previous`` must be the URL's last committed record, so two commits of one URL
        may not interleave; but signing and writing the manifest blob (two fsyncs, or an S3 PUT) must
        not happen under the catalog's store-wide write lock, or every capture of a batch would wait
        for every other's disk flushes. 64 stripes: SQLite stores lock ``locks/chain.NN`` (flock, every
        process on the machine); PostgreSQL takes a session advisory lock (every machine)."""
        stripe = int(hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:8], 16) % CHAIN_STRIPES
        with self.chain_stripe(stripe):
            yield

    @contextlib.contextmanager
    def chain_stripe(self, stripe: int) -> Iterator[None]:
        """One stripe of :meth:`chain_lock` (``rebuild-index`` takes them all, in order)."""
        if isinstance(self.catalog, PostgresCatalog):
            with self.catalog.db() as d:
                d.rows("SELECT pg_advisory_lock(?, ?)", (7233, stripe))
                try:
                    yield
                finally:
                    d.rows("SELECT pg_advisory_unlock(?, ?)", (7233, stripe))
            return
        import fcntl

        locks = self.root / "locks"
        locks.mkdir(exist_ok=True)
        fd = os.open(locks / f"chain.{stripe:02d}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock (also when the process is killed)

    def last_record(self, url: str, d: _Db | None = None) -> PreviousRef | None:
        """The URL's last committed record (commit order, not capture time): what a new one chains to."""
        sql = ("SELECT r.record_id, r.manifest_sha256 FROM documents doc JOIN records r "
               "ON r.record_id = doc.last_record WHERE doc.url=?")
        if d is None:
            with self.catalog.db() as own:
                row = own.one(sql, (url,))
        else:
            row = d.one(sql, (url,))
        return PreviousRef(str(row[0]), str(row[1])) if row else None

    def commit_record(self, url: str, build: BuildManifest, *, actor: str, job_key: str | None = None) -> Manifest:
        """Sign and commit a new record of ``url`` whose ``previous`` is the URL's last committed record.

        Under :meth:`chain_lock`, no other record of the URL can commit, so ``previous`` read there stays
        true: two captures of one URL running at once make one linear chain, never a fork. The manifest
        is signed and its blob written under that lock only; the catalog's write lock is held just for
        the rows, the custody entry and the COMMIT. Should a replayed commit of the same URL land in
        between (a crashed process's, indexed by this commit's replay), the record is signed again."""
        for _attempt in range(3):
            with self.chain_lock(url):
                previous = self.last_record(url)
                manifest, data = build(previous)
                sha = self.blobs.put_bytes(data)

                def prepare(d: _Db, previous: PreviousRef | None = previous, manifest: Manifest = manifest,
                            sha: str = sha) -> tuple[list[Event], Callable[[_Db], None], bool]:
                    if url in self.ledger.waiting_urls:
                        raise StoreError(f"an earlier record of {url} is committed in the custody log but its "
                                         "manifest cannot be read, so its version chain cannot go on",
                                         hint="restore the store's blobs (`archiver verify --all` names what is "
                                              "missing), then capture again")
                    if self.last_record(url, d) != previous:
                        return [], lambda _d: None, False  # the chain moved: nothing written, sign again
                    detail = {"url": manifest.subject.url, "manifest_sha256": sha}
                    if job_key is not None:  # replayed after a crash, the record claims its job again
                        detail["job_key"] = job_key
                    events = [Event("capture", manifest.record_id, sha, detail)]
                    return events, lambda d: Catalog.insert_record(d, manifest, sha, job_key=job_key), True
                try:
                    if self.ledger.run(prepare, actor=actor)[1]:
                        return manifest
                except StoreConflictError as exc:
                    raise StoreConflictError(f"a record of {url} could not be cataloged: {exc}") from exc
        raise StoreConflictError(f"the version chain of {url} kept moving while its record was committed",
                                 hint="capture it again")

    def commit_addendum(self, addendum: Addendum, addendum_bytes: bytes, *, actor: str) -> str:
        """Store a signed addendum, log custody, then index it; returns its sha256."""
        return self.commit_addenda([(addendum, addendum_bytes)], actor=actor)[0]

    def commit_addenda(self, addenda: Sequence[tuple[Addendum, bytes]], *, actor: str) -> list[str]:
        """Several addenda (a batch's timestamps) in one unit of work: one custody write and one
        catalog transaction instead of one each. Blobs first, so nothing indexed names a missing object."""
        shas = self.blobs.put_many([data for _, data in addenda])

        def index(d: _Db) -> None:
            for (add, _), sha in zip(addenda, shas, strict=True):
                Catalog.insert_addendum(d, sha, add)
        self.ledger.commit([addendum_event(add, sha) for (add, _), sha in zip(addenda, shas, strict=True)],
                           actor=actor, index=index)
        return shas

    # ---- reading ---------------------------------------------------------------------------
    def resolve(self, record_id: str) -> RecordSummary:
        rid = normalize_record_id(record_id)
        summary = self.catalog.get(rid)
        if summary is None:
            raise NotFoundError(f"no record {rid} in store {self.root}")
        return summary

    def resolve_many(self, record_ids: Iterable[str]) -> ListOf[RecordSummary]:
        """Like ``resolve`` for each, in order, over one catalog connection."""
        rids = [normalize_record_id(r) for r in record_ids]
        found = self.catalog.get_many(rids)
        missing = [r for r in rids if r not in found]
        if missing:
            raise NotFoundError(f"no record {missing[0]} in store {self.root}")
        return [found[r] for r in rids]

    def manifest(self, record_id: str) -> Manifest:
        summary = self.resolve(record_id)
        data = self.blobs.read_bytes(summary.manifest_sha256)
        if hashlib.sha256(data).hexdigest() != summary.manifest_sha256:
            raise IntegrityError(f"manifest of {summary.record_id} does not match its hash",
                                 hint=f"run `archiver verify {summary.record_id}`")
        try:
            return Manifest.from_dict(json.loads(data))
        except ValueError as exc:
            raise IntegrityError(f"manifest of {summary.record_id} is not valid JSON") from exc

    def list(self, *, url: str | None = None, entity: str | None = None,
             limit: int | None = None, after: str | None = None) -> ListOf[RecordSummary]:
        return self.catalog.list(url=url, entity=entity, limit=limit, after=after)

    def lookup(self, sha256: str) -> ListOf[ArtifactMatch]:
        from archiver.records import Digest

        return self.catalog.find_sha256(Digest.parse(sha256).hex)

    def addenda(self, record_id: str, kind: str | None = None) -> ListOf[tuple[str, Addendum | None]]:
        """(sha256, addendum) of a record's addenda, oldest first; None where a blob is unreadable or
        of a kind newer than this release (verification reports those by name)."""
        out: list[tuple[str, Addendum | None]] = []
        for sha, _kind in self.catalog.addenda(self.resolve(record_id).record_id, kind):
            try:
                data = self.blobs.read_bytes(sha)
                add = Addendum.from_dict(json.loads(data)) if hashlib.sha256(data).hexdigest() == sha else None
            except (OSError, ValueError, IntegrityError, UnknownFormatError):
                add = None
            out.append((sha, add))
        return out

    def artifact_sha256(self, record_id: str, name: str) -> str:
        summary = self.resolve(record_id)
        blobs = self.catalog.record_blobs(summary.record_id)
        if name in blobs:  # the common case: no addendum needs reading
            return blobs[name]
        # Timestamp tokens and their chains come from addenda: timestamp, timestamp.2, tsa-chain, ...
        n_ts = 0
        for i, (sha, add) in enumerate(self.addenda(summary.record_id), 1):
            blobs[f"addendum.{i}"] = sha
            if add is not None and add.timestamp is not None:
                n_ts += 1
                for base, value in (("timestamp", add.timestamp.token_sha256),
                                    ("tsa-chain", add.timestamp.chain_sha256)):
                    blobs[f"{base}.{n_ts}"] = value
                    blobs.setdefault(base, value)
        if name not in blobs:
            raise NotFoundError(f"record {summary.record_id} has no artifact {name!r}",
                                hint="artifacts: " + ", ".join(sorted(blobs)))
        return blobs[name]


__all__ = ["BuildManifest", "StoreCore", "addendum_event", "now_iso"]
