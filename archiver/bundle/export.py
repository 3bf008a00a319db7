"""Writing a bundle: the WACZ layout, its index, the package signature and the key binding."""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import logging
import shutil
import stat
import zipfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

from archiver._version import __version__
from archiver.errors import ArchiverError, IntegrityError, UsageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from archiver.ports import Store
    from archiver.provenance.keys import PassphraseSource
    from store.custody import CustodyEntry

logger = logging.getLogger(__name__)
WACZ_VERSION = "1.1.1"
#: the transparency log's members (docs/formats.md, "The transparency log in a bundle"): one proof per
#: record, the checkpoint the proofs lead to and the log's verifier key
LOG_PROOF, LOG_CHECKPOINT, LOG_VKEY = "provenance/{rid}.tlog-proof", "provenance/log.checkpoint", "provenance/log.vkey"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_READ_EVENTS = frozenset({"get", "verify", "export", "certificate"})



@dataclass(frozen=True, slots=True)
class ExportResult:
    path: str
    records: tuple[str, ...]
    size: int
    sha256: str
    datapackage_hash: str
    signer: str  # fingerprint of the P-384 key


def surt(url: str) -> str:
    """A SURT-ordered key like pywb's: ``https://www.Example.org:8443/a?b`` → ``org,example:8443)/a?b``."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    key = ",".join(reversed(host.split("."))) if not host.replace(".", "").isdigit() else host
    port = parts.port
    if port and not ((parts.scheme == "http" and port == 80) or (parts.scheme == "https" and port == 443)):
        key += f":{port}"
    return key + ")" + (parts.path or "/").lower() + (f"?{parts.query}" if parts.query else "")


def _warc_ts(date: str) -> str:
    return date.replace("-", "").replace(":", "").replace("T", "")[:14]


def cdxj_lines(warc: BinaryIO, filename: str, page_url: str | None = None) -> list[str]:
    """The CDXJ lines of a WARC. With ``page_url``, only the first record of the page is indexed: the
    response the manifest's content comes from. A browser may fetch the page's URL again (a script's
    request); readers pick among lines for one URL each their own way, so a second line could show a
    replay another body than the one signed (verification's ``bundle.index`` refuses that)."""
    from warcio.archiveiterator import ArchiveIterator

    out = []
    it = ArchiveIterator(warc)
    page_seen = False
    for rec in it:
        if rec.rec_type not in ("response", "resource", "revisit"):
            continue
        url = rec.rec_headers.get_header("WARC-Target-URI")
        if page_url is not None and url == page_url:
            if page_seen:
                continue
            page_seen = True
        entry: dict[str, str] = {"url": url}
        if rec.http_headers is not None and rec.rec_type != "resource":
            ctype = rec.http_headers.get_header("Content-Type") or "unk"
            entry["mime"] = ctype.split(";")[0].strip()
            entry["status"] = rec.http_headers.get_statuscode()
        else:
            entry["mime"] = (rec.rec_headers.get_header("Content-Type") or "unk").split(";")[0].strip()
        entry["digest"] = rec.rec_headers.get_header("WARC-Payload-Digest") or "-"
        rec.raw_stream.read()
        it.read_to_end(rec)
        entry["length"] = str(it.member_info[1])
        entry["offset"] = str(it.member_info[0])
        entry["filename"] = filename
        out.append(f"{surt(url)} {_warc_ts(rec.rec_headers.get_header('WARC-Date'))} {json.dumps(entry)}")
    return out


# ---- export -----------------------------------------------------------------------------------------
def _sign_p384(key: object, message: bytes) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    assert isinstance(key, ec.EllipticCurvePrivateKey)
    der = key.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    r, s = decode_dss_signature(der)
    return base64.b64encode(r.to_bytes(48, "big") + s.to_bytes(48, "big")).decode("ascii")


def verify_p384(public_spki_b64: str, signature_b64: str, message: bytes) -> bool:
    """ReplayWeb.page's check: WebCrypto ECDSA {P-384, SHA-256} over the hash string, raw r‖s."""
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_der_public_key(base64.b64decode(public_spki_b64, validate=True))
        raw = base64.b64decode(signature_b64, validate=True)
    except (ValueError, UnsupportedAlgorithm):
        return False
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1" or len(raw) != 96:
        return False
    sig = encode_dss_signature(int.from_bytes(raw[:48], "big"), int.from_bytes(raw[48:], "big"))
    try:
        key.verify(sig, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


BINDING = "provenance/bundle-key.json"
BINDING_TYPE = "archiver-bundle-key-binding/1"


def key_binding(operator_key: Ed25519PrivateKey, spki: bytes) -> bytes:
    """The operator's Ed25519 key vouches for the P-384 bundle key: a signed statement naming both, so
    whoever trusts the one key id people pin (``archiver keys list``) can trust the bundle signature.
    Ed25519 is deterministic, so the same keys always give the same bytes."""
    import rfc8785

    from archiver.provenance.keys import key_id_of, public_pem, wacz_fingerprint

    pub = operator_key.public_key()
    body: dict[str, Any] = {
        "type": BINDING_TYPE,
        "statement": "The P-384 bundle key signs archiver evidence bundles for the Ed25519 operator key.",
        "bundle_key": {"spki": base64.b64encode(spki).decode("ascii"), "fingerprint": wacz_fingerprint(spki)},
        "operator_key": {"key_id": key_id_of(pub), "pem": public_pem(pub).decode("ascii")},
    }
    sig = base64.b64encode(operator_key.sign(rfc8785.dumps(body))).decode("ascii")
    return (json.dumps({**body, "signature": {"alg": "Ed25519", "key_id": key_id_of(pub), "value": sig}},
                       indent=2) + "\n").encode("utf-8")


@dataclass(frozen=True, slots=True)
class Binding:
    operator_key_id: str
    operator_pem: bytes
    bundle_fingerprint: str


def read_binding(data: bytes, spki_b64: str) -> Binding:
    """Check a binding statement: well formed, signed by the operator key it names, naming ``spki_b64``
    (the key that signed the package). Raises IntegrityError saying what is wrong."""
    import rfc8785
    from cryptography.exceptions import InvalidSignature

    from archiver.provenance.keys import key_id_of, load_public_pem, wacz_fingerprint

    try:
        doc = json.loads(data)
        sig = doc.pop("signature")
        op, bk = doc["operator_key"], doc["bundle_key"]
        if doc.get("type") != BINDING_TYPE or set(doc) != {"type", "statement", "bundle_key", "operator_key"}:
            raise IntegrityError("the key binding is of an unknown type or has unexpected fields")
        pem = str(op["pem"]).encode("ascii")
        pub = load_public_pem(pem, source="the key binding's operator key")
        raw = base64.b64decode(str(sig["value"]), validate=True)
    except (ValueError, KeyError, TypeError, AttributeError, ArchiverError) as exc:
        raise IntegrityError(f"the key binding is unreadable: {exc}") from exc
    kid = key_id_of(pub)
    if op.get("key_id") != kid or sig.get("key_id") != kid:
        raise IntegrityError(f"the key binding names operator key {op.get('key_id')} but carries {kid}")
    try:
        pub.verify(raw, rfc8785.dumps(doc))
    except InvalidSignature:
        raise IntegrityError(f"the key binding's Ed25519 signature does not verify with {kid}") from None
    if bk.get("spki") != spki_b64:
        raise IntegrityError("the key binding names another bundle key than the one that signed the package")
    try:
        fp = wacz_fingerprint(base64.b64decode(spki_b64, validate=True))
    except ValueError as exc:
        raise IntegrityError("the package's public key is not base64") from exc
    if bk.get("fingerprint") != fp:
        raise IntegrityError("the key binding's fingerprint does not match its bundle key")
    return Binding(kid, pem, fp)


def _verify_md(record_ids: list[str]) -> str:
    rid = record_ids[0]
    return f"""# Verifying this evidence bundle without archiver

Records: {", ".join(record_ids)}. Every command below uses standard tools only. Unzip the bundle
(`unzip evidence.wacz -d bundle && cd bundle`); each record's provenance files are
`provenance/<record>.<name>`.

1. **Every file is the one listed**: each resource in `datapackage.json` has a `hash`
   (`sha256:<hex>`); compare with `sha256sum archive/*.warc.gz provenance/*`.
2. **The package is signed**: `datapackage-digest.json` holds `hash` = sha256 of
   `datapackage.json` (`sha256sum datapackage.json`) and `signedData`: an ECDSA P-384/SHA-256
   signature over that hash string (raw r‖s, base64) by the SPKI key in `publicKey`, the form
   ReplayWeb.page verifies. `wacz validate -f evidence.wacz` (py-wacz) checks the package.
3. **The WARC is intact**: `warcio check -v archive/{rid}.warc.gz`; its sha256 equals the `warc`
   artifact in `provenance/{rid}.manifest.json`.
4. **The manifest signature** (Ed25519 over the RFC 8785 JSON without `signature`):
   ```sh
   cd provenance
   python3 -c 'import json,rfc8785,base64;m=json.load(open("{rid}.manifest.json"));s=m.pop("signature");\\
   open("signed.bin","wb").write(rfc8785.dumps(m));open("sig.bin","wb").write(base64.b64decode(s["value"]))'
   openssl pkeyutl -verify -pubin -inkey {rid}.signer.pub.pem -rawin -in signed.bin -sigfile sig.bin
   ```
   The key id is `openssl pkey -pubin -in {rid}.signer.pub.pem -outform DER | tail -c 32 | sha256sum`.
   Decide yourself whether you trust that key: the bundle carrying it proves nothing.
   `signer.<key>.pub.pem` holds every key that signed something here (addenda made after a key
   rotation are signed by the newer key); `key-rotation.<new key>.json` is the old key's statement,
   countersigned by the new key, that the new key succeeds it (Ed25519 over the RFC 8785 JSON
   without `signatures`, both signatures checked the same way): trusting the old key id covers the
   new one. A key is never trusted because the bundle carries it.
   `bundle-key.json` is that key's statement (Ed25519 over the RFC 8785 JSON without `signature`,
   checked the same way) that the P-384 `publicKey` of step 2 signs bundles for it: trusting the
   one key id covers the package signature too.
5. **The timestamp** (for a token over this manifest alone):
   `openssl ts -verify -digest "$(sha256sum {rid}.manifest.json | cut -d' ' -f1)" \\
   -in {rid}.timestamp.1.tsr -CAfile {rid}.tsa-chain.1.pem`
   prints `Verification: OK` (trust the TSA's CA yourself). For a batch token,
   `{rid}.addendum.1.json` holds the Merkle inclusion proof (RFC 9162); see the archiver README,
   "Verify the timestamp with OpenSSL".
6. **Custody**: `{rid}.custody.jsonl` holds the record's custody-log entries; each entry's `hash` is
   the sha256 of its RFC 8785 form without `hash`, and `prev` names the entry before it in the full log.
   A record imported from another bundle starts with that bundle's custody lines, byte for byte:
   the `import` entry's `source_custody_sha256` is the sha256 of those first lines.
7. **The transparency log** (when `{rid}.tlog-proof` is here): a c2sp.org/tlog-proof@v1 file proving
   that the leaf `archiver.tlog-entry/v1 manifest {rid} sha256:<sha256sum of {rid}.manifest.json>`
   (one line, a newline at its end) is at `index N` of the tree whose checkpoint follows, signed by the
   log key in `log.vkey`. Any tlog-proof verifier checks it (Go: `golang.org/x/mod/sumdb/note` opens
   the checkpoint, `sumdb/tlog.CheckRecord` the path). Get the log's key from its operator, not from
   this bundle: the key here proves only that the bundle agrees with itself. Keep `log.checkpoint` to
   check later that the log still extends it.
"""


def _carried_custody(archive: Store, entries: list[CustodyEntry]) -> bytes:
    """The source bundle's custody lines an import of this record kept (empty if none)."""
    from archiver.verify.custody import SOURCE_CUSTODY

    for e in entries:
        if e.event in ("import", "import-forced") and (sha := e.detail.get(SOURCE_CUSTODY)):
            return archive.blobs.read_bytes(sha)
    return b""


def key_closure(archive: Store, signers: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Every public key that signed something in the bundle and the rotation statements linking them
    (walked both ways, so a verifier who trusts any key of the history can follow it): key id →
    PEM blob, new key id → statement blob."""
    from archiver.provenance.keys import ROTATION_FROM, ROTATION_TO, read_rotation

    keys: dict[str, str] = {}
    rotations: dict[str, str] = {}
    todo = sorted(signers)
    seen: set[str] = set()
    while todo and len(seen) < 256:
        kid = todo.pop()
        if kid in seen:
            continue
        seen.add(kid)
        if (blob := archive.catalog.signer_key_blob(kid)) is not None:
            keys[kid] = blob
        for prefix in (ROTATION_TO, ROTATION_FROM):
            sha = archive.catalog.signer_key_blob(prefix + kid)
            if sha is None:
                continue
            try:
                rot = read_rotation(archive.blobs.read_bytes(sha))
            except (ArchiverError, OSError):
                continue  # verify reports a damaged statement in the store; the bundle leaves it out
            rotations[rot.new_key_id] = sha
            todo += [rot.old_key_id, rot.new_key_id]
    return keys, rotations


def log_members(archive: Store, record_ids: list[str], *, sign: bool) -> dict[str, bytes]:
    """The transparency-log members of a bundle of ``record_ids``: ``provenance/<ID>.tlog-proof`` (a
    c2sp.org/tlog-proof@v1 file for the record's manifest leaf), ``provenance/log.checkpoint`` (the
    signed checkpoint every proof leads to: one for the whole bundle) and ``provenance/log.vkey``.

    Empty for a store without a log key (never signed a checkpoint: an old store, or one that never
    ran ``archiver log checkpoint`` or a batch): exporting does not create a log identity. With
    ``sign`` a checkpoint is signed (RFC 3161-stamped like any) when a record is newer than the
    latest one; without it (an export made by a GET, which must write nothing) only records the latest
    checkpoint covers get a proof. Records not in the log get none."""
    from archiver.verify.logproof import latest as latest_checkpoint
    from archiver.verify.logproof import own_vkey, proof_under

    tlog = archive.log
    if not tlog.key.exists():
        return {}
    if sign:
        try:
            tlog.sync()
            latest = latest_checkpoint(tlog)
            indices = [i for rid in record_ids for i, e in tlog.leaves_of(rid) if e.kind == "manifest"]
            if indices and (latest is None or latest.size <= max(indices)):
                tlog.checkpoint()
        except ArchiverError as exc:  # as at the end of a batch: the export stands, with the proofs it can have
            logger.warning("no log checkpoint signed for the export: %s", exc.message)
    latest = latest_checkpoint(tlog)
    if latest is None:
        return {}
    out = {LOG_PROOF.format(rid=rid): proof for rid in record_ids
           if (proof := proof_under(tlog, rid, latest)) is not None}
    if out:
        out[LOG_CHECKPOINT] = latest.note
        out[LOG_VKEY] = (f"{own_vkey(tlog)}\n").encode("ascii")  # named as the checkpoints name the log
    return out


def export(archive: Store, record_ids: list[str], dest: Path, *,
           passphrase: PassphraseSource, actor: str, log: bool = True,
           sign_checkpoint: bool | None = None) -> ExportResult:
    """A WACZ of ``record_ids`` at ``dest``; each record's ``export`` custody entry names who it went to.
    ``log=False`` only for the public copy of a published record (``publication.public_bundle``): the
    same file for every anonymous reader, whose handing-out the ``publish`` entry already records.
    ``sign_checkpoint`` (default: ``log``): sign a log checkpoint when a record is newer than the latest
    (False for an export a GET makes: see :func:`log_members`)."""
    from archiver.cite import citation_data, render
    from archiver.provenance.keys import key_id_of
    from store.fsutil import atomic_writer

    if not record_ids:
        raise UsageError("name at least one record to export")
    summaries = sorted({archive.resolve(r).record_id: archive.resolve(r) for r in record_ids}.values(),
                       key=lambda s: (s.captured_at, s.record_id))
    ask = functools.cache(passphrase)  # both keys share one passphrase: ask once
    key = archive.keys.load_wacz_private(ask)
    spki = archive.keys.wacz_public_der()
    binding = key_binding(archive.keys.load_private(ask), spki)
    files: dict[str, Callable[[], AbstractContextManager[BinaryIO]]] = {}
    sizes: dict[str, int] = {}
    cdx: list[str] = []
    pages = [json.dumps({"format": "json-pages-1.0", "id": "pages", "title": "All Pages"})]

    def add_bytes(path: str, data: bytes) -> None:
        files[path] = functools.partial(io.BytesIO, data)
        sizes[path] = len(data)

    def add_blob(path: str, sha: str) -> None:
        files[path] = functools.partial(archive.blobs.open, sha)
        sizes[path] = archive.blobs.size(sha)

    signers: set[str] = {key_id_of(archive.keys.signing_public_key())}  # the binding's operator key
    for summary in summaries:
        rid = summary.record_id
        m = archive.manifest(rid)
        base = f"provenance/{rid}"  # files are <base>.<name>: see _member()
        warc = m.artifact("warc")
        if warc is None:
            raise IntegrityError(f"record {rid} has no WARC to export")
        add_blob(f"archive/{rid}.warc.gz", warc.sha256)
        with archive.blobs.open(warc.sha256) as fh:
            cdx += cdxj_lines(fh, f"{rid}.warc.gz", m.subject.final_url)
        pages.append(json.dumps({"id": rid, "url": m.subject.final_url, "ts": m.captured_at,
                                 "title": m.subject.title or m.subject.final_url}, ensure_ascii=False))
        add_blob(f"{base}.manifest.json", summary.manifest_sha256)
        for name, fname in (("text", "text.txt"), ("tls-chain", "tls-chain.pem")):
            art = m.artifact(name)
            if art is not None:
                add_blob(f"{base}.{fname}", art.sha256)
        if m.signature is not None:
            signers.add(m.signature.key_id)
            pub = archive.catalog.signer_key_blob(m.signature.key_id)
            if pub is not None:
                add_blob(f"{base}.signer.pub.pem", pub)
        n_ts = 0
        for i, (sha, add) in enumerate(archive.addenda(rid), 1):
            add_blob(f"{base}.addendum.{i}.json", sha)
            if add is not None and add.signature is not None:
                signers.add(add.signature.key_id)
            if add is not None and add.timestamp is not None:
                n_ts += 1
                add_blob(f"{base}.timestamp.{n_ts}.tsr", add.timestamp.token_sha256)
                add_blob(f"{base}.tsa-chain.{n_ts}.pem", add.timestamp.chain_sha256)
            if add is not None and add.derived is not None:  # made after the capture: not in the WARC
                add_blob(f"{base}.addendum.{i}.{add.derived.name}.md", add.derived.sha256)
        # the record's evidence history; reads (get, verify, export, certificate) are left out so
        # that exporting the same records twice gives the same bytes. An imported record's source
        # custody (kept on import) comes first, byte for byte: its import entry names its sha256
        entries = [e for e in archive.custody.for_record(rid) if e.event not in _READ_EVENTS]
        lines = "".join(e.to_json() + "\n" for e in entries).encode("utf-8")
        add_bytes(f"{base}.custody.jsonl", _carried_custody(archive, entries) + lines)
        add_bytes(f"{base}.citation.txt", render(citation_data(archive, rid), "record").encode("utf-8"))
    # a plain CDXJ: ReplayWeb.page (wabac.js) loads `.cdx`/`.cdxj` whole, and reads a `.cdx.gz` only as
    # ZipNum blocks named by an `index.idx`; an evidence bundle holds few records, so plain is right
    add_bytes("indexes/index.cdxj", ("\n".join(sorted(cdx)) + "\n").encode("utf-8"))
    add_bytes("pages/pages.jsonl", ("\n".join(pages) + "\n").encode("utf-8"))
    add_bytes(BINDING, binding)
    keys, rotations = key_closure(archive, signers)
    for kid, blob in sorted(keys.items()):
        add_blob(f"provenance/signer.{kid.removeprefix('sha256:')}.pub.pem", blob)
    for new_kid, blob in sorted(rotations.items()):
        add_blob(f"provenance/key-rotation.{new_kid.removeprefix('sha256:')}.json", blob)
    for path, data in log_members(archive, [s.record_id for s in summaries],
                                  sign=log if sign_checkpoint is None else sign_checkpoint).items():
        add_bytes(path, data)
    add_bytes("provenance/VERIFY.md", _verify_md([s.record_id for s in summaries]).encode("utf-8"))

    resources = []
    for path in sorted(files):
        h = hashlib.sha256()
        with files[path]() as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        resources.append({"name": path.lower(), "path": path, "hash": f"sha256:{h.hexdigest()}",
                          "bytes": sizes[path]})
    created = max(s.captured_at for s in summaries)
    first = archive.manifest(summaries[0].record_id)
    datapackage = {"profile": "data-package", "wacz_version": WACZ_VERSION,
                   "title": f"archiver evidence: {', '.join(s.record_id for s in summaries)}",
                   "description": "Evidence records with signed manifests, timestamps and custody (see VERIFY.md)",
                   "created": created, "modified": created, "software": f"archiver {__version__}",
                   "mainPageURL": first.subject.final_url, "mainPageDate": first.captured_at,
                   "resources": resources}
    dp_bytes = (json.dumps(datapackage, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    dp_hash = f"sha256:{hashlib.sha256(dp_bytes).hexdigest()}"
    digest = {"path": "datapackage.json", "hash": dp_hash,
              "signedData": {"hash": dp_hash, "signature": _sign_p384(key, dp_hash.encode("ascii")),
                             "publicKey": base64.b64encode(spki).decode("ascii"), "created": created,
                             "software": f"archiver {__version__}"}}
    add_bytes("datapackage.json", dp_bytes)
    add_bytes("datapackage-digest.json", (json.dumps(digest, indent=2) + "\n").encode("utf-8"))

    with atomic_writer(dest) as out, zipfile.ZipFile(out, "w") as zf:
        for path in sorted(files):
            info = zipfile.ZipInfo(path, date_time=ZIP_TIME)
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            # every member stored, as py-wacz writes them: ReplayWeb.page hashes a member's bytes as
            # they sit in the zip, so a deflated pages.jsonl or datapackage.json counts as "invalid"
            info.compress_type = zipfile.ZIP_STORED
            with files[path]() as src, zf.open(info, "w", force_zip64=sizes[path] > (1 << 31)) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    whole = hashlib.sha256()
    with open(dest, "rb") as fh:
        while chunk := fh.read(1 << 20):
            whole.update(chunk)
    from archiver.provenance.keys import wacz_fingerprint

    for s in summaries if log else ():
        archive.note("export", actor=actor, record_id=s.record_id, subject_sha256=s.manifest_sha256,
                     detail={"bundle_sha256": whole.hexdigest(), "to": str(dest)})
    return ExportResult(str(dest), tuple(s.record_id for s in summaries), dest.stat().st_size, whole.hexdigest(),
                        dp_hash, wacz_fingerprint(spki))
