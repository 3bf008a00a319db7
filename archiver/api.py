"""The typed Python API. The CLI is a thin layer over :class:`Archive`; nothing here prints."""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from archiver.config import Config
from archiver.errors import (
    ArchiverError,
    IntegrityError,
    NotFoundError,
    StoreConflictError,
    StoreCorruptError,
    StoreError,
    StoreNotFoundError,
    UsageError,
)
from archiver.location import STORE_FORMAT, STORE_MARKER, Backends, default_store_path, read_marker, write_marker
from archiver.provenance.ids import new_record_id, normalize_record_id
from archiver.provenance.keys import KeyStore, PassphraseSource, ask_once, public_pem, register_rotation
from archiver.records import (
    Addendum,
    ArtifactMatch,
    BatchItem,
    Manifest,
    Operator,
    RecordSummary,
    StampResult,
    Verification,
    WaybackEvidence,
)
from store.blobs import BlobStore, hash_file
from store.catalog import Catalog, PostgresCatalog, open_catalog
from store.custody import ChainReport, CustodyLog, Event, PostgresCustodyLog
from store.fsutil import atomic_writer, store_writes

if TYPE_CHECKING:
    from archiver.batchstamps import BatchStamps
    from archiver.capture.browser import BrowserOptions, BrowserSession
    from archiver.derive import DeriveResult
    from archiver.evidence import ProvenanceReport
    from archiver.reports import StoreInfo
    from archiver.wayback import WaybackConfig
    from store.s3 import S3BlobStore

_ACTOR: contextvars.ContextVar[str | None] = contextvars.ContextVar("archiver_actor", default=None)
def env_passphrase() -> str | None:
    return os.environ.get("ARCHIVER_KEY_PASSPHRASE") or None


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def parse_batch_lines(lines: Iterable[str]) -> ListOf[tuple[str, str | None, str | None]]:
    """One URL per line, optionally ``URL<TAB>entity<TAB>document``; ``#`` comments and blanks skipped."""
    out: list[tuple[str, str | None, str | None]] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split("\t")]
        out.append((parts[0], (parts[1] or None) if len(parts) > 1 else None,
                    (parts[2] or None) if len(parts) > 2 else None))
    return out


ListOf = list  # the classes below define a method named list


class Archive:
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
        self.keys = KeyStore(root)
        # queue.* settings (the politeness limit among them) live in a PostgreSQL catalog when there is
        # one, so every machine of a fleet obeys the same values.
        self.config = Config(root / "config.json", self.catalog if isinstance(self.catalog, PostgresCatalog) else None)

    # ---- lifecycle -------------------------------------------------------------------------
    @classmethod
    def init(cls, root: Path | None = None, *, passphrase: str | None = None,
             operator: str | None = None, organization: str | None = None,
             backends: Backends | None = None) -> tuple[Archive, str | None]:
        """Create the store (idempotent) and a signing key if it has none. Returns the new key id.

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
        archive = cls(root, backends)
        try:  # reach the backends before anything is written: an unreachable one leaves no half store
            archive.blobs.ensure()
            archive.catalog.create()
            if isinstance(archive.custody, PostgresCustodyLog):
                archive.custody.create()
        except BaseException:
            if fresh:
                import shutil

                shutil.rmtree(root) if made_root else shutil.rmtree(root / "tmp", ignore_errors=True)
                with contextlib.suppress(FileNotFoundError):
                    (root / "catalog.sqlite3").unlink()
            raise
        if fresh or changed:
            write_marker(root, backends)
        if operator:
            archive.config.set("operator.name", operator)
        if organization:
            archive.config.set("operator.organization", organization)
        key_id = None
        if not archive.keys.has_signing_key():
            key_id = archive.keys.generate(passphrase)
            archive._register_signing_key()
        elif changed:  # the new catalog / bucket must know the existing key too
            archive._register_signing_key()
        return archive, key_id

    @classmethod
    def open(cls, root: Path | None = None) -> Archive:
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
        archive = cls(root, read_marker(root))
        archive.catalog.check()
        return archive

    # ---- settings --------------------------------------------------------------------------
    def allow_private(self, override: bool | None = None) -> bool:
        if override:
            return True
        return _env_true("ARCHIVER_ALLOW_PRIVATE") or self.config.bool_("capture.allow_private")

    def operator(self) -> Operator:
        from archiver.records import operator_from

        return operator_from(self.config.str_("operator.name"), self.config.str_("operator.organization"))

    # ---- keys ------------------------------------------------------------------------------
    def _register_signing_key(self) -> None:
        from archiver.provenance.keys import key_id_of

        pub = self.keys.signing_public_key()
        blob = self.blobs.put_bytes(public_pem(pub))
        self.catalog.add_signer_key(key_id_of(pub), blob)

    def generate_key(self, passphrase: str | None = None, *, replace: bool = False,
                     old_passphrase: PassphraseSource = env_passphrase) -> str:
        key_id = self.keys.generate(passphrase, replace=replace, old_passphrase=old_passphrase)
        self._register_signing_key()
        self.custody.append("key-generate", actor=self.actor(), detail={"key_id": key_id})
        register_rotation(self.keys, self.blobs, self.catalog, self.custody, key_id, actor=self.actor())
        return key_id

    def trust_key(self, pem: bytes | None = None, *, key_id: str | None = None, source: str) -> str:
        """Add a signer to the keyring (custody entry): its PEM, or the id of a key this store has seen."""
        if pem is None:
            kid = "sha256:" + (key_id or "").strip().lower().removeprefix("sha256:")
            if (blob := self.catalog.signer_key_blob(kid)) is None:
                raise NotFoundError(f"this store has not seen a key {kid}",
                                    hint="import a bundle it signed first, or give the key's PEM file")
            pem = self.blobs.read_bytes(blob)
        kid = self.keys.trust(pem, source=source)
        self.custody.append("key-trust", actor=self.actor(), detail={"key_id": kid, "source": source})
        return kid

    def actor(self) -> str:
        """Who custody entries name: a web request's token, else the operator."""
        override = _ACTOR.get()
        if override:
            return override
        op = self.operator()
        return op.name or "unknown"

    @contextlib.contextmanager
    def acting_as(self, name: str) -> Iterator[None]:
        """Custody entries made inside name ``name`` as the actor (the web app passes the token's name)."""
        reset = _ACTOR.set(name)
        try:
            yield
        finally:
            _ACTOR.reset(reset)

    # ---- capture ---------------------------------------------------------------------------
    def unused_record_id(self) -> str:
        for _ in range(100):
            rid = new_record_id()
            if not self.catalog.has_record(rid):
                return rid
        raise StoreError("could not find an unused record ID after 100 tries")

    def commit_manifest(self, manifest: Manifest, manifest_bytes: bytes, job_key: str | None = None) -> Manifest:
        """Store the manifest blob, log custody, then make the record visible in one transaction."""
        sha = self.blobs.put_bytes(manifest_bytes)
        try:
            self._log_and_index([Event("capture", manifest.record_id, sha,
                                       {"url": manifest.subject.url, "manifest_sha256": sha})],
                                lambda d: self.catalog.insert_record(d, manifest, sha, job_key=job_key))
        except StoreConflictError as exc:
            raise StoreConflictError(f"record {manifest.record_id} could not be cataloged: {exc}") from exc
        return manifest

    def _log_and_index(self, events: list[Event], index: Callable[[Any], None]) -> None:
        """Custody entries, then catalog rows. On PostgreSQL both commit in one transaction, so a worker
        killed (or beaten to the same queue job) in between leaves neither behind; with SQLite and a
        custody file, ``rebuild-index`` recovers a record whose catalog commit was cut off."""
        actor = self.actor()
        if isinstance(self.catalog, PostgresCatalog):
            with self.catalog.db() as d, d.tx():
                for ev in events:
                    PostgresCustodyLog.append_in(d, ev.event, actor=actor, record_id=ev.record_id,
                                                 subject_sha256=ev.subject_sha256, detail=ev.detail)
                index(d)
            return
        self.custody.append_many(events, actor=actor)
        with self.catalog.db() as d, d.tx():
            index(d)

    def commit_addendum(self, addendum: Addendum, addendum_bytes: bytes) -> str:
        """Store a signed addendum, log custody, then index it; returns its sha256."""
        return self.commit_addenda([(addendum, addendum_bytes)])[0]

    def commit_addenda(self, addenda: Sequence[tuple[Addendum, bytes]]) -> list[str]:
        """Several addenda (a batch's timestamps) in one group commit: one custody write and one
        catalog transaction instead of one each, so stamping N records costs N blob writes and little
        more. Blobs first, so nothing indexed ever points to a missing object."""
        shas = self.blobs.put_many([data for _, data in addenda])
        events = []
        for (add, _), sha in zip(addenda, shas, strict=True):
            detail = {"addendum_sha256": sha, "manifest_sha256": add.manifest_sha256}
            if add.timestamp is not None:
                detail.update(tsa=add.timestamp.tsa_url, gen_time=add.timestamp.gen_time)
            if add.wayback is not None:
                detail.update(verdict=add.wayback.verdict)
            if add.derived is not None:
                detail.update(artifact=add.derived.name, sha256=add.derived.sha256)
            events.append(Event(add.kind, add.record_id, sha, detail))

        def index(d: Any) -> None:
            for (add, _), sha in zip(addenda, shas, strict=True):
                self.catalog.insert_addendum(d, sha, add)
        self._log_and_index(events, index)
        return shas

    def capture(self, url: str, *, entity: str | None = None, document: str | None = None,
                allow_private: bool | None = None, insecure: bool = False, allow_status: bool = False,
                passphrase: PassphraseSource = env_passphrase, stamp: bool = True,
                on_stamp: Callable[[StampResult], None] | None = None, browser: BrowserOptions | None = None,
                session: BrowserSession | None = None, job_key: str | None = None,
                select: tuple[str, ...] = (), remove: tuple[str, ...] = (),
                main_content: bool | None = None, on_fetched: Callable[[], None] | None = None) -> Manifest:
        """Capture one URL; when a TSA is configured (and ``stamp``), timestamp it right away.

        A TSA failure never fails the capture: the record stays "unstamped" for ``timestamp --pending``."""
        from archiver.capture import CaptureOptions, capture_url

        opts = CaptureOptions(entity=entity, document=document, allow_private=allow_private,
                              insecure=insecure, allow_status=allow_status, job_key=job_key, select=select,
                              remove=remove, main_content=self._main_content(main_content), on_fetched=on_fetched)
        once = ask_once(passphrase)

        # the network side maps its own OSErrors (exit 3); one that escapes to here came from
        # committing to the store: disk full, read-only, permissions (exit 4)
        with store_writes(f"storing the capture of {url}"), self.catalog.session():
            if browser is None:
                manifest = capture_url(self, url, opts, once)
            elif session is not None:
                manifest = session.capture(self, url, opts, browser, once)
            else:
                from archiver.capture.browser import BrowserSession as _Session

                with _Session() as own:
                    manifest = own.capture(self, url, opts, browser, once)
        if stamp and self.tsa_configured():
            for result in self.timestamp([manifest.record_id], passphrase=once, deferred=False):
                if on_stamp:
                    on_stamp(result)
        return manifest

    def derive(self, record_ids: Iterable[str], *, select: tuple[str, ...] = (), remove: tuple[str, ...] = (),
               passphrase: PassphraseSource = env_passphrase) -> ListOf[DeriveResult]:
        """Give records captured without main-text theirs, as signed addenda (``archiver.derive``)."""
        from archiver.derive import derive_records

        ids = list(dict.fromkeys(self.resolve(r).record_id for r in record_ids))
        key = self.keys.load_private(passphrase)
        with store_writes("storing derived main-text"):
            return derive_records(self, ids, key, select=select, remove=remove)

    def _main_content(self, asked: bool | None) -> bool:
        """Automatic main-text for captures with no declaration: asked, else ``capture.main_content``."""
        return self.config.bool_("capture.main_content") if asked is None else asked

    # ---- Wayback Machine -------------------------------------------------------------------
    def wayback_config(self) -> WaybackConfig:
        from archiver.wayback import config_of

        return config_of(self.config)

    def wayback(self, record_id: str, *, save: bool = False, if_not_archived_within: str | None = None,
                passphrase: PassphraseSource = env_passphrase) -> Addendum:
        """Cross-link a record with the Wayback Machine and record the verdict as a signed addendum.

        Raises WaybackError (the verdict is *unknown*) when the Archive cannot answer; the record
        is then left exactly as it was."""
        from archiver.wayback import cross_link

        return cross_link(self, record_id, save_first=save, if_not_archived_within=if_not_archived_within,
                          key=lambda: self.keys.load_private(passphrase))

    def wayback_still_there(self, evidence: WaybackEvidence) -> tuple[bool, str]:
        """Re-query the CDX API: is the recorded snapshot still listed with the same digest?"""
        from archiver.wayback import still_listed

        return still_listed(evidence, self.wayback_config())

    # ---- trusted time ----------------------------------------------------------------------
    def tsa_configured(self) -> bool:
        return bool(self.config.get("tsa.urls"))

    def timestamp(self, record_ids: Iterable[str], *, passphrase: PassphraseSource = env_passphrase,
                  tsa_urls: list[str] | None = None, deferred: bool = True) -> ListOf[StampResult]:
        """Timestamp records with every configured TSA; several records share one Merkle-batched token."""
        from archiver.stamping import stamp_records

        ids = list(dict.fromkeys(s.record_id for s in self.resolve_many(record_ids)))
        key = self.keys.load_private(passphrase)
        return stamp_records(self, ids, key, tsa_urls=tsa_urls, deferred=deferred)

    def pending_timestamps(self) -> ListOf[str]:
        """Records that have no timestamp token yet (the TSA was down, or none was configured)."""
        return self.catalog.records_without("timestamp")

    def addenda(self, record_id: str, kind: str | None = None) -> ListOf[tuple[str, Addendum | None]]:
        """(sha256, addendum) of a record's addenda, oldest first; None where a blob is unreadable."""
        out: list[tuple[str, Addendum | None]] = []
        for sha, _kind in self.catalog.addenda(self.resolve(record_id).record_id, kind):
            try:
                data = self.blobs.read_bytes(sha)
                add = Addendum.from_dict(json.loads(data)) if hashlib.sha256(data).hexdigest() == sha else None
            except (OSError, ValueError, IntegrityError):
                add = None
            out.append((sha, add))
        return out

    def capture_batch(self, items: list[tuple[str, str | None, str | None]], *, jobs: int = 4,
                      allow_private: bool | None = None, insecure: bool = False, allow_status: bool = False,
                      passphrase: PassphraseSource = env_passphrase,
                      on_result: Callable[[BatchItem], None] | None = None, stamp: bool = True,
                      on_stamp: Callable[[StampResult], None] | None = None,
                      browser: BrowserOptions | None = None, select: tuple[str, ...] = (),
                      remove: tuple[str, ...] = (), main_content: bool | None = None) -> ListOf[BatchItem]:
        """Capture many URLs, ``jobs`` at a time, with a per-host limit; one failure never stops the rest.

        On several cores a batch runs on worker processes with threads each (``archiver.pool``).

        With a TSA configured, the batch gets one token per TSA (Merkle root over its manifests), or
        two when what finished early is stamped while the last downloads run (``archiver.batchstamps``)."""
        from archiver.capture import host_of
        from archiver.pool import plan, release_once, run_batch

        if jobs < 1:
            raise UsageError("--jobs must be at least 1")
        secret = passphrase()  # ask once, not once per thread
        self.keys.load_private(lambda: secret)  # a wrong passphrase fails the batch up front
        per_host = max(1, self.config.int_("capture.per_host"))
        host_locks: dict[str, threading.BoundedSemaphore] = {}
        guard = threading.Lock()

        session: BrowserSession | None = None
        stack = contextlib.ExitStack()
        if browser is not None:  # one Chromium for the whole batch, one page at a time
            from archiver.capture.browser import BrowserSession as _Session

            session = stack.enter_context(_Session())

        downloads = threading.BoundedSemaphore(jobs)

        def run(url: str, entity: str | None, document: str | None) -> BatchItem:
            with guard:
                sem = host_locks.setdefault(host_of(url), threading.BoundedSemaphore(per_host))
            started = time.monotonic()
            downloads.acquire()
            sem.acquire()
            fetched = release_once(sem, downloads)  # -j and the per-host limit count downloads (archiver.pool)
            try:
                m = self.capture(url, entity=entity, document=document, allow_private=allow_private,
                                 insecure=insecure, allow_status=allow_status, passphrase=lambda: secret,
                                 stamp=False, browser=browser, session=session, select=select,
                                 remove=remove, main_content=main_content, on_fetched=fetched)
            except ArchiverError as exc:
                return BatchItem(url, entity, document, error=exc.message, exit_code=exc.exit_code,
                                 seconds=time.monotonic() - started)
            finally:
                fetched()
            return BatchItem(url, entity, document, record_id=m.record_id, seconds=time.monotonic() - started)

        results: list[BatchItem] = []
        how = None if browser is not None else plan(jobs, len(items), os.cpu_count() or 1)

        stamps: BatchStamps | None = None
        if stamp and self.tsa_configured():
            from archiver.batchstamps import BatchStamps

            stamps = BatchStamps(lambda ids: self.timestamp(ids, passphrase=lambda: secret, deferred=False),
                                 total=len(items), jobs=jobs)

        def collect(item: BatchItem) -> None:
            results.append(item)
            if on_result:
                on_result(item)
            if stamps is not None:
                stamps.add(item)

        with stack:
            if how is not None:  # CPU-bound steps on every core (archiver.pool)
                run_batch(self.root, items, how=how, secret=secret, actor=self.actor(), per_host=per_host,
                          host_of=host_of, on_item=collect,
                          options={"allow_private": allow_private, "insecure": insecure, "allow_status": allow_status,
                                   "select": select, "remove": remove, "main_content": main_content})
            elif session is not None:  # Playwright's sync API stays on the thread that started it
                for args in items:
                    collect(run(*args))
            else:
                from concurrent.futures import ThreadPoolExecutor, as_completed

                with ThreadPoolExecutor(max_workers=2 * jobs) as pool:
                    for fut in as_completed([pool.submit(run, *args) for args in items]):
                        collect(fut.result())
        order = {u: i for i, (u, _, _) in enumerate(items)}
        results.sort(key=lambda r: order.get(r.url, 0))
        if stamps is not None:
            stamped = stamps.finish()
            for st in stamped:
                if on_stamp:
                    on_stamp(st)
            results = stamps.mark(results, stamped)
        return results

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
             limit: int | None = None) -> ListOf[RecordSummary]:
        return self.catalog.list(url=url, entity=entity, limit=limit)

    def lookup(self, sha256: str) -> ListOf[ArtifactMatch]:
        from archiver.records import Digest

        return self.catalog.find_sha256(Digest.parse(sha256).hex)

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

    def get(self, record_id: str, name: str, dest: Path) -> tuple[str, int]:
        """Copy an artifact out byte-exact, checking its hash on the way; atomic at ``dest``."""
        with atomic_writer(dest) as out:
            return self.write_artifact(record_id, name, out, to=str(dest))

    def write_artifact(self, record_id: str, name: str, out: IO[bytes], *, to: str) -> tuple[str, int]:
        """Stream an artifact into ``out`` (a pipe); a corrupt blob raises IntegrityError after the bytes."""
        summary = self.resolve(record_id)
        sha = self.artifact_sha256(summary.record_id, name)
        h = hashlib.sha256()
        size = 0
        with self.blobs.open(sha) as src:
            while chunk := src.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
                out.write(chunk)
            if h.hexdigest() != sha:
                raise IntegrityError(f"artifact {name} of {summary.record_id} is corrupt in the store "
                                     f"(sha256 {h.hexdigest()} instead of {sha})",
                                     hint=f"run `archiver verify {summary.record_id}`")
        out.flush()
        self.custody.append("get", actor=self.actor(), record_id=summary.record_id, subject_sha256=sha,
                            detail={"artifact": name, "to": to})
        return sha, size

    # ---- verification ----------------------------------------------------------------------
    def verify(self, record_id: str, *, log: bool = True, wayback: bool = False,
               chain: ChainReport | None = None) -> Verification:
        from archiver.verify import verify_record

        summary = self.resolve(record_id)
        report = verify_record(self, summary, wayback=wayback, chain=chain)
        try:  # a cache for the web app's filters: a read-only store must still verify
            self.catalog.note_verification(summary.record_id, _now_iso(), report.ok,
                                           ",".join(c.name for c in report.failures))
        except StoreError as exc:
            import logging

            logging.getLogger(__name__).warning("could not note the verification of %s: %s",
                                                summary.record_id, exc)
        if log:
            self.custody.append("verify", actor=self.actor(), record_id=summary.record_id,
                                subject_sha256=summary.manifest_sha256,
                                detail={"result": "pass" if report.ok else "fail",
                                        "failed": ",".join(c.name for c in report.failures)})
        return report

    def verify_all(self, on_result: Callable[[Verification], None] | None = None, *,
                   wayback: bool = False) -> ListOf[Verification]:
        """Every record, a few at a time: hashing releases the GIL, so records overlap on the cores;
        reports come back in catalog order."""
        from concurrent.futures import ThreadPoolExecutor

        chain = self.custody.verify_chain()  # once for the run: the log only grows by our own entries
        summaries = self.catalog.list()
        out: list[Verification] = []
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            for report in pool.map(lambda s: self.verify(s.record_id, wayback=wayback, chain=chain), summaries):
                out.append(report)
                if on_result:
                    on_result(report)
        return out

    def verify_file(self, path: Path, expected_sha256: str | None = None) -> tuple[str, ListOf[ArtifactMatch]]:
        from archiver.records import Digest

        try:
            sha, _ = hash_file(path)
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
        if expected_sha256 is not None:
            Digest.parse(expected_sha256)
        return sha, self.catalog.find_sha256(sha)

    def provenance(self, record_id: str) -> ProvenanceReport:
        """Everything the record page shows (Evidence Provenance, Citation Record, Document, Versions)."""
        from archiver.evidence import provenance

        return provenance(self, record_id)

    # ---- maintenance -----------------------------------------------------------------------
    def info(self) -> StoreInfo:
        """Where this store keeps its parts, and how many records it holds."""
        from archiver.reports import StoreInfo

        b = self.backends
        return StoreInfo(store=str(self.root), catalog=self.catalog.backend, catalog_location=self.catalog.location,
                         custody="catalog table custody" if b.catalog else str(self.root / "custody.log"),
                         blobs=b.s3.url if b.s3 else str(self.root / "objects"),
                         object_lock=b.s3.object_lock if b.s3 else None, retain=b.s3.retain if b.s3 else None,
                         legal_hold=b.s3.legal_hold if b.s3 else False, records=self.catalog.count())

    def rebuild_index(self) -> int:
        """Recreate catalog rows from the manifests found among the blobs."""
        from archiver.provenance.keys import key_id_of, load_public_pem

        manifests: list[tuple[Manifest, str]] = []
        addenda: list[tuple[Addendum, str]] = []
        for sha in self.blobs.iter_all():
            with self.blobs.open(sha) as fh:
                head = fh.read(64)
            if head.startswith(b"-----BEGIN PUBLIC KEY-----"):
                try:
                    key = load_public_pem(self.blobs.read_bytes(sha))
                except ArchiverError:
                    continue
                self.catalog.add_signer_key(key_id_of(key), sha)
                continue
            if not head.startswith((b'{"artifacts":', b'{"created_at":')):
                continue
            data = self.blobs.read_bytes(sha)
            if hashlib.sha256(data).hexdigest() != sha:
                continue  # a damaged blob is verify's business, not the index's
            try:
                if head.startswith(b'{"artifacts":'):
                    manifests.append((Manifest.from_dict(json.loads(data)), sha))
                else:
                    addenda.append((Addendum.from_dict(json.loads(data)), sha))
            except (ValueError, ArchiverError):
                continue
        self.catalog.clear_index()
        for m, sha in sorted(manifests, key=lambda t: (t[0].captured_at, t[0].record_id)):
            self.catalog.add_record(m, sha)
        indexed = {sha: m.record_id for m, sha in manifests}
        for a, sha in addenda:
            if indexed.get(a.manifest_sha256) == a.record_id:
                self.catalog.add_addendum(sha, a)
        self.custody.append("rebuild-index", actor=self.actor(), detail={"records": str(len(manifests))})
        return len(manifests)


def manifest_json(manifest: Manifest) -> str:
    return json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False)


def find_partial_blobs(root: Path) -> ListOf[Path]:
    """Visible blobs whose bytes do not hash to their name (should always be empty)."""
    bad = []
    store = BlobStore(root)
    for sha in store.iter_all():
        if hash_file(store.path(sha))[0] != sha:
            bad.append(store.path(sha))
    return bad


__all__ = ["Archive", "Backends", "default_store_path", "env_passphrase", "parse_batch_lines"]
