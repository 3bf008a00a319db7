"""Every check on a stored record, one report. Checks never stop at the first failure: each
question gets PASS, FAIL or SKIPPED with the reason, and the caller decides what to do."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from archiver.capture.decode import decode_stream
from archiver.errors import ArchiverError
from archiver.provenance.keys import load_public_pem
from archiver.provenance.signing import signature_valid
from archiver.records import Check, Manifest, RecordSummary, Status, Verification

if TYPE_CHECKING:
    from archiver.api import Archive

PASS, FAIL, SKIP = Status.PASS, Status.FAIL, Status.SKIPPED


class _HashSink:
    def __init__(self) -> None:
        self.h = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.h.update(data)
        return len(data)

    def flush(self) -> None:
        return None


def verify_record(archive: Archive, summary: RecordSummary) -> Verification:
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
        checks.append(_custody_chain(archive))
        return Verification(rid, tuple(checks))

    mismatches = [f for f, a, b in (("record_id", manifest.record_id, rid), ("url", manifest.subject.url, summary.url),
                                    ("content_sha256", manifest.digests.content_sha256, summary.content_sha256))
                  if a != b]
    checks.append(Check("manifest.schema", FAIL if mismatches else PASS,
                        f"catalog disagrees with manifest on {', '.join(mismatches)}" if mismatches
                        else manifest.schema))

    checks.extend(_signature_checks(archive, manifest))
    checks.extend(_artifact_checks(archive, manifest))
    checks.extend(_warc_checks(archive, manifest))
    checks.append(_custody_chain(archive))
    checks.append(_custody_record(archive, rid, summary.manifest_sha256))
    if manifest.previous is not None:
        prev = archive.catalog.get(manifest.previous.record_id)
        if prev is None:
            checks.append(Check("previous", FAIL, f"previous record {manifest.previous.record_id} is not in the store"))
        elif prev.manifest_sha256 != manifest.previous.manifest_sha256:
            checks.append(Check("previous", FAIL, f"previous record {prev.record_id} has a different manifest"))
        else:
            checks.append(Check("previous", PASS, f"chains to {prev.record_id}"))
    return Verification(rid, tuple(checks))


def _signature_checks(archive: Archive, manifest: Manifest) -> list[Check]:
    sig = manifest.signature
    if sig is None:
        return [Check("manifest.signature", FAIL, "manifest is not signed"),
                Check("signer.trusted", FAIL, "no signer")]
    trusted = archive.keys.trusted()
    key = trusted.get(sig.key_id)
    if key is None:
        blob = archive.catalog.signer_key_blob(sig.key_id)
        if blob is not None:
            try:
                key = load_public_pem(archive.blobs.read_bytes(blob))
            except ArchiverError:
                key = None
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


def _artifact_checks(archive: Archive, manifest: Manifest) -> list[Check]:
    out = []
    for art in manifest.artifacts:
        name = f"artifact.{art.name}"
        if not archive.blobs.exists(art.sha256):
            out.append(Check(name, FAIL, f"blob sha256:{art.sha256} is missing"))
            continue
        actual, size = archive.blobs.rehash(art.sha256)
        if actual != art.sha256:
            out.append(Check(name, FAIL, f"bytes hash to sha256:{actual}, manifest says sha256:{art.sha256}"))
        elif size != art.size:
            out.append(Check(name, FAIL, f"size {size}, manifest says {art.size}"))
        else:
            out.append(Check(name, PASS, f"sha256:{actual} ({size:,} bytes)"))
    return out


def _warc_checks(archive: Archive, manifest: Manifest) -> list[Check]:
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    warc = manifest.artifact("warc")
    names = ("warc.records", "warc.payload", "content.derivation")
    if warc is None or not archive.blobs.exists(warc.sha256):
        return [Check(n, SKIP, "no WARC in the store") for n in names]
    problems: list[str] = []
    count = 0
    final_payload: str | None = None
    derived: str | None = None
    text_digest: str | None = None
    content = manifest.artifact("content")
    enc = manifest.http.content_encoding
    try:
        with archive.blobs.open(warc.sha256) as fh:
            for record in ArchiveIterator(fh, check_digests=True):
                count += 1
                rtype = record.rec_type
                uri = record.rec_headers.get_header("WARC-Target-URI")
                if rtype == "response" and uri == manifest.subject.final_url:
                    final_payload = record.rec_headers.get_header("WARC-Payload-Digest")
                    sink = _HashSink()
                    try:
                        cap = max(content.size if content else 0, 1) + 1
                        decode_stream(record.raw_stream, cast(BinaryIO, sink), enc, cap)
                        derived = sink.h.hexdigest()
                    except ArchiverError as exc:
                        derived = f"undecodable: {exc.message}"
                elif rtype == "conversion":
                    text_digest = hashlib.sha256(record.content_stream().read()).hexdigest()
                else:
                    _drain(record.content_stream())
                _drain(record.raw_stream)
                checker: Any = record.digest_checker
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
    return out


def _drain(stream: Any) -> None:
    while stream.read(1 << 20):
        pass


def _custody_chain(archive: Archive) -> Check:
    report = archive.custody.verify_chain()
    if report.ok:
        return Check("custody.chain", PASS, f"{report.entries} entries, unbroken")
    return Check("custody.chain", FAIL, "; ".join(report.problems[:5]))


def _custody_record(archive: Archive, record_id: str, manifest_sha: str) -> Check:
    for entry in archive.custody.for_record(record_id):
        if entry.event == "capture":
            if entry.subject_sha256 == manifest_sha:
                return Check("custody.record", PASS, f"captured {entry.time} by {entry.actor}")
            return Check("custody.record", FAIL, "custody log names a different manifest for this record")
    return Check("custody.record", FAIL, "no capture entry for this record in the custody log")
