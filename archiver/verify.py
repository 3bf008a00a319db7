"""Every check on a stored record, one report. Checks never stop at the first failure: each
question gets PASS, FAIL or SKIPPED with the reason, and the caller decides what to do."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from archiver.decode import decode_stream
from archiver.errors import ArchiverError
from archiver.provenance.keys import load_public_pem
from archiver.provenance.signing import addendum_signature_valid, signature_valid
from archiver.records import (
    Addendum,
    Check,
    DerivedText,
    Manifest,
    RecordSummary,
    Status,
    TimestampEvidence,
    Verification,
)

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from archiver.ports import WaybackWitness
    from store.custody import ChainReport

PASS, FAIL, SKIP = Status.PASS, Status.FAIL, Status.SKIPPED


class _HashSink:
    def __init__(self, tee: BinaryIO | None = None) -> None:
        self.h = hashlib.sha256()
        self.tee = tee

    def write(self, data: bytes) -> int:
        self.h.update(data)
        if self.tee is not None:
            self.tee.write(data)
        return len(data)

    def flush(self) -> None:
        return None


def verify_record(archive: WaybackWitness, summary: RecordSummary, *, wayback: bool = False,
                  chain: ChainReport | None = None) -> Verification:
    checks: list[Check] = []
    rid = summary.record_id

    # 1. the manifest blob is the one the catalog names
    manifest: Manifest | None = None
    try:
        actual, _ = archive.blobs.rehash(summary.manifest_sha256)
    except FileNotFoundError:
        checks.append(Check("manifest.hash", FAIL, f"manifest blob sha256:{summary.manifest_sha256} is missing"))
        actual = None
    if actual is not None:
        if actual == summary.manifest_sha256:
            checks.append(Check("manifest.hash", PASS, f"sha256:{actual}"))
        else:
            checks.append(Check("manifest.hash", FAIL,
                                f"manifest bytes hash to sha256:{actual}, expected sha256:{summary.manifest_sha256}"))
        try:
            manifest = Manifest.from_dict(json.loads(archive.blobs.read_bytes(summary.manifest_sha256)))
        except (ValueError, ArchiverError) as exc:
            checks.append(Check("manifest.schema", FAIL, f"manifest unreadable: {exc}"))
    if manifest is None:
        checks.append(Check("manifest.signature", SKIP, "no readable manifest"))
        checks.append(_custody_chain(archive, chain))
        return Verification(rid, tuple(checks))

    mismatches = [f for f, a, b in (("record_id", manifest.record_id, rid), ("url", manifest.subject.url, summary.url),
                                    ("content_sha256", manifest.digests.content_sha256, summary.content_sha256))
                  if a != b]
    checks.append(Check("manifest.schema", FAIL if mismatches else PASS,
                        f"catalog disagrees with manifest on {', '.join(mismatches)}" if mismatches
                        else manifest.schema))

    checks.extend(_signature_checks(archive, manifest))
    warc_art = manifest.artifact("warc")
    if warc_art is None or not archive.blobs.exists(warc_art.sha256):
        checks.extend(_artifact_checks(archive, manifest))
        checks.extend(Check(n, SKIP, "no WARC in the store") for n in ("warc.records", "warc.payload",
                                                                        "content.derivation"))
    else:
        # one read of the WARC serves both its artifact hash and the record-by-record checks
        reader: list[_HashingReader] = []

        @contextmanager
        def open_hashed() -> Iterator[BinaryIO]:
            with archive.blobs.open(warc_art.sha256) as raw:
                wrapped = _HashingReader(raw)
                reader.append(wrapped)
                yield cast(BinaryIO, wrapped)
                wrapped.drain()

        # the other artifacts hash on a second thread meanwhile (hashlib and file reads release the GIL)
        others = _Background(lambda: _artifact_checks(archive, manifest, "warc"))
        record_checks = warc_checks(open_hashed, manifest)
        checks.append(_hash_check("artifact.warc", warc_art.sha256, warc_art.size, reader[0].h.hexdigest(),
                                  reader[0].n))
        checks.extend(others.result())
        checks.extend(record_checks)
    # the token must cover the manifest bytes actually present, not just the catalog's claim
    checks.extend(_timestamp_checks(archive, manifest, actual or summary.manifest_sha256))
    checks.extend(_wayback_checks(archive, manifest, actual or summary.manifest_sha256, requery=wayback))
    checks.extend(_derived_checks(archive, manifest, actual or summary.manifest_sha256))
    checks.append(_custody_chain(archive, chain))
    checks.append(_custody_record(archive, rid, summary.manifest_sha256))
    retention = _retention_check(archive, manifest, summary.manifest_sha256)
    if retention is not None:
        checks.append(retention)
    if manifest.previous is not None:
        prev = archive.catalog.get(manifest.previous.record_id)
        if prev is None:
            checks.append(Check("previous", FAIL, f"previous record {manifest.previous.record_id} is not in the store"))
        elif prev.manifest_sha256 != manifest.previous.manifest_sha256:
            checks.append(Check("previous", FAIL, f"previous record {prev.record_id} has a different manifest"))
        else:
            checks.append(Check("previous", PASS, f"chains to {prev.record_id}"))
    return Verification(rid, tuple(checks))


def _signer_key(archive: WaybackWitness, key_id: str) -> Ed25519PublicKey | None:
    key = archive.keys.trusted().get(key_id)
    if key is None:
        blob = archive.catalog.signer_key_blob(key_id)
        if blob is not None:
            try:
                key = load_public_pem(archive.blobs.read_bytes(blob))
            except (ArchiverError, OSError):
                key = None
    return key


def _signature_checks(archive: WaybackWitness, manifest: Manifest) -> list[Check]:
    sig = manifest.signature
    if sig is None:
        return [Check("manifest.signature", FAIL, "manifest is not signed"),
                Check("signer.trusted", FAIL, "no signer")]
    trusted = archive.keys.trusted()
    key = _signer_key(archive, sig.key_id)
    if key is None:
        sig_check = Check("manifest.signature", FAIL, f"public key {sig.key_id} is not known to this store")
    elif signature_valid(manifest, key):
        sig_check = Check("manifest.signature", PASS, f"Ed25519 by {sig.key_id}")
    else:
        sig_check = Check("manifest.signature", FAIL, f"signature does not verify with {sig.key_id}")
    if sig.key_id in trusted:
        trust = Check("signer.trusted", PASS, f"{sig.key_id} is in the keyring")
    else:
        trust = Check("signer.trusted", FAIL, f"signed by an untrusted key {sig.key_id}; "
                                              "trust it with `archiver keys trust PUBKEY.pem` if you know it")
    return [sig_check, trust]


class _HashingReader:
    """A read-only stream that hashes what passes through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.h = hashlib.sha256()
        self.n = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.h.update(data)
        self.n += len(data)
        return data

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def _hash_check(name: str, expected: str, expected_size: int, actual: str, size: int) -> Check:
    if actual != expected:
        return Check(name, FAIL, f"bytes hash to sha256:{actual}, manifest says sha256:{expected}")
    if size != expected_size:
        return Check(name, FAIL, f"size {size}, manifest says {expected_size}")
    return Check(name, PASS, f"sha256:{actual} ({size:,} bytes)")


class _Background:
    """One call on another thread, its result or exception collected later (a thread pool's import
    and machinery cost more start-up time than the one extra thread ``verify`` needs)."""

    def __init__(self, fn: Callable[[], list[Check]]) -> None:
        self._fn = fn
        self._out: list[Check] = []
        self._exc: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._out = self._fn()
        except BaseException as exc:  # re-raised in the caller's thread by result()
            self._exc = exc

    def result(self) -> list[Check]:
        self._thread.join()
        if self._exc is not None:
            raise self._exc
        return self._out


def _retention_check(archive: WaybackWitness, manifest: Manifest, manifest_sha: str) -> Check | None:
    """On an Object Lock store: is every blob of the record still locked, and until when?"""
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
        return Check("store.retention", FAIL, f"not under {want} Object Lock: " + ", ".join(unlocked))
    return Check("store.retention", PASS, f"{len(until)} objects under {want} Object Lock until at least "
                                          f"{min(until).date().isoformat()}")


def _artifact_checks(archive: WaybackWitness, manifest: Manifest, skip: str = "") -> list[Check]:
    out = []
    for art in manifest.artifacts:
        if art.name == skip:
            continue
        name = f"artifact.{art.name}"
        if not archive.blobs.exists(art.sha256):
            out.append(Check(name, FAIL, f"blob sha256:{art.sha256} is missing"))
            continue
        actual, size = archive.blobs.rehash(art.sha256)
        out.append(_hash_check(name, art.sha256, art.size, actual, size))
    return out


def warc_checks(open_warc: Callable[[], AbstractContextManager[BinaryIO]], manifest: Manifest,
                content_out: BinaryIO | None = None) -> list[Check]:
    """Every WARC record's digests, the final payload's digest, and that decoding it gives the
    content artifact (written to ``content_out`` too, so an import can restore it). Works on any
    byte source: a store blob or a member of a bundle."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    _fast_inflate()
    problems: list[str] = []
    count = 0
    final_payload: str | None = None
    derived: str | None = None
    text_digest: str | None = None
    main_digest: str | None = None
    content = manifest.artifact("content")
    enc = manifest.http.content_encoding
    try:
        with open_warc() as fh:
            for record in ArchiveIterator(fh, check_digests=True, block_size=1 << 20):
                count += 1
                rtype = record.rec_type
                uri = record.rec_headers.get_header("WARC-Target-URI")
                if rtype == "response" and uri == manifest.subject.final_url:
                    final_payload = record.rec_headers.get_header("WARC-Payload-Digest")
                    if content_out is None and content is not None and not enc and not manifest.http.transfer_encoding \
                            and final_payload == f"sha256:{content.sha256}":
                        # identity body: the content IS the payload, whose digest warcio checks below
                        # as it reads; hashing it a second time would prove nothing more
                        derived = content.sha256
                        _drain(record.raw_stream)
                        checker: Any = record.digest_checker
                        if checker.passed is False:
                            problems.append(f"record {count} ({rtype} {uri or ''}): {'; '.join(checker.problems)}")
                        continue
                    sink = _HashSink(content_out)
                    try:
                        cap = max(content.size if content else 0, 1) + 1
                        decode_stream(record.raw_stream, cast(BinaryIO, sink), enc, cap)
                        derived = sink.h.hexdigest()
                    except ArchiverError as exc:
                        derived = f"undecodable: {exc.message}"
                elif rtype == "conversion":
                    digest = hashlib.sha256(record.content_stream().read()).hexdigest()
                    if (record.rec_headers.get_header("Content-Type") or "").startswith("text/markdown"):
                        main_digest = digest
                    else:
                        text_digest = digest
                else:
                    _drain(record.content_stream())
                _drain(record.raw_stream)
                checker = record.digest_checker
                if checker.passed is False:
                    problems.append(f"record {count} ({rtype} {uri or ''}): {'; '.join(checker.problems)}")
    except (ArchiveLoadFailed, OSError, EOFError, ValueError) as exc:
        shown = "".join(c if c.isprintable() and ord(c) < 127 else "?" for c in str(exc))[:120]
        problems.append(f"WARC unreadable after {count} record(s): {shown}")
    out = [Check("warc.records", FAIL if problems or count == 0 else PASS,
                 "; ".join(problems) if problems else f"{count} records, all block/payload digests match")]
    expected = f"sha256:{manifest.digests.payload_sha256}"
    if final_payload is None:
        out.append(Check("warc.payload", FAIL, f"no response record for {manifest.subject.final_url}"))
    elif final_payload != expected:
        out.append(Check("warc.payload", FAIL, f"WARC payload digest {final_payload} != manifest {expected}"))
    else:
        out.append(Check("warc.payload", PASS, expected))
    if content is None:
        out.append(Check("content.derivation", SKIP, "no content artifact"))
    elif derived == content.sha256:
        out.append(Check("content.derivation", PASS, "decoding the WARC payload gives the content artifact"))
    else:
        out.append(Check("content.derivation", FAIL,
                         f"decoding the WARC payload gives {derived or 'nothing'}, content is sha256:{content.sha256}"))
    text = manifest.artifact("text")
    if text is not None:
        if text_digest == text.sha256:
            out.append(Check("warc.text", PASS, "the WARC conversion record holds the text artifact"))
        else:
            out.append(Check("warc.text", FAIL, "the WARC conversion record differs from the text artifact"))
    main = manifest.artifact("main-text")
    if main is not None:
        if main_digest == main.sha256:
            out.append(Check("warc.main-text", PASS, "the WARC conversion record holds the main-text artifact"))
        else:
            out.append(Check("warc.main-text", FAIL, "the WARC conversion record differs from the main-text artifact"))
    return out


def _fast_inflate() -> None:
    """Let warcio inflate gzip members with ISA-L (about twice zlib's speed); same bytes out."""
    try:
        from isal import isal_zlib
    except ImportError:  # pragma: no cover - isal is a dependency
        return
    from warcio.bufferedreaders import BufferedReader

    BufferedReader.DECOMPRESSORS["gzip"] = lambda: isal_zlib.decompressobj(16 + isal_zlib.MAX_WBITS)


def _drain(stream: Any) -> None:
    while stream.read(1 << 20):
        pass


def _custody_chain(archive: WaybackWitness, report: ChainReport | None = None) -> Check:
    """``report`` lets ``verify --all`` walk the (whole) custody log once, not once per record."""
    report = report or archive.custody.verify_chain()
    if report.ok:
        return Check("custody.chain", PASS, f"{report.entries} entries, unbroken")
    return Check("custody.chain", FAIL, "; ".join(report.problems[:5]))


def _custody_record(archive: WaybackWitness, record_id: str, manifest_sha: str) -> Check:
    for entry in archive.custody.for_record(record_id):
        if entry.event in ("capture", "import", "import-forced"):
            if entry.subject_sha256 != manifest_sha:
                return Check("custody.record", FAIL, "custody log names a different manifest for this record")
            if entry.event == "capture":
                return Check("custody.record", PASS, f"captured {entry.time} by {entry.actor}")
            forced = " (FORCED past failed checks)" if entry.event == "import-forced" else ""
            return Check("custody.record", PASS, f"imported {entry.time} by {entry.actor} from "
                                                 f"{entry.detail.get('bundle', 'a bundle')}{forced}")
    return Check("custody.record", FAIL, "no capture or import entry for this record in the custody log")


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _fmt_delta(seconds: float) -> str:
    s = abs(seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def addendum_check(name: str, addendum: Addendum | None, data_ok: bool, manifest_sha256: str, record_id: str,
                   key: Ed25519PublicKey | None, trusted: bool) -> Check:
    """Is this addendum the signed, unaltered statement it claims to be, about this record?"""
    if addendum is None or not data_ok:
        return Check(name, FAIL, "addendum is missing, altered or unreadable")
    if addendum.manifest_sha256 != manifest_sha256 or addendum.record_id != record_id:
        return Check(name, FAIL, "addendum names a different record or manifest")
    sig = addendum.signature
    if sig is None:
        return Check(name, FAIL, "addendum is not signed")
    if key is None:
        return Check(name, FAIL, f"addendum signer {sig.key_id} is not known")
    if not addendum_signature_valid(addendum, key):
        return Check(name, FAIL, f"addendum signature does not verify with {sig.key_id}")
    if not trusted:
        return Check(name, FAIL, f"addendum signed by an untrusted key {sig.key_id}")
    return Check(name, PASS, f"signed by {sig.key_id}, {addendum.created_at}")


def token_checks(prefix: str, ev: TimestampEvidence, *, manifest_sha256: str, captured_at: str,
                 token: bytes | None, stored_chain: bytes | None, anchors: list[x509.Certificate],
                 tolerance: float, deferred: bool) -> list[Check]:
    """Checks of one RFC 3161 token from bytes alone, so a bundle verifier can run them too."""
    from archiver.provenance import merkle, tsp

    checks: list[Check] = []
    # What the token must stamp: the manifest itself, or the batch root its proof leads to.
    if ev.merkle is None:
        expected = bytes.fromhex(manifest_sha256)
    else:
        mk = ev.merkle
        ok = merkle.verify_inclusion(bytes.fromhex(manifest_sha256), mk.leaf_index, mk.tree_size,
                                     [bytes.fromhex(p) for p in mk.path], bytes.fromhex(mk.root))
        checks.append(Check(f"{prefix}.merkle", PASS if ok else FAIL,
                            f"manifest is leaf {mk.leaf_index + 1} of {mk.tree_size} under root {mk.root[:16]}…"
                            if ok else "inclusion proof does not lead from this manifest to the batch root"))
        expected = hashlib.sha256(bytes.fromhex(mk.root)).digest()
    if stored_chain is None or hashlib.sha256(stored_chain).hexdigest() != ev.chain_sha256:
        checks.append(Check(f"{prefix}.chain", FAIL, f"the TSA chain the addendum names (sha256:"
                                                     f"{ev.chain_sha256[:16]}…) is missing or altered"))
    else:
        checks.append(Check(f"{prefix}.chain", PASS, f"sha256:{ev.chain_sha256}"))
    if token is None:
        checks.append(Check(f"{prefix}.token", FAIL, f"token blob sha256:{ev.token_sha256} is missing or altered"))
        return checks
    # The signed addendum names the token's sha256: this binds even the bytes CMS leaves unsigned.
    problems = [] if hashlib.sha256(token).hexdigest() == ev.token_sha256 else \
        [f"token bytes are not the sha256:{ev.token_sha256[:16]}… the addendum names"]
    try:
        resp = tsp.parse_response(token)
    except ArchiverError as exc:
        checks.append(Check(f"{prefix}.token", FAIL, "; ".join([*problems, exc.message])))
        return checks
    if resp.status != 0:
        checks.append(Check(f"{prefix}.token", FAIL, "; ".join([*problems, f"token status is {resp.status}, "
                                                                "not granted"])))
        return checks
    info = tsp.info(resp)
    if bytes.fromhex(info.imprint_hex) != expected:
        problems.append(f"token stamps {info.imprint_hex}, not this record's "
                        f"{'batch root' if ev.merkle else 'manifest'} ({expected.hex()})")
        checks.append(Check(f"{prefix}.token", FAIL, "; ".join(problems)))
        return checks
    checks.append(Check(f"{prefix}.token", FAIL if problems else PASS,
                        "; ".join(problems) or f"imprint {info.imprint_hex[:16]}…, serial {info.serial}"))

    why = tsp.verify_against(resp, expected, anchors) if anchors else "no TSA trust anchors configured (tsa.certs)"
    if why is None:
        checks.append(Check(f"{prefix}.tsa", PASS, f"{info.tsa_name}: signature, chain to tsa.certs at genTime, "
                            "critical timeStamping EKU"))
    else:
        own = tsp.load_certs(stored_chain) if stored_chain else []
        intact = own and tsp.verify_against(resp, expected, own) is None
        if intact:
            checks.append(Check(f"{prefix}.tsa", FAIL, f"token is intact but its TSA ({info.tsa_name}) is not "
                                f"trusted here: {why}; add its CA with `archiver config set tsa.certs FILE`"))
        elif not anchors and not any(c.issuer == c.subject for c in own):
            checks.append(Check(f"{prefix}.tsa", FAIL, f"TSA ({info.tsa_name}) is not trusted here: {why}; its "
                                "signature cannot be checked without its CA certificate"))
        else:
            checks.append(Check(f"{prefix}.tsa", FAIL, f"token does not verify: {why}"))

    gen = info.gen_time
    try:
        delta = (gen - _parse_time(captured_at)).total_seconds()
    except ValueError:
        checks.append(Check(f"{prefix}.time", FAIL, f"captured_at {captured_at!r} is not a time"))
        return checks
    when = f"genTime {gen.isoformat().replace('+00:00', 'Z')}"
    if delta < -60:
        checks.append(Check(f"{prefix}.time", FAIL, f"{when} is {_fmt_delta(delta)} BEFORE captured_at: "
                            "the capture clock was ahead or captured_at is wrong"))
    elif delta <= tolerance:
        checks.append(Check(f"{prefix}.time", PASS, f"{when}, {_fmt_delta(delta)} after captured_at "
                            f"(tolerance {_fmt_delta(tolerance)})"))
    elif deferred:
        checks.append(Check(f"{prefix}.time", PASS, f"{when}, {_fmt_delta(delta)} after captured_at: a deferred "
                            "stamp, proving the record existed by genTime (not at captured_at)"))
    else:
        checks.append(Check(f"{prefix}.time", FAIL, f"{when} is {_fmt_delta(delta)} after captured_at, beyond "
                            f"the tolerance of {_fmt_delta(tolerance)}"))
    return checks


def _timestamp_checks(archive: WaybackWitness, manifest: Manifest, manifest_sha256: str) -> list[Check]:
    rows = archive.catalog.addenda(manifest.record_id, "timestamp")
    if not rows:
        hint = "archiver timestamp --pending" if archive.tsa_configured() else "configure tsa.urls, then " \
               "archiver timestamp " + manifest.record_id
        return [Check("timestamp", SKIP, f"unstamped: no RFC 3161 token yet ({hint})")]
    from archiver.stamping import trust_anchors

    try:
        anchors = trust_anchors(archive)
    except ArchiverError as exc:
        return [Check("timestamp", FAIL, exc.message)]
    tolerance = float(archive.config.int_("tsa.tolerance"))
    checks: list[Check] = []
    for i, check, addendum in _signed_addenda(archive, manifest, manifest_sha256, "timestamp", rows):
        prefix = f"timestamp.{i}"
        checks.append(check)
        if addendum is None or addendum.timestamp is None:
            continue
        ev = addendum.timestamp
        checks.extend(token_checks(prefix, ev, manifest_sha256=manifest_sha256, captured_at=manifest.captured_at,
                                   token=_read_blob(archive, ev.token_sha256),
                                   stored_chain=_read_blob(archive, ev.chain_sha256), anchors=anchors,
                                   tolerance=tolerance, deferred=ev.deferred))
    return checks


def _read_blob(archive: WaybackWitness, sha: str) -> bytes | None:
    """The blob's bytes if present and intact, else None."""
    try:
        data = archive.blobs.read_bytes(sha)
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == sha else None


def _signed_addenda(archive: WaybackWitness, manifest: Manifest, manifest_sha256: str, kind: str,
                    rows: list[tuple[str, str]] | None = None) -> Iterator[tuple[int, Check, Addendum | None]]:
    """Each addendum of ``kind``, numbered from 1, with the check that it is a signed, unaltered
    statement about this record by a trusted key (``<kind>.<n>.addendum``)."""
    trusted = archive.keys.trusted()
    for i, (sha, _kind) in enumerate(archive.catalog.addenda(manifest.record_id, kind) if rows is None else rows, 1):
        data, add = _load_addendum(archive, sha)
        key_id = add.signature.key_id if add and add.signature else ""
        yield i, addendum_check(f"{kind}.{i}.addendum", add, data is not None, manifest_sha256, manifest.record_id,
                                _signer_key(archive, key_id) if key_id else None, key_id in trusted), add


def _load_addendum(archive: WaybackWitness, sha: str) -> tuple[bytes | None, Addendum | None]:
    data = _read_blob(archive, sha)
    if data is None:
        return None, None
    try:
        return data, Addendum.from_dict(json.loads(data))
    except (ValueError, ArchiverError):
        return data, None


def _wayback_checks(archive: WaybackWitness, manifest: Manifest, manifest_sha256: str, *, requery: bool) -> list[Check]:
    """Each Wayback addendum is checked like any signed statement; ``requery`` asks the Archive again."""
    rows = archive.catalog.addenda(manifest.record_id, "wayback")
    if not rows:
        return [Check("wayback", SKIP, "no Wayback Machine cross-link recorded (archiver wayback "
                                       f"{manifest.record_id})")] if requery else []
    checks: list[Check] = []
    latest: Addendum | None = None
    for _i, check, add in _signed_addenda(archive, manifest, manifest_sha256, "wayback", rows):
        if check.status is PASS and add is not None and add.wayback is not None and add.signature is not None:
            w = add.wayback
            check = Check(check.name, PASS, f"{w.verdict} ({w.snapshot_timestamp or 'no snapshot'}), checked "
                                            f"{w.checked_at}, signed by {add.signature.key_id}")
            if (w.our_digest and w.our_digest != manifest.digests.payload_sha1_b32) or (
                    w.our_digest_chunked and w.our_digest_chunked != manifest.digests.payload_sha1_b32_chunked):
                check = Check(check.name, FAIL, "addendum compares a digest that is not this record's payload")
            latest = add
        checks.append(check)
    if requery:
        if latest is None or latest.wayback is None:
            checks.append(Check("wayback.live", SKIP, "no readable Wayback addendum to re-check"))
        else:
            try:
                ok, detail = archive.wayback_still_there(latest.wayback)
            except ArchiverError as exc:
                checks.append(Check("wayback.live", SKIP, f"unknown: {exc.message}"))
            else:
                checks.append(Check("wayback.live", PASS if ok else FAIL, detail))
    return checks


def _derived_checks(archive: WaybackWitness, manifest: Manifest, manifest_sha256: str) -> list[Check]:
    """Artifacts derived later (``archiver derive``): signed, intact, and made again from the content."""
    checks: list[Check] = []
    content = manifest.artifact("content")
    for i, check, add in _signed_addenda(archive, manifest, manifest_sha256, "derived"):
        checks.append(check)
        if add is None or add.derived is None:
            continue
        source = _read_blob(archive, content.sha256) if content is not None else None
        checks.extend(derived_checks(f"derived.{i}", add.derived, manifest, _read_blob(archive, add.derived.sha256),
                                     source))
    return checks


def derived_checks(prefix: str, derived: DerivedText, manifest: Manifest, data: bytes | None,
                   source: bytes | None) -> list[Check]:
    """A derived artifact's bytes are the ones its addendum names, and making it again from the
    record's content with the same rules gives the same bytes (when this version has those rules)."""
    got = hashlib.sha256(data).hexdigest() if data is not None else None
    out = [Check(f"{prefix}.{derived.name}", PASS if got == derived.sha256 else FAIL,
                 f"sha256:{derived.sha256}" if got == derived.sha256 else "missing or altered")]
    content = manifest.artifact("content")
    if content is None or derived.source_sha256 != content.sha256:
        out.append(Check(f"{prefix}.derivation", FAIL, "derived from something that is not this record's content"))
        return out
    from archiver.capture import main_text_of
    from archiver.capture.maintext import CURRENT_EXTRACTORS, PDF_EXTRACTOR

    info = derived.main_text
    kind = "pdf" if info.extractor == PDF_EXTRACTOR else "html"  # the recorded rules say how it was made
    if info.extractor not in CURRENT_EXTRACTORS:
        out.append(Check(f"{prefix}.derivation", SKIP, f"made by {info.extractor}, which this version does not "
                                                       f"have ({', '.join(sorted(CURRENT_EXTRACTORS))})"))
    elif source is None or hashlib.sha256(source).hexdigest() != content.sha256:
        out.append(Check(f"{prefix}.derivation", SKIP, "the content is not available to derive it again"))
    else:
        again, _ = main_text_of(source, select=info.select, remove=info.remove, base_url=manifest.subject.final_url,
                                content_type=manifest.http.content_type, kind=kind)
        same = hashlib.sha256(again.encode("utf-8")).hexdigest() == derived.sha256
        out.append(Check(f"{prefix}.derivation", PASS if same else FAIL,
                         f"{info.method} rules on the content give the same {derived.name}" if same
                         else f"{info.method} rules on the content give a different {derived.name}"))
    return out
