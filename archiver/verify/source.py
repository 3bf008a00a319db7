"""Evidence sources: what the one verification suite (``checks.run_suite``) reads a record from.

A store record and a bundle record answer the same questions — the manifest's bytes, any bytes
named by their sha256 (artifacts, addenda, tokens, TSA chains, derived texts, carried custody),
the WARC as a stream, the record's addenda and custody entries, signer public keys and the trust
decision, whether the predecessor is present — so every check is written once. Bytes that cannot
be had come back as ``Absent``, which says whether they are missing (completeness) or there but
altered (integrity); a source never decides a verdict.
"""

from __future__ import annotations

import hashlib
import json
import sys
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Protocol

from archiver.errors import ArchiverError, StoreUnavailableError
from archiver.records import Category, Check, Manifest, RecordSummary, Status, Verification
from archiver.verify.artifacts import Absent, WarcLimits
from archiver.verify.trust import TrustDecision

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from archiver.ports import WaybackWitness
    from archiver.provenance.keys import Rotation
    from archiver.records import WaybackEvidence
    from store.custody import ChainReport, CustodyEntry

MISSING, ALTERED = Category.COMPLETENESS, Category.INTEGRITY


@dataclass(frozen=True, slots=True)
class AddendumRef:
    """One addendum of the record, in order: the sha256 its source names it by, and its kind when
    the source knows it without reading it (a catalog does; a bundle learns it from the bytes)."""

    sha256: str
    kind: str | None


class EvidenceSource(Protocol):
    """What a record is verified from. ``where`` completes "not in …" ("this store", "the bundle")."""

    record_id: str
    where: str
    trust: TrustDecision
    tolerance: float
    warc_limits: WarcLimits

    def manifest(self) -> tuple[bytes | Absent, str]:
        """The manifest's bytes as they are (the suite checks their hash) and the sha256 the index
        (catalog, datapackage) names it by."""
        ...

    def index_mismatches(self, manifest: Manifest) -> list[str]:
        """Fields on which the index disagrees with the manifest (empty when it agrees)."""
        ...

    def carries(self, artifact: str) -> bool:
        """Whether this form of the record holds the artifact as bytes of its own (a bundle holds
        content, main-text, screenshots… inside the WARC, which the WARC checks cover)."""
        ...

    def read(self, sha256: str) -> bytes | Absent: ...
    def rehash(self, sha256: str) -> tuple[str, int] | Absent: ...
    def open(self, sha256: str) -> AbstractContextManager[BinaryIO]: ...
    def addenda(self) -> list[AddendumRef]: ...
    def public_key(self, key_id: str) -> Ed25519PublicKey | None: ...
    def anchors(self) -> list[x509.Certificate]: ...
    def custody_entries(self) -> list[CustodyEntry] | Absent: ...

    def custody_file(self) -> bytes | None:
        """The custody entries as one file of lines, where they are one (a bundle's custody.jsonl,
        whose first lines are the custody its record's imports carried)."""
        ...

    def carried_custody(self, sha256: str) -> bytes | Absent:
        """The source bundle's custody lines an import kept as a blob, by the sha256 its entry names."""
        ...

    def custody_chain(self) -> Check | None:
        """The whole log's continuity, where there is a whole log (a store)."""
        ...

    def predecessor(self, record_id: str) -> str | None:
        """The manifest sha256 of ``record_id`` if this source holds it, else None."""
        ...

    def extra_checks(self, manifest: Manifest, manifest_sha256: str) -> list[Check]: ...
    def unstamped_hint(self) -> str: ...
    def wayback_still_there(self, evidence: WaybackEvidence) -> tuple[bool, str] | None:
        """Ask the Wayback Machine again (``verify --wayback``); None where no witness is at hand."""
        ...


_ENTRY_TYPES: dict[str, tuple[type, ...]] = {
    "seq": (int,), "time": (str,), "event": (str,), "actor": (str,), "record_id": (str, type(None)),
    "subject_sha256": (str, type(None)), "prev": (str,), "detail": (dict,), "hash": (str,)}


def parse_custody(data: bytes) -> list[CustodyEntry] | Absent:
    """A carried custody file (a bundle's, or one an import kept), read strictly: UTF-8, one JSON
    object a line, every field of its type. Its bytes are covered by the signed package, so a file
    that cannot be read is altered (integrity), said in one line. Strict because a lenient reading
    is a second reading: U+FFFD put in for a stray byte lets an entry's hash be computed over text
    the file does not hold, and a ``detail`` that is not an object broke the check itself."""
    from store.custody import CustodyEntry

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        at = data.count(b"\n", 0, exc.start) + 1
        return Absent(ALTERED, f"is unreadable: not UTF-8 (line {at}, byte {exc.start})")
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            return Absent(ALTERED, f"is unreadable at entry {n}: not JSON")
        if not isinstance(obj, dict):
            return Absent(ALTERED, f"is unreadable at entry {n}: not a JSON object")
        wrong = sorted(set(obj) ^ set(_ENTRY_TYPES) | {k for k, t in _ENTRY_TYPES.items()
                                                       if k in obj and (not isinstance(obj[k], t)
                                                                        or isinstance(obj[k], bool))})
        if wrong or not all(isinstance(k, str) and isinstance(v, str) for k, v in obj["detail"].items()):
            return Absent(ALTERED, f"is unreadable at entry {n}: missing, unexpected or mistyped fields "
                                   f"{', '.join(wrong) or 'detail'}")
        out.append(CustodyEntry(**obj))
    return out


def foreign_record_id(record_id: str, where: str) -> Verification | None:
    """A failed report for a record ID that is not in our form (``XXXX-XXXX``, Crockford base32), else
    None. Such an ID never comes from this software: it was signed by someone else's tool or written
    into ``where`` by hand, and it would become file names, catalog keys and terminal output; the
    record is failed here (integrity: the ID is there, just not one of ours), not checked further."""
    from archiver.provenance.ids import is_canonical_record_id

    if is_canonical_record_id(record_id):
        return None
    return Verification(record_id, (Check("record.id", Status.FAIL, ALTERED,
                                          f"record ID {json.dumps(record_id)} in {where} is not one this software "
                                          "issues (XXXX-XXXX, Crockford base32)"),))


class StoreSource:
    """A record in a store: blobs by sha256, the catalog as the index, the custody log, the keyring."""

    where = "this store"

    def __init__(self, archive: WaybackWitness, summary: RecordSummary, *, wayback: bool = False,
                 chain: ChainReport | None = None) -> None:
        from archiver.provenance.keys import ROTATION_TO, read_rotation

        self.archive = archive
        self.summary = summary
        self.record_id = summary.record_id
        self._wayback = wayback
        self._chain = chain
        self.tolerance = float(archive.config.int_("tsa.tolerance"))
        self.warc_limits = WarcLimits(archive.config.int_("verify.max_record_bytes"),
                                      archive.config.int_("verify.max_warc_bytes"),
                                      max_records=archive.config.int_("verify.max_warc_records"))
        keyring = archive.keys.trusted()
        self._keyring = keyring

        def rotations_to(key_id: str) -> list[Rotation]:  # holds the archive, not this source: no cycle
            sha = archive.catalog.signer_key_blob(ROTATION_TO + key_id)
            try:
                data = archive.blobs.read_bytes(sha) if sha else None
                return [read_rotation(data)] if data is not None and hashlib.sha256(data).hexdigest() == sha \
                    else []
            except (OSError, ArchiverError):
                return []

        self.trust = TrustDecision({k: "in this store's keyring" for k in keyring}, rotations_to)

    def manifest(self) -> tuple[bytes | Absent, str]:
        sha = self.summary.manifest_sha256
        try:
            return self.archive.blobs.read_bytes(sha), sha
        except StoreUnavailableError:
            raise  # the backend failed (S3 or PostgreSQL down, a read broken off): exit 4, not a verdict
        except (OSError, ArchiverError):
            return Absent(MISSING, f"(blob sha256:{sha}) is missing from this store"), sha

    def index_mismatches(self, manifest: Manifest) -> list[str]:
        s = self.summary
        return [f for f, a, b in (("record_id", manifest.record_id, s.record_id), ("url", manifest.subject.url, s.url),
                                  ("content_sha256", manifest.digests.content_sha256, s.content_sha256)) if a != b]

    def carries(self, artifact: str) -> bool:
        return True

    def read(self, sha256: str) -> bytes | Absent:
        try:
            data = self.archive.blobs.read_bytes(sha256)
        except StoreUnavailableError:
            raise  # not a missing blob: the backend failed, and no verdict can be given
        except (OSError, ArchiverError):
            return Absent(MISSING, f"(blob sha256:{sha256}) is missing from this store")
        if hashlib.sha256(data).hexdigest() != sha256:
            return Absent(ALTERED, f"(blob sha256:{sha256}) is altered in this store")
        return data

    def rehash(self, sha256: str) -> tuple[str, int] | Absent:
        if not self.archive.blobs.exists(sha256):
            return Absent(MISSING, f"blob sha256:{sha256} is missing")
        try:
            return self.archive.blobs.rehash(sha256)
        except FileNotFoundError:
            return Absent(MISSING, f"blob sha256:{sha256} is missing")

    def open(self, sha256: str) -> AbstractContextManager[BinaryIO]:
        return self.archive.blobs.open(sha256)

    def addenda(self) -> list[AddendumRef]:
        return [AddendumRef(sha, kind) for sha, kind in self.archive.catalog.addenda(self.record_id)]

    def public_key(self, key_id: str) -> Ed25519PublicKey | None:
        from archiver.provenance.keys import load_public_pem

        key = self._keyring.get(key_id)
        if key is None:
            blob = self.archive.catalog.signer_key_blob(key_id)
            data = self.read(blob) if blob is not None else None
            if isinstance(data, bytes):
                try:
                    key = load_public_pem(data)
                except ArchiverError:
                    key = None
        return key

    def anchors(self) -> list[x509.Certificate]:
        from archiver.stamping import trust_anchors

        return trust_anchors(self.archive)

    def custody_entries(self) -> list[CustodyEntry] | Absent:
        return list(self.archive.custody.for_record(self.record_id))

    def custody_file(self) -> bytes | None:
        return None

    def carried_custody(self, sha256: str) -> bytes | Absent:
        return self.read(sha256)

    def custody_chain(self) -> Check | None:
        report = self._chain or self.archive.ledger.audit(self.archive.custody.verify_chain())
        if report.ok:
            return Check("custody.chain", Status.PASS, ALTERED, f"{report.entries} entries, unbroken")
        return Check("custody.chain", Status.FAIL, ALTERED, "; ".join(report.problems[:5]))

    def predecessor(self, record_id: str) -> str | None:
        prev = self.archive.catalog.get(record_id)
        return prev.manifest_sha256 if prev is not None else None

    def extra_checks(self, manifest: Manifest, manifest_sha256: str) -> list[Check]:
        from archiver.verify.logproof import store_inclusion

        check = _retention_check(self.archive, manifest, manifest_sha256)
        return ([check] if check is not None else []) + [
            store_inclusion(self.archive.log, self.record_id, manifest_sha256).check()]

    def unstamped_hint(self) -> str:
        rid = self.record_id
        return "archiver timestamp --pending" if self.archive.tsa_configured() else \
            f"configure tsa.urls, then archiver timestamp {rid}"

    def wayback_still_there(self, evidence: WaybackEvidence) -> tuple[bool, str] | None:
        return self.archive.wayback_still_there(evidence) if self._wayback else None

    @property
    def requery_wayback(self) -> bool:
        return self._wayback


def _retention_check(archive: WaybackWitness, manifest: Manifest, manifest_sha: str) -> Check | None:
    """On an Object Lock store: is every blob of the record still locked, and until when? An unlocked
    blob is intact now but no longer vouched for by the store's retention: a trust failure."""
    from datetime import UTC, datetime

    blobs = archive.blobs
    s3 = sys.modules.get("store.s3")  # not imported: the store cannot be on S3 (and `verify` skips ~2 ms)
    if s3 is None or not isinstance(blobs, s3.S3BlobStore) or not blobs.settings.object_lock:
        return None
    want = blobs.settings.object_lock.upper()
    now = datetime.now(UTC)
    unlocked: list[str] = []
    until: list[datetime] = []
    for name, sha in [(a.name, a.sha256) for a in manifest.artifacts] + [("manifest", manifest_sha)]:
        try:
            mode, retain, _hold = blobs.retention(sha)
        except ArchiverError:
            unlocked.append(f"{name} (missing)")
            continue
        if mode != want or retain is None or retain <= now:
            unlocked.append(f"{name} ({mode or 'no lock'})")
        else:
            until.append(retain)
    if unlocked:
        return Check("store.retention", Status.FAIL, Category.TRUST,
                     f"not under {want} Object Lock: " + ", ".join(unlocked))
    return Check("store.retention", Status.PASS, Category.TRUST,
                 f"{len(until)} objects under {want} Object Lock until at least {min(until).date().isoformat()}")


__all__ = ["AddendumRef", "EvidenceSource", "StoreSource", "foreign_record_id", "parse_custody"]
