"""Report records: what a command (or an HTTP endpoint) answers, beyond the evidence records themselves.

Each is frozen and typed; its ``to_dict()`` is the ``--json`` output and the API body, and its JSON
Schema is generated from the type (``SCHEMAS`` below, published under docs/schemas/).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archiver.records import (
    Addendum,
    ArtifactMatch,
    Manifest,
    RecordSummary,
    StampResult,
    Verdict,
    Verification,
    WaybackEvidence,
)
from archiver.schema import FLATTEN, Report


@dataclass(frozen=True, slots=True)
class InitReport(Report):
    """A store made ready: where, with which backends, and the new signing key (if one was made)."""

    store: str
    new_key_id: str | None
    backends: str


@dataclass(frozen=True, slots=True)
class WaybackReport(Report):
    """The Wayback verdict for a record; ``unknown`` with a reason when the Archive could not answer."""

    record_id: str | None
    verdict: str
    reason: str | None = None
    evidence: WaybackEvidence | None = field(default=None, metadata=FLATTEN)

    @classmethod
    def of(cls, record_id: str | None, evidence: WaybackEvidence) -> WaybackReport:
        return cls(record_id=record_id, verdict=evidence.verdict, evidence=evidence)


@dataclass(frozen=True, slots=True)
class CaptureReport(Report):
    """One capture: the signed manifest, the timestamp requests made for it, the Wayback verdict."""

    manifest: Manifest = field(metadata=FLATTEN)
    timestamps: tuple[StampResult, ...] = ()
    wayback: WaybackReport | None = None


@dataclass(frozen=True, slots=True)
class BatchStampLine(Report):
    """A JSON line of ``capture -i --json``: the batch's timestamp request."""

    timestamp: StampResult


@dataclass(frozen=True, slots=True)
class BatchWaybackLine(Report):
    """A JSON line of ``capture -i --wayback … --json``: one record's Wayback verdict."""

    record_id: str
    wayback: WaybackReport


@dataclass(frozen=True, slots=True)
class AddendumEntry(Report):
    """An addendum as listed by ``show``: its blob hash and body, or ``unreadable``."""

    sha256: str
    addendum: Addendum | None = field(default=None, metadata=FLATTEN)
    unreadable: bool | None = None


@dataclass(frozen=True, slots=True)
class RecordReport(Report):
    """``show``: the manifest and every addendum (timestamps, Wayback cross-links) of one record."""

    manifest: Manifest = field(metadata=FLATTEN)
    addenda: tuple[AddendumEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class QuoteReport(Report):
    """An excerpt pinned to the record's text: where it is and the fragment link that highlights it."""

    excerpt: str
    sha256: str
    start: int
    end: int
    section: str | None
    fragment: str


@dataclass(frozen=True, slots=True)
class CitationReport(Report):
    """A citation in one style, and whether the record verified when it was made."""

    record_id: str
    style: str
    verified: bool
    citation: str
    quote: QuoteReport | None = None
    provision_id: str | None = None  # a provision cited: ``record_id`` holds its current text


@dataclass(frozen=True, slots=True)
class BundleReport(Report):
    """A bundle's verification: the package's own checks first, then one report per record.
    ``verdict``: the worst of its reports' verdicts (``records.Verdict``): ``verified``;
    ``intact-untrusted`` (every hash and signature holds but no key you trust vouches for it: pin the
    operator's key id with --trust-key); ``incomplete`` (something a record names is absent);
    ``tampered`` (something does not match what was signed)."""

    bundle: str
    ok: bool
    verdict: Verdict
    reports: tuple[Verification, ...]


@dataclass(frozen=True, slots=True)
class ExportReport(Report):
    """A written bundle: its hash, its records and the key that signed it."""

    path: str
    records: tuple[str, ...]
    bytes: int
    sha256: str
    datapackage_hash: str
    signer: str


@dataclass(frozen=True, slots=True)
class ImportReport(Report):
    """Records added from a bundle (those already present are skipped, never duplicated)."""

    bundle: str
    imported: tuple[str, ...]
    verified: bool


@dataclass(frozen=True, slots=True)
class FileCheck(Report):
    """A loose file hashed: which records hold it, and whether it matches an expected hash."""

    file: str
    sha256: str
    expected_match: bool | None
    ok: bool
    records: tuple[ArtifactMatch, ...]


@dataclass(frozen=True, slots=True)
class WrittenFile(Report):
    """An artifact copied out byte-exact."""

    file: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class KeyReport(Report):
    """A key in the store: the signing key or a trusted public key."""

    key_id: str
    trusted: bool
    signing: bool = False
    encrypted: bool = False
    path: str | None = None


@dataclass(frozen=True, slots=True)
class Settings(Report):
    """Settings by name (``config get`` / ``config list``)."""

    values: dict[str, str | int | float | bool | list[str] | None] = field(default_factory=dict, metadata=FLATTEN)


@dataclass(frozen=True, slots=True)
class SubmitReport(Report):
    """Capture jobs put in the queue by ``submit``."""

    submitted: int
    job_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class RequeueReport(Report):
    """Failed capture jobs put back in the queue by ``requeue``."""

    requeued: int
    job_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class StoreHold(Report):
    """An active legal hold as ``store info`` lists it: the matter, why, who placed it, how many records."""

    matter: str
    reason: str
    placed_by: str
    placed_at: str
    records: int


@dataclass(frozen=True, slots=True)
class StoreInfo(Report):
    """Where a store keeps its parts, how many records it holds, and its active legal holds."""

    store: str
    catalog: str
    catalog_location: str
    custody: str
    blobs: str
    object_lock: str | None
    retain: str | None
    legal_hold: bool
    records: int
    holds: tuple[StoreHold, ...] = ()


@dataclass(frozen=True, slots=True)
class CountReport(Report):
    """A maintenance step and how many records it touched (``store rebuild-index``)."""

    records: int


@dataclass(frozen=True, slots=True)
class RebuildReport(Report):
    """``store rebuild-index``: what the catalog was rebuilt from. ``newer`` lists the blobs holding a
    signed document of a format newer than this release (by schema and kind): they are not indexed by
    this version, and are named here so nothing vanishes without a word."""

    records: int
    addenda: int
    newer: tuple[str, ...] = ()
    #: manifest blobs no custody entry commits (a capture killed before its entry, or signed again
    #: because its chain moved): signed but never records, so not indexed
    uncommitted: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RecordPage(Report):
    """One page of records, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: tuple[RecordSummary, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class JobAccepted(Report):
    """A capture job was queued; poll ``status_url``."""

    job: str
    status: str
    status_url: str


@dataclass(frozen=True, slots=True)
class MatchVerification(Report):
    """A record holding the uploaded bytes, and whether that record verifies now."""

    record_id: str
    artifact: str
    url: str
    captured_at: str
    verified: bool
    failed_checks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FileVerification(Report):
    """An uploaded file: its hash and size, and every record that holds exactly these bytes."""

    filename: str | None
    sha256: str
    size: int
    matches: tuple[MatchVerification, ...]



__all__ = [
    "AddendumEntry",
    "BatchStampLine",
    "BatchWaybackLine",
    "BundleReport",
    "CaptureReport",
    "CitationReport",
    "CountReport",
    "ExportReport",
    "FileCheck",
    "FileVerification",
    "ImportReport",
    "InitReport",
    "JobAccepted",
    "KeyReport",
    "MatchVerification",
    "QuoteReport",
    "RecordPage",
    "RecordReport",
    "RequeueReport",
    "Settings",
    "StoreHold",
    "StoreInfo",
    "SubmitReport",
    "WaybackReport",
    "WrittenFile",
]
