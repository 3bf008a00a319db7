"""Importing a verified bundle into a store, and the verifier's trust (keyring, pinned keys, TSA anchors)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from archiver.errors import ArchiverError, IntegrityError, UsageError
from archiver.records import Addendum, Category, Manifest, Verdict, Verification
from archiver.verify.artifacts import WarcLimits
from archiver.verify.custody import SOURCE_CUSTODY
from store.catalog import Catalog
from store.custody import Event
from store.fsutil import store_writes

if TYPE_CHECKING:
    from cryptography import x509

    from archiver.ports import Store

from archiver.bundle.export import BINDING
from archiver.bundle.read import Bundle, BundleLimits, BundleTrust, bundle_verdict, verify_bundle


# ---- import ------------------------------------------------------------------------------------------
def import_bundle(archive: Store, path: Path, trust: BundleTrust, *, actor: str, force: bool = False) -> tuple[
        list[Verification], list[str]]:
    """Verify, then add the records; blobs already present are not duplicated. A bundle that is
    not verified is refused (store untouched); ``force`` imports one that is intact but untrusted
    (only trust checks failed), and the import is marked. Nothing tampered or incomplete is imported."""
    # verified and imported from one private copy: the file at ``path`` may be replaced or rewritten in
    # place meanwhile (a shared inbox, a sync folder), and the store takes exactly the bytes it verified
    copy, copy_path = archive.blobs.new_temp(".wacz")
    try:
        with copy:
            try:
                src = open(path, "rb")
            except OSError as exc:
                raise UsageError(f"cannot read the bundle {path}: {exc.strerror}") from exc
            with src, store_writes(f"copying the bundle {path} into the store"):  # a full disk: exit 4
                shutil.copyfileobj(src, copy, 1 << 20)
        with open(copy_path, "rb") as fh:
            return _import_open(archive, path, fh, trust, actor=actor, force=force)
    finally:
        copy_path.unlink(missing_ok=True)


def _import_open(archive: Store, path: Path, fh: BinaryIO, trust: BundleTrust, *, actor: str,
                 force: bool) -> tuple[list[Verification], list[str]]:
    reports = verify_bundle(path, trust, fh=fh)
    failed = [f"{r.subject}: {c.name}" for r in reports for c in r.failures]
    verdict = bundle_verdict(reports)
    if verdict is not Verdict.VERIFIED and not (force and verdict is Verdict.INTACT_UNTRUSTED):
        first = next(c for r in reports for c in r.failures if c.category is not Category.TRUST or
                     verdict is Verdict.INTACT_UNTRUSTED)
        raise IntegrityError(f"bundle {path} is {verdict.value}: {first.name}: {first.detail[:300]}"
                             + (f" (and {len(failed) - 1} more failed check(s))" if len(failed) > 1 else "")
                             + "; nothing imported",
                             hint="inspect with `archiver verify BUNDLE`; --force imports a bundle that is intact "
                                  "but signed by a key (or stamped by a TSA) you do not trust, marked as such")
    imported: list[str] = []
    b = Bundle(path, fh, trust.bundle_limits)
    try:
        rids = [r.subject for r in reports[1:]]
        package = reports[0]
        # keys first (the carried ones filed, the pinned ones trusted): a kill during the import then
        # leaves records that verify here
        _file_keys(archive, b, actor=actor)
        _trust_pinned(archive, b, rids, trust.pinned, actor=actor)
        from archiver.verify.logproof import trust_log_key

        for vkey in sorted(trust.pinned_log_keys):  # `import --trust-log-key`: pinned here from now on
            trust_log_key(archive, vkey, actor=actor, source=f"import --trust-log-key {b.path}")
        for report in reports[1:]:
            # what --force let through for this record: its own failed (trust) checks and the package's
            forced = [f"{r.subject}: {c.name}" for r in (report, package) for c in r.failures]
            if _import_record(archive, b, report.subject, forced_failures=forced, actor=actor):
                imported.append(report.subject)
    finally:
        b.close()
    return reports, imported


def _trust_pinned(archive: Store, b: Bundle, rids: list[str], pinned: frozenset[str], *, actor: str) -> list[str]:
    """``import --trust-key ID``: the pinned Ed25519 keys the bundle carries (record signers, the operator
    key of the binding) join this store's keyring, each with a custody entry, so the imported records
    verify here afterwards with no other step. Keys already trusted are left alone."""
    from archiver.provenance.keys import key_id_of, load_public_pem

    if not pinned:
        return []
    carried: dict[str, bytes] = {}
    for name in sorted(_key_members(b, rids)):
        pem = b.read(name)
        carried[key_id_of(load_public_pem(pem))] = pem
    if BINDING in b.names:
        try:
            doc = json.loads(b.read(BINDING))
            pem = str(doc["operator_key"]["pem"]).encode("ascii")
            carried.setdefault(key_id_of(load_public_pem(pem)), pem)
        except (ValueError, KeyError, TypeError, ArchiverError):
            pass  # verify_bundle reported it; nothing to add from it
    already = archive.keys.trusted()
    added = []
    for kid in sorted(pinned & set(carried)):
        if kid in already:
            continue
        archive.keys.trust(carried[kid], source=f"{b.path}")
        archive.note("key-trust", actor=actor, detail={"key_id": kid, "source": f"import --trust-key {b.path.name}"})
        added.append(kid)
    return added


def _key_members(b: Bundle, rids: list[str]) -> list[str]:
    return [n for n in b.names if n.startswith("provenance/signer.") and n.endswith(".pub.pem")] + \
        [f"provenance/{rid}.signer.pub.pem" for rid in rids if f"provenance/{rid}.signer.pub.pem" in b.names]


def _file_keys(archive: Store, b: Bundle, *, actor: str) -> None:
    """Every key the bundle carries joins the catalog's signer keys (not the keyring: whether to trust
    one is the user's decision), and each rotation statement is filed with a ``key-rotate`` entry, so
    the records verify here as they did in the bundle and export again with the same keys."""
    from archiver.provenance.keys import file_rotation, key_id_of, load_public_pem

    for name in sorted(n for n in b.names if n.startswith("provenance/signer.") and n.endswith(".pub.pem")):
        pem = b.read(name)
        archive.catalog.add_signer_key(key_id_of(load_public_pem(pem)), archive.blobs.put_bytes(pem))
    for name in sorted(n for n in b.names if n.startswith("provenance/key-rotation.")):
        file_rotation(b.read(name), archive.blobs, archive.catalog, archive.ledger, actor=actor,
                      source=f"import {b.path}")


def _import_record(archive: Store, b: Bundle, rid: str, forced_failures: list[str], *, actor: str) -> bool:
    """Blobs first, then one unit of work: the ``import`` custody entry (naming the manifest and its
    addenda, so a cut-off commit is replayed whole), the record's and addenda's catalog rows."""
    from archiver.provenance.ids import is_canonical_record_id
    from archiver.provenance.keys import key_id_of, load_public_pem

    if not is_canonical_record_id(rid):  # verification fails such a record; never name a file or row by it
        raise IntegrityError(f"record ID {json.dumps(rid)} in {b.path} is not one this software issues; "
                             "nothing imported")
    base = f"provenance/{rid}"
    mbytes = b.read(f"{base}.manifest.json")
    m = Manifest.from_dict(json.loads(mbytes))
    msha = hashlib.sha256(mbytes).hexdigest()
    existing = archive.catalog.get(rid)
    if existing is not None:
        if existing.manifest_sha256 != msha:
            raise IntegrityError(f"record {rid} already exists in this store with a different manifest")
        return False
    # blobs first (content is re-derived from the WARC, exactly as verify checks it)
    warc_sha = _put_member(archive, b, f"archive/{rid}.warc.gz")
    content = m.artifact("content")
    if content is not None and not archive.blobs.exists(content.sha256):
        from archiver.verify import warc_checks

        fh, tmp = archive.blobs.new_temp(".content")
        try:
            with fh:
                warc_checks(lambda: b.open(f"archive/{rid}.warc.gz"), m, content_out=fh,
                            limits=WarcLimits(archive.config.int_("verify.max_record_bytes"),
                                              archive.config.int_("verify.max_warc_bytes"),
                                              max_records=archive.config.int_("verify.max_warc_records")))
            got, _ = archive.blobs.adopt(tmp)
            if got != content.sha256:
                raise IntegrityError(f"decoding the WARC of {rid} gives sha256:{got}, not the content "
                                     f"sha256:{content.sha256}")
        finally:
            tmp.unlink(missing_ok=True)
    for fname in ("text.txt", "tls-chain.pem"):
        if f"{base}.{fname}" in b.names:
            _put_member(archive, b, f"{base}.{fname}")
    if f"{base}.signer.pub.pem" in b.names:
        pem = b.read(f"{base}.signer.pub.pem")
        archive.catalog.add_signer_key(key_id_of(load_public_pem(pem)), archive.blobs.put_bytes(pem))
    n_ts = 0
    addenda: list[tuple[Addendum, str]] = []
    i = 1
    while f"{base}.addendum.{i}.json" in b.names:
        data = b.read(f"{base}.addendum.{i}.json")
        add = Addendum.from_dict(json.loads(data))
        if add.timestamp is not None:
            n_ts += 1
            _put_member(archive, b, f"{base}.timestamp.{n_ts}.tsr")
            _put_member(archive, b, f"{base}.tsa-chain.{n_ts}.pem")
        if add.derived is not None and _put_member(archive, b, f"{base}.addendum.{i}.{add.derived.name}.md") \
                != add.derived.sha256:
            raise IntegrityError(f"the bundle's derived {add.derived.name} of {rid} is not the one its addendum names")
        addenda.append((add, archive.blobs.put_bytes(data)))
        i += 1
    warc = m.artifact("warc")
    if warc is not None and warc_sha != warc.sha256:
        raise IntegrityError(f"the bundle's WARC for {rid} is not the one its manifest names")
    sha = archive.blobs.put_bytes(mbytes)
    # the bundle's file name, never its path: custody travels in every later export (a public one too),
    # and a folder name like "…/Smith-v-Jones-SEALED/" is nobody's business
    detail = {"bundle": b.path.name, "manifest_sha256": sha}
    if f"{base}.custody.jsonl" in b.names:  # the record's history before this store: exported again with it
        detail[SOURCE_CUSTODY] = archive.blobs.put_bytes(b.read(f"{base}.custody.jsonl", limit=256 << 20))
    if forced_failures:
        detail["forced"] = "; ".join(forced_failures)[:500]
    if addenda:
        detail["addenda"] = ",".join(asha for _, asha in addenda)

    def index(d: Any) -> None:
        Catalog.insert_record(d, m, sha, tip=Catalog.tip_after_import(d, m))
        for add, asha in addenda:
            Catalog.insert_addendum(d, asha, add)
    with archive.chain_lock(m.subject.url):  # like a capture: the URL's chain moves one commit at a time
        archive.ledger.commit([Event("import-forced" if forced_failures else "import", rid, sha, detail)],
                              actor=actor, index=index)
    return True


def _put_member(archive: Store, b: Bundle, name: str) -> str:
    fh, tmp = archive.blobs.new_temp(".import")
    try:
        with fh, b.open(name) as src:
            shutil.copyfileobj(src, fh, 1 << 20)
        sha, _ = archive.blobs.adopt(tmp)
        return sha
    finally:
        tmp.unlink(missing_ok=True)


def is_bundle_path(text: str) -> bool:
    return text.lower().endswith((".wacz", ".zip")) or (os.path.isfile(text) and zipfile.is_zipfile(text))


def default_trust(archive: Store | None, trust_keys: list[str], tsa_certs: Path | None,
                  trust_log_keys: list[str] | None = None) -> BundleTrust:
    """The verifier's trust: its keyring and tsa.certs when a store is at hand, plus what it pins."""
    from archiver.provenance import tsp
    from archiver.verify.logproof import check_vkey, trusted_log_keys

    keyring: dict[str, object] = {}
    anchors: list[x509.Certificate] = []
    tolerance = 600.0
    limits = WarcLimits()
    bundle_limits = BundleLimits()
    fps = set()
    for k in trust_keys:
        k = k.strip().lower()
        fps.add(k if k.startswith("sha256:") else f"sha256:{k}")
    pinned = frozenset(fps)
    if archive is not None:
        keyring = dict(archive.keys.trusted())
        from archiver.stamping import trust_anchors

        anchors = trust_anchors(archive)
        tolerance = float(archive.config.int_("tsa.tolerance"))
        limits = WarcLimits(archive.config.int_("verify.max_record_bytes"),
                            archive.config.int_("verify.max_warc_bytes"),
                            max_records=archive.config.int_("verify.max_warc_records"))
        bundle_limits = BundleLimits(archive.config.int_("verify.max_bundle_bytes"),
                                     archive.config.int_("verify.max_bundle_members"))
        if archive.keys.wacz_public_path.is_file():
            from archiver.provenance.keys import wacz_fingerprint

            fps.add(wacz_fingerprint(archive.keys.wacz_public_der()))  # our own bundles
    if tsa_certs is not None:
        try:
            anchors = tsp.load_certs(tsa_certs.read_bytes())
        except OSError as exc:
            raise UsageError(f"cannot read {tsa_certs}: {exc.strerror}") from exc
    pinned_logs = frozenset(check_vkey(v) for v in trust_log_keys or [])
    return BundleTrust(keyring=keyring, fingerprints=frozenset(fps), anchors=anchors, tolerance=tolerance,
                       warc_limits=limits, bundle_limits=bundle_limits, pinned=pinned,
                       log_keys=trusted_log_keys(archive, pinned_logs), pinned_log_keys=pinned_logs)
