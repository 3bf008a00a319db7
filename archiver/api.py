"""The typed Python API. The CLI is a thin layer over :class:`Archive`; nothing here prints."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from archiver.core import StoreCore, now_iso
from archiver.errors import ArchiverError, IntegrityError, NotFoundError, StoreError, UsageError
from archiver.location import Backends, default_store_path
from archiver.options import CaptureOptions
from archiver.provenance.keys import PassphraseSource, ask_once
from archiver.records import Addendum, ArtifactMatch, BatchItem, Manifest, StampResult, Verification, WaybackEvidence
from store.blobs import BlobStore, hash_file
from store.custody import ChainReport
from store.fsutil import atomic_writer, store_writes

if TYPE_CHECKING:
    from archiver.access import Tokens
    from archiver.batchstamps import BatchStamps
    from archiver.bundle.service import Bundles
    from archiver.capture.browser import BrowserSession
    from archiver.collections import Collections
    from archiver.derive import DeriveResult
    from archiver.evidence import ProvenanceReport
    from archiver.fulltext import FullText
    from archiver.monitor import Watches
    from archiver.provisions import Provisions
    from archiver.publication import Publications
    from archiver.records import RecordSummary
    from archiver.reports import RebuildReport, StoreInfo
    from archiver.wayback import WaybackConfig


def env_passphrase() -> str | None:
    return os.environ.get("ARCHIVER_KEY_PASSPHRASE") or None


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


class Archive(StoreCore):
    """The facade: the store core (``archiver.core``) plus the use cases, composed for front-ends.

    Every method that writes takes ``actor``: the front-end says who is acting (the web passes the
    token's name); ``None`` means the operator at this machine (the CLI)."""

    def __init__(self, root: Path, backends: Backends | None = None) -> None:
        super().__init__(root, backends)
        if self.backends.s3 is not None:  # on S3, legal holds follow every commit onto the new objects
            self._follow_holds()

    def _follow_holds(self) -> None:
        """After each evidence commit, besides the log's sync: an addendum of a held record gets the
        server's legal hold (``matters.holds.follow``; a weak reference, no cycle through the ledger)."""
        import weakref

        log_sync, me = self.ledger.on_commit, weakref.ref(self)

        def after_commit() -> None:
            if log_sync is not None:
                log_sync()
            archive = me()
            if archive is not None:
                from archiver.matters.holds import follow

                follow(archive)
        self.ledger.on_commit = after_commit

    # ---- lifecycle -------------------------------------------------------------------------
    @classmethod
    def init(cls, root: Path | None = None, *, passphrase: str | None = None,
             operator: str | None = None, organization: str | None = None,
             backends: Backends | None = None) -> tuple[Archive, str | None]:
        """Create the store (idempotent) and a signing key if it has none. Returns the new key id."""
        archive, changed = cls._create(root, backends)
        if operator:
            archive.config.set("operator.name", operator)
        if organization:
            archive.config.set("operator.organization", organization)
        key_id = None
        if not archive.keys.has_signing_key():
            key_id = archive.keys.generate(passphrase)
            archive.register_signing_key()
        elif changed:  # the new catalog / bucket must know the existing key too
            archive.register_signing_key()
        return archive, key_id

    @classmethod
    def open(cls, root: Path | None = None) -> Archive:
        archive: Archive = cls._open_root(root)
        return archive

    def _who(self, actor: str | None) -> str:
        return actor or self.default_actor()

    # ---- subsystems: each a package of its own that takes the store core -------------------
    # (plain properties, not cached: a cached subsystem holding the archive would be a reference cycle,
    # keeping a PostgreSQL connection open until the cyclic garbage collector runs)
    @property
    def bundles(self) -> Bundles:
        """WACZ bundles: export, verify, import (``archiver.bundle``)."""
        from archiver.bundle.service import Bundles

        return Bundles(self)

    @property
    def watches(self) -> Watches:
        """The watch list, runs, versions (``archiver.monitor``)."""
        from archiver.monitor import Watches

        return Watches(self)

    @property
    def publications(self) -> Publications:
        """Which records are public at their permalink (``archiver.publication``)."""
        from archiver.publication import Publications

        return Publications(self)

    @property
    def collections(self) -> Collections:
        """Named, ordered lists of records with a public page and bundle (``archiver.collections``)."""
        from archiver.collections import Collections

        return Collections(self)

    @property
    def fulltext(self) -> FullText:
        """Search across documents' sections (``archiver.fulltext``)."""
        from archiver.fulltext import FullText

        return FullText(self)

    @property
    def provisions(self) -> Provisions:
        """Pinned clauses re-found on every watch run (``archiver.provisions``)."""
        from archiver.provisions import Provisions

        return Provisions(self)

    @property
    def tokens(self) -> Tokens:
        """Access tokens for the web app and API (``archiver.access``)."""
        from archiver.access import Tokens

        return Tokens(self)

    # ---- keys ------------------------------------------------------------------------------
    def generate_key(self, passphrase: str | None = None, *, replace: bool = False,
                     old_passphrase: PassphraseSource = env_passphrase, actor: str | None = None) -> str:
        """A new signing key; on ``--replace`` the old key signs a rotation statement vouching for the new
        one (filed in the store and logged ``key-rotate``), and stays known for verifying older records."""
        from archiver.provenance.keys import register_rotation

        key_id = self.keys.generate(passphrase, replace=replace, old_passphrase=old_passphrase)
        self.register_signing_key()
        self.note("key-generate", actor=self._who(actor), detail={"key_id": key_id})
        register_rotation(self.keys, self.blobs, self.catalog, self.ledger, key_id, actor=self._who(actor))
        return key_id

    def trust_key(self, pem: bytes | None = None, *, key_id: str | None = None, source: str,
                  actor: str | None = None) -> str:
        """Add a signer to the keyring (custody entry): its PEM, or the id of a key this store has seen."""
        if pem is None:
            kid = "sha256:" + (key_id or "").strip().lower().removeprefix("sha256:")
            if (blob := self.catalog.signer_key_blob(kid)) is None:
                raise NotFoundError(f"this store has not seen a key {kid}",
                                    hint="import a bundle it signed first, or give the key's PEM file")
            pem = self.blobs.read_bytes(blob)
        kid = self.keys.trust(pem, source=source)
        self.note("key-trust", actor=self._who(actor), detail={"key_id": kid, "source": source})
        return kid

    # ---- capture ---------------------------------------------------------------------------
    def capture(self, url: str, opts: CaptureOptions | None = None, *,
                passphrase: PassphraseSource = env_passphrase, stamp: bool = True,
                on_stamp: Callable[[StampResult], None] | None = None, session: BrowserSession | None = None,
                actor: str | None = None) -> Manifest:
        """Capture one URL; when a TSA is configured (and ``stamp``), timestamp it right away.

        A TSA failure never fails the capture: the record stays "unstamped" for ``timestamp --pending``."""
        from archiver.capture import capture_url

        opts = opts or CaptureOptions()
        if opts.main_content is None:  # automatic main-text when nothing is declared: the store's setting
            opts = dataclasses.replace(opts, main_content=self.config.bool_("capture.main_content"))
        once = ask_once(passphrase)
        who = self._who(actor)

        # the network side maps its own OSErrors (exit 3); one that escapes to here came from
        # committing to the store: disk full, read-only, permissions (exit 4)
        with store_writes(f"storing the capture of {url}"), self.catalog.session():
            if opts.browser is None:
                manifest = capture_url(self, url, opts, once, actor=who)
            elif session is not None:
                manifest = session.capture(self, url, opts, opts.browser, once, actor=who)
            else:
                from archiver.capture.browser import BrowserSession as _Session

                with _Session() as own:
                    manifest = own.capture(self, url, opts, opts.browser, once, actor=who)
        if stamp and self.tsa_configured():
            for result in self.timestamp([manifest.record_id], passphrase=once, deferred=False, actor=who):
                if on_stamp:
                    on_stamp(result)
        return manifest

    def derive(self, record_ids: Iterable[str], *, select: tuple[str, ...] = (), remove: tuple[str, ...] = (),
               passphrase: PassphraseSource = env_passphrase, actor: str | None = None) -> ListOf[DeriveResult]:
        """Give records captured without main-text theirs, as signed addenda (``archiver.derive``)."""
        from archiver.derive import derive_records

        ids = list(dict.fromkeys(self.resolve(r).record_id for r in record_ids))
        key = self.keys.load_private(passphrase)
        with store_writes("storing derived main-text"):
            return derive_records(self, ids, key, select=select, remove=remove, actor=self._who(actor))

    # ---- Wayback Machine -------------------------------------------------------------------
    def wayback_config(self) -> WaybackConfig:
        from archiver.wayback import config_of

        return config_of(self.config)

    def wayback(self, record_id: str, *, save: bool = False, if_not_archived_within: str | None = None,
                passphrase: PassphraseSource = env_passphrase, actor: str | None = None) -> Addendum:
        """Cross-link a record with the Wayback Machine and record the verdict as a signed addendum.

        Raises WaybackError (the verdict is *unknown*) when the Archive cannot answer; the record
        is then left exactly as it was."""
        from archiver.wayback import cross_link

        return cross_link(self, record_id, save_first=save, if_not_archived_within=if_not_archived_within,
                          key=lambda: self.keys.load_private(passphrase), actor=self._who(actor))

    def wayback_still_there(self, evidence: WaybackEvidence) -> tuple[bool, str]:
        """Re-query the CDX API: is the recorded snapshot still listed with the same digest?"""
        from archiver.wayback import still_listed

        return still_listed(evidence, self.wayback_config())

    # ---- trusted time ----------------------------------------------------------------------
    def timestamp(self, record_ids: Iterable[str], *, passphrase: PassphraseSource = env_passphrase,
                  tsa_urls: list[str] | None = None, deferred: bool = True,
                  actor: str | None = None) -> ListOf[StampResult]:
        """Timestamp records with every configured TSA; several records share one Merkle-batched token."""
        from archiver.stamping import stamp_records

        ids = list(dict.fromkeys(s.record_id for s in self.resolve_many(record_ids)))
        key = self.keys.load_private(passphrase)
        return stamp_records(self, ids, key, tsa_urls=tsa_urls, deferred=deferred, actor=self._who(actor))

    def pending_timestamps(self) -> ListOf[str]:
        """Records that have no timestamp token yet (the TSA was down, or none was configured)."""
        return self.catalog.records_without("timestamp")

    def capture_batch(self, items: list[tuple[str, str | None, str | None]], opts: CaptureOptions | None = None, *,
                      jobs: int = 4, passphrase: PassphraseSource = env_passphrase,
                      on_result: Callable[[BatchItem], None] | None = None, stamp: bool = True,
                      on_stamp: Callable[[StampResult], None] | None = None,
                      actor: str | None = None) -> ListOf[BatchItem]:
        """Capture many URLs, ``jobs`` at a time, with a per-host limit; one failure never stops the rest.

        On several cores a batch runs on worker processes with threads each (``archiver.pool``).

        With a TSA configured, the batch gets one token per TSA (Merkle root over its manifests), or
        two when what finished early is stamped while the last downloads run (``archiver.batchstamps``)."""
        from archiver.capture import host_of
        from archiver.pool import plan, release_once, run_batch

        if jobs < 1:
            raise UsageError("--jobs must be at least 1")
        opts = opts or CaptureOptions()
        who = self._who(actor)
        secret = passphrase()  # ask once, not once per thread
        self.keys.load_private(lambda: secret)  # a wrong passphrase fails the batch up front
        per_host = max(1, self.config.int_("capture.per_host"))
        host_locks: dict[str, threading.BoundedSemaphore] = {}
        guard = threading.Lock()

        session: BrowserSession | None = None
        stack = contextlib.ExitStack()
        if opts.browser is not None:  # one Chromium for the whole batch, one page at a time
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
                m = self.capture(url, dataclasses.replace(opts, entity=entity, document=document, on_fetched=fetched),
                                 passphrase=lambda: secret, stamp=False, session=session, actor=who)
            except ArchiverError as exc:
                return BatchItem(url, entity, document, error=exc.message, exit_code=exc.exit_code,
                                 seconds=time.monotonic() - started)
            finally:
                fetched()
            return BatchItem(url, entity, document, record_id=m.record_id, seconds=time.monotonic() - started)

        results: list[BatchItem] = []
        how = None if opts.browser is not None else plan(jobs, len(items), os.cpu_count() or 1)

        stamps: BatchStamps | None = None
        if stamp and self.tsa_configured():
            from archiver.batchstamps import BatchStamps

            stamps = BatchStamps(lambda ids: self.timestamp(ids, passphrase=lambda: secret, deferred=False,
                                                                actor=who),
                                 total=len(items), jobs=jobs)

        def collect(item: BatchItem) -> None:
            results.append(item)
            if on_result:
                on_result(item)
            if stamps is not None:
                stamps.add(item)

        with stack:
            if how is not None:  # CPU-bound steps on every core (archiver.pool)
                run_batch(self.root, items, how=how, secret=secret, actor=who, per_host=per_host,
                          host_of=host_of, on_item=collect, options=opts)
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
        from archiver.tlog.checkpoints import checkpoint_at_end

        checkpoint_at_end(self.log, stamp=stamp)  # the batch's records under a signed tree head
        return results

    # ---- reading ---------------------------------------------------------------------------
    def get(self, record_id: str, name: str, dest: Path, *, actor: str | None = None) -> tuple[str, int]:
        """Copy an artifact out byte-exact, checking its hash on the way; atomic at ``dest``."""
        with atomic_writer(dest) as out:
            return self.write_artifact(record_id, name, out, to=str(dest), actor=actor)

    def write_artifact(self, record_id: str, name: str, out: IO[bytes], *, to: str,
                       actor: str | None = None) -> tuple[str, int]:
        """Stream an artifact into ``out``; a corrupt blob raises IntegrityError after the bytes.

        A copy leaving the store is a custody event (``get``) whoever asks: the CLI's ``get`` and a web
        download log the same entry, naming the file or the request."""
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
        self.log_get(summary.record_id, name, sha, to=to, actor=actor)
        return sha, size

    def log_get(self, record_id: str, name: str, sha256: str, *, to: str, actor: str | None = None) -> None:
        """The custody event of an artifact handed out whole (``get``, a web download): one shape for both."""
        self.note("get", actor=self._who(actor), record_id=record_id, subject_sha256=sha256,
                  detail={"artifact": name, "to": to})

    # ---- verification ----------------------------------------------------------------------
    def verify(self, record_id: str, *, log: bool = True, wayback: bool = False,
               chain: ChainReport | None = None, actor: str | None = None) -> Verification:
        """Verify one record and refresh its cached result (what the web shows). ``log`` makes it an act
        with a custody entry; ``log=False`` is a check on the way to something else (a certificate, the
        server's background refresh of the cache)."""
        from archiver.verify import verify_record

        summary = self.resolve(record_id)
        report = verify_record(self, summary, wayback=wayback, chain=chain)
        try:  # a cache for the web app's pages and filters: a read-only store must still verify
            self.catalog.note_verification(summary.record_id, now_iso(), report.ok,
                                           ",".join(c.name for c in report.failures))
        except StoreError as exc:
            import logging

            logging.getLogger(__name__).warning("could not note the verification of %s: %s",
                                                summary.record_id, exc)
        if not log:
            return report
        self.note("verify", actor=self._who(actor), record_id=summary.record_id,
                  subject_sha256=summary.manifest_sha256,
                  detail={"result": "pass" if report.ok else "fail",
                          "failed": ",".join(c.name for c in report.failures)})
        return report

    def verify_all(self, on_result: Callable[[Verification], None] | None = None, *,
                   wayback: bool = False, actor: str | None = None) -> ListOf[Verification]:
        """Every record, a few at a time: hashing releases the GIL, so records overlap on the cores;
        reports come back in catalog order."""
        from concurrent.futures import ThreadPoolExecutor

        # once for the run (the log only grows by our own entries), with what the catalog names of it
        chain = self.ledger.audit(self.custody.verify_chain())
        summaries = self.catalog.list()
        out: list[Verification] = []
        from archiver.verify.source import foreign_record_id

        def one(s: RecordSummary) -> Verification:
            # a row with an ID that is not ours (an import before they were refused) fails alone: the
            # rest of the store is still verified
            return foreign_record_id(s.record_id, "the catalog") or \
                self.verify(s.record_id, wayback=wayback, chain=chain, actor=actor)
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            for report in pool.map(one, summaries):
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
        from archiver.matters import get as get_matter
        from archiver.matters.holds import active
        from archiver.reports import StoreHold, StoreInfo

        holds = tuple(StoreHold(h.matter, h.reason, h.placed_by, h.placed_at,
                                len(get_matter(self, h.matter).record_ids)) for h in active(self))
        b = self.backends
        return StoreInfo(store=str(self.root), catalog=self.catalog.backend, catalog_location=self.catalog.location,
                         custody="catalog table custody" if b.catalog else str(self.root / "custody.log"),
                         blobs=b.s3.url if b.s3 else str(self.root / "objects"),
                         object_lock=b.s3.object_lock if b.s3 else None, retain=b.s3.retain if b.s3 else None,
                         legal_hold=b.s3.legal_hold if b.s3 else False, records=self.catalog.count(),
                         holds=holds)

    def rebuild_index(self, *, actor: str | None = None) -> RebuildReport:
        """Recreate catalog rows from the signed documents among the blobs (``archiver.maintenance``)."""
        from archiver.maintenance import rebuild_index

        return rebuild_index(self, actor=self._who(actor))


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
