"""The narrow interfaces use cases are given, so none of them imports the ``Archive`` facade.

``archiver.core.StoreCore`` is the concrete store every use case runs on; ``Store`` names what a use case
may call on it (the parts, the one write path, reading records back), so a test can pass anything else
that does. Every write names its actor explicitly.

Layering (see docs/architecture.md): records/errors → store → provenance → **ports** → use cases
(capture, verify, wayback, cite, monitor, bundle, queue) → ``archiver.api.Archive`` → front-ends.
A use case names the smallest protocol here that covers what it calls; the facade satisfies them all
structurally, and a test (or a use case run on its own) can pass anything else that does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from archiver.config import Config
    from archiver.core import BuildManifest
    from archiver.options import CaptureOptions
    from archiver.provenance.keys import KeyStore, PassphraseSource
    from archiver.records import (
        Addendum,
        BatchItem,
        Manifest,
        Operator,
        RecordSummary,
        StampResult,
        Verification,
        WaybackEvidence,
    )
    from archiver.tlog.log import TransparencyLog
    from store.blobs import BlobStore
    from store.catalog import Catalog
    from store.custody import ChainReport, CustodyEntry, CustodyLog
    from store.ledger import Ledger
    from store.s3 import S3BlobStore


class Store(Protocol):
    """An open store: its parts, its settings, and reading and committing records."""

    @property
    def root(self) -> Path: ...
    @property
    def blobs(self) -> BlobStore | S3BlobStore: ...
    @property
    def catalog(self) -> Catalog: ...
    @property
    def custody(self) -> CustodyLog: ...
    @property
    def keys(self) -> KeyStore: ...
    @property
    def config(self) -> Config: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def log(self) -> TransparencyLog: ...

    def operator(self) -> Operator: ...
    def default_actor(self) -> str: ...
    def allow_private(self, override: bool | None = None) -> bool: ...
    def tsa_configured(self) -> bool: ...

    def unused_record_id(self) -> str: ...
    def chain_lock(self, url: str) -> AbstractContextManager[None]: ...
    def commit_record(self, url: str, build: BuildManifest, *, actor: str,
                      job_key: str | None = None) -> Manifest: ...
    def commit_addendum(self, addendum: Addendum, addendum_bytes: bytes, *, actor: str) -> str: ...
    def commit_addenda(self, addenda: Sequence[tuple[Addendum, bytes]], *, actor: str) -> list[str]: ...
    def note(self, event: str, *, actor: str, record_id: str | None = None, subject_sha256: str | None = None,
             detail: dict[str, str] | None = None) -> CustodyEntry: ...

    def resolve(self, record_id: str) -> RecordSummary: ...
    def resolve_many(self, record_ids: Iterable[str]) -> list[RecordSummary]: ...
    def manifest(self, record_id: str) -> Manifest: ...
    def addenda(self, record_id: str, kind: str | None = None) -> list[tuple[str, Addendum | None]]: ...
    def artifact_sha256(self, record_id: str, name: str) -> str: ...


class VerifyingStore(Store, Protocol):
    """A store that can also verify records (certificates refuse what does not verify)."""

    def verify(self, record_id: str, *, log: bool = True, wayback: bool = False,
               chain: ChainReport | None = None, actor: str | None = None) -> Verification: ...


class WaybackWitness(Store, Protocol):
    """A store that can re-ask the Wayback Machine about a recorded snapshot (``verify --wayback``)."""

    def wayback_still_there(self, evidence: WaybackEvidence) -> tuple[bool, str]: ...


class Capturer(Store, Protocol):
    """A store that can capture (the watch runner and queue workers drive captures through it)."""

    def capture(self, url: str, opts: CaptureOptions | None = None, *,
                passphrase: PassphraseSource = ..., stamp: bool = True,
                on_stamp: Callable[[StampResult], None] | None = None,
                actor: str | None = None) -> Manifest: ...

    def capture_batch(self, items: list[tuple[str, str | None, str | None]], opts: CaptureOptions | None = None, *,
                      jobs: int = 4, passphrase: PassphraseSource = ...,
                      on_result: Callable[[BatchItem], None] | None = None, stamp: bool = True,
                      on_stamp: Callable[[StampResult], None] | None = None,
                      actor: str | None = None) -> list[BatchItem]: ...


__all__ = ["Capturer", "Store", "VerifyingStore", "WaybackWitness"]
