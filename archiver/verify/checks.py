"""The one verification suite: every check of one record, from any evidence source (a store record,
a bundle record). Checks never stop at the first failure: each question gets PASS, FAIL or SKIPPED
with the reason and its category, and the verdict follows from those alone (``records.Verdict``).

Order: manifest (hash, schema), signatures and signer trust, artifacts and the WARC (read once),
timestamps, Wayback cross-links, derived artifacts, custody, source-specific checks (Object Lock),
the predecessor (context: a record whose predecessor is absent is complete as a record).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, BinaryIO, cast

from archiver.errors import ArchiverError, UnknownFormatError
from archiver.records import Addendum, Category, Check, Manifest, Status, Verification
from archiver.verify.artifacts import Absent, _HashingReader, derived_checks, token_checks, warc_checks
from archiver.verify.custody import custody_record_check
from archiver.verify.source import EvidenceSource
from archiver.verify.trust import short

if TYPE_CHECKING:
    from cryptography import x509

PASS, FAIL, SKIP = Status.PASS, Status.FAIL, Status.SKIPPED
INTEGRITY, TRUST, COMPLETENESS, CONTEXT = (Category.INTEGRITY, Category.TRUST, Category.COMPLETENESS,
                                          Category.CONTEXT)


def run_suite(src: EvidenceSource) -> Verification:
    checks: list[Check] = []
    rid = src.record_id
    data, msha = src.manifest()
    if isinstance(data, Absent):
        checks.append(Check("manifest.hash", FAIL, data.category, f"the manifest {data.why}"))
        checks.append(Check("manifest.signature", SKIP, INTEGRITY, "no readable manifest"))
        chain = src.custody_chain()
        return Verification(rid, tuple(checks + ([chain] if chain else [])))
    actual = hashlib.sha256(data).hexdigest()
    if actual == msha:
        checks.append(Check("manifest.hash", PASS, INTEGRITY, f"sha256:{msha}"))
    else:
        checks.append(Check("manifest.hash", FAIL, INTEGRITY, f"manifest bytes hash to sha256:{actual}, expected "
                                                              f"sha256:{msha}"))
    try:
        manifest = Manifest.from_dict(json.loads(data))
    except UnknownFormatError as exc:
        # a newer release's record: its signature is checked all the same (it covers whatever members its
        # signer wrote), so relabelling a forgery as newer cannot turn "tampered" into "incomplete"
        checks.append(raw_signature_check(src, "manifest.signature", data))
        checks.append(Check("manifest.schema", FAIL, COMPLETENESS, f"{exc.message}; this release cannot check it"))
        checks.extend(_custody_checks(src, msha))
        return Verification(rid, tuple(checks))
    except (ValueError, ArchiverError, RecursionError) as exc:
        # RecursionError: JSON nested deeper than the recursion limit (a bundle's cap on JSON depth)
        shown = "JSON nested too deeply" if isinstance(exc, RecursionError) else str(exc)  # no reference kept
        checks.append(Check("manifest.schema", FAIL, INTEGRITY, f"manifest unreadable: {shown}"))
        chain = src.custody_chain()
        return Verification(rid, tuple(checks + ([chain] if chain else [])))
    mismatches = src.index_mismatches(manifest)
    checks.append(Check("manifest.schema", FAIL if mismatches else PASS, INTEGRITY,
                        f"the index disagrees with the manifest on {', '.join(mismatches)}" if mismatches
                        else manifest.schema))
    addenda = _load_addenda(src)
    checks.extend(_signature_checks(src, manifest, [a for _, _, a in addenda if a is not None]))
    checks.extend(_artifact_and_warc_checks(src, manifest))
    # addenda and tokens must cover the manifest bytes actually present, not just the index's claim
    checks.extend(_addendum_checks(src, manifest, actual, addenda))
    checks.extend(_custody_checks(src, msha))
    checks.extend(src.extra_checks(manifest, msha))
    if manifest.previous is not None:
        checks.append(_previous_check(src, manifest))
    return Verification(rid, tuple(checks))


# ---- signatures and trust ------------------------------------------------------------------------------
def raw_signature_check(src: EvidenceSource, name: str, data: bytes) -> Check:
    """The Ed25519 signature of a signed JSON document read as it is stored (RFC 8785 of the object
    without ``signature``): what a reader checks on a document whose format it does not know."""
    import base64

    from cryptography.exceptions import InvalidSignature

    from archiver.canonical import canonical

    try:
        doc = json.loads(data)
        sig = doc.pop("signature")
        key_id, alg, value = str(sig["key_id"]), str(sig["alg"]), base64.b64decode(str(sig["value"]), validate=True)
    except (ValueError, KeyError, TypeError, AttributeError):
        return Check(name, FAIL, INTEGRITY, "the document is not signed")
    if alg != "Ed25519":
        # a newer release's algorithm: this release cannot check it, which is not evidence of damage
        return Check(name, FAIL, COMPLETENESS, f"signed with {alg!r}, which this release cannot check")
    key = src.public_key(key_id)
    if key is None:
        return Check(name, FAIL, COMPLETENESS, f"public key {key_id} is not in {src.where}")
    try:
        key.verify(value, canonical(doc))
    except (InvalidSignature, ValueError):
        return Check(name, FAIL, INTEGRITY, f"signature does not verify with {key_id}")
    return Check(name, PASS, INTEGRITY, f"Ed25519 by {key_id}")


def _signature_checks(src: EvidenceSource, manifest: Manifest, addenda: list[Addendum]) -> list[Check]:
    """The manifest's signature (integrity), and one trust check over every key that signed anything
    in the record: the manifest and each addendum (after a key rotation they differ)."""
    sig = manifest.signature
    if sig is None:
        return [Check("manifest.signature", FAIL, INTEGRITY, "manifest is not signed"),
                Check("signer.trusted", SKIP, TRUST, "no signer")]
    from archiver.provenance.signing import signature_valid

    key = src.public_key(sig.key_id)
    if key is None:
        out = [Check("manifest.signature", FAIL, COMPLETENESS, f"public key {sig.key_id} is not in {src.where}")]
    elif signature_valid(manifest, key):
        out = [Check("manifest.signature", PASS, INTEGRITY, f"Ed25519 by {sig.key_id}")]
    else:
        out = [Check("manifest.signature", FAIL, INTEGRITY, f"signature does not verify with {sig.key_id}")]
    signers = list(dict.fromkeys([sig.key_id] + [a.signature.key_id for a in addenda if a.signature is not None]))
    hows = {kid: src.trust.why(kid) for kid in signers}
    untrusted = [kid for kid, how in hows.items() if how is None]
    if untrusted:
        out.append(Check("signer.trusted", FAIL, TRUST,
                         f"signed by an untrusted key {', '.join(untrusted)}: the evidence carrying a key proves "
                         "nothing; trust it with `archiver keys trust PUBKEY.pem` (or --trust-key KEY_ID) if you "
                         "know it"))
    else:
        words = [f"{kid} is {hows[kid]}" if len(signers) == 1 else f"{short(kid)} {hows[kid]}" for kid in signers]
        out.append(Check("signer.trusted", PASS, TRUST, "; ".join(words)))
    return out


# ---- artifacts and the WARC ----------------------------------------------------------------------------
def _hash_check(name: str, expected: str, expected_size: int, got: tuple[str, int] | Absent) -> Check:
    if isinstance(got, Absent):
        return Check(name, FAIL, got.category, got.why)
    actual, size = got
    if actual != expected:
        return Check(name, FAIL, INTEGRITY, f"bytes hash to sha256:{actual}, manifest says sha256:{expected}")
    if size != expected_size:
        return Check(name, FAIL, INTEGRITY, f"size {size}, manifest says {expected_size}")
    return Check(name, PASS, INTEGRITY, f"sha256:{actual} ({size:,} bytes)")


def _artifact_checks(src: EvidenceSource, manifest: Manifest, skip: str = "") -> list[Check]:
    return [_hash_check(f"artifact.{a.name}", a.sha256, a.size, src.rehash(a.sha256))
            for a in manifest.artifacts if a.name != skip and src.carries(a.name)]


def _artifact_and_warc_checks(src: EvidenceSource, manifest: Manifest) -> list[Check]:
    warc_art = manifest.artifact("warc")
    got: tuple[str, int] | Absent = src.rehash(warc_art.sha256) if warc_art is not None else \
        Absent(Category.INTEGRITY, "the manifest names no WARC")
    if warc_art is None or isinstance(got, Absent):
        checks = _artifact_checks(src, manifest)
        if warc_art is None:
            checks.insert(0, Check("artifact.warc", FAIL, INTEGRITY, "the manifest names no WARC"))
        return checks + [Check(n, SKIP, COMPLETENESS, f"no WARC in {src.where}")
                         for n in ("warc.records", "warc.payload", "content.derivation")]
    # one read of the WARC serves both its artifact hash and the record-by-record checks
    reader: list[_HashingReader] = []

    @contextmanager
    def open_hashed() -> Iterator[BinaryIO]:
        with src.open(warc_art.sha256) as raw:
            wrapped = _HashingReader(raw)
            reader.append(wrapped)
            yield cast(BinaryIO, wrapped)
            wrapped.drain()

    # the other artifacts hash on a second thread meanwhile (hashlib and file reads release the GIL)
    others = _Background(lambda: _artifact_checks(src, manifest, "warc"))
    record_checks = warc_checks(open_hashed, manifest, limits=src.warc_limits)
    checks = [_hash_check("artifact.warc", warc_art.sha256, warc_art.size,
                          (reader[0].h.hexdigest(), reader[0].n) if reader else got)]
    return checks + others.result() + record_checks


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


# ---- addenda: timestamps, Wayback cross-links, derived artifacts ---------------------------------------
Loaded = list[tuple[str | None, bytes | Absent, Addendum | None]]  # kind (if the index knows it), bytes, addendum


def _load_addenda(src: EvidenceSource) -> Loaded:
    out: Loaded = []
    for ref in src.addenda():
        data = src.read(ref.sha256)
        add = None
        if isinstance(data, bytes):
            try:
                add = Addendum.from_dict(json.loads(data))
            except (ValueError, ArchiverError):
                add = None
        out.append((ref.kind, data, add))
    return out


def addendum_check(src: EvidenceSource, name: str, data: bytes | Absent, addendum: Addendum | None,
                   manifest_sha256: str) -> Check:
    """Is this addendum the signed, unaltered statement it claims to be, about this record? (Whether
    its signer is trusted is ``signer.trusted``'s question.)"""
    from archiver.provenance.signing import addendum_signature_valid

    if isinstance(data, Absent):
        return Check(name, FAIL, data.category, f"the addendum {data.why}")
    if addendum is None:
        from archiver.formats import classify

        doc = classify(data)
        if doc.role == "newer":  # a newer release wrote it (docs/formats.md): signed like any other
            signed = raw_signature_check(src, name, data)
            if signed.status is not PASS:
                return signed
            raw = json.loads(data)
            if raw.get("manifest_sha256") != manifest_sha256 or raw.get("record_id") != src.record_id:
                return Check(name, FAIL, INTEGRITY, "the addendum names a different record or manifest")
            return Check(name, FAIL, COMPLETENESS, f"{doc.reason}; {signed.detail}; this release cannot check it")
        return Check(name, FAIL, INTEGRITY, "the addendum is unreadable")
    if addendum.manifest_sha256 != manifest_sha256 or addendum.record_id != src.record_id:
        return Check(name, FAIL, INTEGRITY, "the addendum names a different record or manifest")
    sig = addendum.signature
    if sig is None:
        return Check(name, FAIL, INTEGRITY, "the addendum is not signed")
    key = src.public_key(sig.key_id)
    if key is None:
        return Check(name, FAIL, COMPLETENESS, f"the addendum's signer {sig.key_id} is not in {src.where}")
    if not addendum_signature_valid(addendum, key):
        return Check(name, FAIL, INTEGRITY, f"the addendum's signature does not verify with {sig.key_id}")
    return Check(name, PASS, INTEGRITY, f"signed by {sig.key_id}, {addendum.created_at}")


def _addendum_checks(src: EvidenceSource, manifest: Manifest, msha: str, addenda: Loaded) -> list[Check]:
    """Each addendum, numbered from 1 within its kind (``timestamp.1``, ``derived.1``…)."""
    numbered: dict[str, list[tuple[int, bytes | Absent, Addendum | None]]] = {}
    for i, (kind, data, add) in enumerate(addenda, 1):
        kind = kind or (add.kind if add is not None else None) or "addendum"
        numbered.setdefault(kind, []).append((i, data, add))
    checks: list[Check] = []
    stamps = numbered.pop("timestamp", [])
    if not stamps:
        checks.append(Check("timestamp", SKIP, COMPLETENESS, f"unstamped: no RFC 3161 token yet "
                                                            f"({src.unstamped_hint()})"))
    else:
        checks.extend(_timestamp_checks(src, manifest, msha, stamps))
    checks.extend(_wayback_checks(src, manifest, msha, numbered.pop("wayback", [])))
    content_bytes: list[bytes | None] = []
    for n, (_i, data, add) in enumerate(numbered.pop("derived", []), 1):
        prefix = f"derived.{n}"
        checks.append(addendum_check(src, f"{prefix}.addendum", data, add, msha))
        if add is None or add.derived is None:
            continue
        if not content_bytes:
            content_bytes.append(_content(src, manifest))
        checks.extend(derived_checks(prefix, add.derived, manifest, src.read(add.derived.sha256), content_bytes[0]))
    for kind, items in sorted(numbered.items()):  # a kind this version has no further checks for
        for n, (_i, data, add) in enumerate(items, 1):
            checks.append(addendum_check(src, f"{kind}.{n}.addendum", data, add, msha))
    return checks


def _content(src: EvidenceSource, manifest: Manifest) -> bytes | None:
    """The record's content: its own blob, else decoded again from the WARC (a bundle)."""
    import io

    content = manifest.artifact("content")
    if content is None:
        return None
    data = src.read(content.sha256)
    if isinstance(data, bytes):
        return data
    warc = manifest.artifact("warc")
    if warc is None or isinstance(src.rehash(warc.sha256), Absent):
        return None
    out = io.BytesIO()
    try:
        warc_checks(lambda: src.open(warc.sha256), manifest, content_out=out, limits=src.warc_limits)
    except (ArchiverError, OSError, ValueError):
        return None
    got = out.getvalue()
    return got if hashlib.sha256(got).hexdigest() == content.sha256 else None


def _timestamp_checks(src: EvidenceSource, manifest: Manifest, msha: str,
                      stamps: list[tuple[int, bytes | Absent, Addendum | None]]) -> list[Check]:
    try:
        anchors: list[x509.Certificate] = src.anchors()
    except ArchiverError as exc:
        return [Check("timestamp", FAIL, TRUST, exc.message)]
    checks: list[Check] = []
    for n, (_i, data, add) in enumerate(stamps, 1):
        prefix = f"timestamp.{n}"
        checks.append(addendum_check(src, f"{prefix}.addendum", data, add, msha))
        if add is None or add.timestamp is None:
            continue
        ev = add.timestamp
        checks.extend(token_checks(prefix, ev, manifest_sha256=msha, captured_at=manifest.captured_at,
                                   token=src.read(ev.token_sha256), stored_chain=src.read(ev.chain_sha256),
                                   anchors=anchors, tolerance=src.tolerance, deferred=ev.deferred))
    return _one_good_token_suffices(checks)


def _one_good_token_suffices(checks: list[Check]) -> list[Check]:
    """A token whose only fault is its time (its TSA's clock was off: genuine, signed, the right imprint)
    does not fail a record that another token stamps in full: it is reported as information. Before,
    one such token made a record fail for good, whatever good token was added later."""
    by_token: dict[str, list[Check]] = {}
    for c in checks:
        by_token.setdefault(".".join(c.name.split(".")[:2]), []).append(c)
    good = [k for k, cs in by_token.items() if all(c.status is PASS for c in cs)]
    if not good:
        return checks
    out = []
    for c in checks:
        token = ".".join(c.name.split(".")[:2])
        only_time = all(x.status is PASS or x.name.endswith(".time") for x in by_token[token])
        if c.name.endswith(".time") and c.status is FAIL and only_time:
            c = Check(c.name, SKIP, CONTEXT, f"{c.detail}; not counted: {good[0]} stamps the record in full")
        out.append(c)
    return out


def _wayback_checks(src: EvidenceSource, manifest: Manifest, msha: str,
                    items: list[tuple[int, bytes | Absent, Addendum | None]]) -> list[Check]:
    """Each Wayback addendum is checked like any signed statement; with ``--wayback`` the Archive is
    asked again whether the snapshot is still there (context: its answer never fails the record)."""
    requery = getattr(src, "requery_wayback", False)
    if not items:
        return [Check("wayback", SKIP, CONTEXT, "no Wayback Machine cross-link recorded (archiver wayback "
                                                f"{manifest.record_id})")] if requery else []
    checks: list[Check] = []
    latest: Addendum | None = None
    for n, (_i, data, add) in enumerate(items, 1):
        check = addendum_check(src, f"wayback.{n}.addendum", data, add, msha)
        if check.status is PASS and add is not None and add.wayback is not None and add.signature is not None:
            w = add.wayback
            check = Check(check.name, PASS, INTEGRITY, f"{w.verdict} ({w.snapshot_timestamp or 'no snapshot'}), "
                                                       f"checked {w.checked_at}, signed by {add.signature.key_id}")
            if (w.our_digest and w.our_digest != manifest.digests.payload_sha1_b32) or (
                    w.our_digest_chunked and w.our_digest_chunked != manifest.digests.payload_sha1_b32_chunked):
                check = Check(check.name, FAIL, INTEGRITY, "the addendum compares a digest that is not this "
                                                           "record's payload")
            latest = add
        checks.append(check)
    if requery:
        if latest is None or latest.wayback is None:
            checks.append(Check("wayback.live", SKIP, CONTEXT, "no readable Wayback addendum to re-check"))
        else:
            try:
                answer = src.wayback_still_there(latest.wayback)
            except ArchiverError as exc:
                checks.append(Check("wayback.live", SKIP, CONTEXT, f"unknown: {exc.message}"))
            else:
                if answer is not None:
                    ok, detail = answer
                    checks.append(Check("wayback.live", PASS if ok else SKIP, CONTEXT,
                                        detail if ok else f"no longer corroborated (the record itself is "
                                                          f"unaffected): {detail}"))
    return checks


# ---- custody and the chain -----------------------------------------------------------------------------
def _custody_checks(src: EvidenceSource, msha: str) -> list[Check]:
    chain = src.custody_chain()
    return ([chain] if chain is not None else []) + [custody_record_check(src, msha)]


def _previous_check(src: EvidenceSource, manifest: Manifest) -> Check:
    """Context: the version chain. An absent predecessor leaves the record complete (a chain may be
    exported or imported one record at a time); a present one with another manifest is tampering."""
    prev = manifest.previous
    assert prev is not None
    have = src.predecessor(prev.record_id)
    if have is None:
        return Check("previous", SKIP, CONTEXT, f"chain partial: predecessor {prev.record_id} is not in {src.where}")
    if have != prev.manifest_sha256:
        return Check("previous", FAIL, INTEGRITY, f"predecessor {prev.record_id} in {src.where} has manifest "
                                                  f"sha256:{have}, not the sha256:{prev.manifest_sha256} this "
                                                  "record chains to")
    return Check("previous", PASS, CONTEXT, f"chains to {prev.record_id} (sha256:{have[:16]}…)")
