"""Self-verifying evidence bundles: WACZ 1.1.1 export, offline verification, import.

Layout: ``archive/<record>.warc.gz`` (stored, not deflated), ``indexes/index.cdxj`` (plain CDXJ),
``pages/pages.jsonl``, ``provenance/<record>.<name>`` (manifest.json, addendum.N.json,
timestamp.N.tsr, tsa-chain.N.pem, signer.pub.pem, custody.jsonl, citation.txt, text.txt),
``provenance/VERIFY.md``, ``datapackage.json`` (sha256 of every resource) and
``datapackage-digest.json``, whose ``signedData`` is the anonymous form ReplayWeb.page checks:
ECDSA P-384 / SHA-256 over the ``hash`` string, raw r‖s in base64, SPKI public key. Every member
sits exactly one directory deep because py-wacz's ``wacz validate`` matches members by their last
two path components only.

Exports are deterministic: fixed zip timestamps and attributes, sorted entries, ``created`` taken
from the records (not the clock), and RFC 6979 deterministic ECDSA, so the same records always give
the same bytes.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import os
import shutil
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlsplit

from archiver._version import __version__
from archiver.errors import ArchiverError, IntegrityError, UsageError
from archiver.records import Addendum, Check, Manifest, Status, Verification

if TYPE_CHECKING:
    from cryptography import x509

    from archiver.ports import Store
    from archiver.provenance.keys import PassphraseSource

PASS, FAIL, SKIP = Status.PASS, Status.FAIL, Status.SKIPPED
WACZ_VERSION = "1.1.1"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
MAX_ENTRY_BYTES = 8 << 30  # one member; a WARC can be big, a 10 GB claim is refused
MAX_TOTAL_BYTES = 32 << 30
_READ_EVENTS = frozenset({"get", "verify", "export", "certificate"})
MAX_RATIO = 200  # declared/compressed beyond this on a large member smells like a zip bomb


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


def cdxj_lines(warc: BinaryIO, filename: str) -> list[str]:
    from warcio.archiveiterator import ArchiveIterator

    out = []
    it = ArchiveIterator(warc)
    for rec in it:
        if rec.rec_type not in ("response", "resource", "revisit"):
            continue
        url = rec.rec_headers.get_header("WARC-Target-URI")
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
5. **The timestamp** (for a token over this manifest alone):
   `openssl ts -verify -digest "$(sha256sum {rid}.manifest.json | cut -d' ' -f1)" \\
   -in {rid}.timestamp.1.tsr -CAfile {rid}.tsa-chain.1.pem`
   prints `Verification: OK` (trust the TSA's CA yourself). For a batch token,
   `{rid}.addendum.1.json` holds the Merkle inclusion proof (RFC 9162); see the archiver README,
   "Verify the timestamp with OpenSSL".
6. **Custody**: `{rid}.custody.jsonl` holds the record's custody-log entries; each entry's `hash` is
   the sha256 of its RFC 8785 form without `hash`, and `prev` names the entry before it in the full log.
"""


def export(archive: Store, record_ids: list[str], dest: Path, *,
           passphrase: PassphraseSource) -> ExportResult:
    from archiver.cite import citation_data, render
    from store.fsutil import atomic_writer

    if not record_ids:
        raise UsageError("name at least one record to export")
    summaries = sorted({archive.resolve(r).record_id: archive.resolve(r) for r in record_ids}.values(),
                       key=lambda s: (s.captured_at, s.record_id))
    key = archive.keys.load_wacz_private(passphrase)
    spki = archive.keys.wacz_public_der()
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

    for summary in summaries:
        rid = summary.record_id
        m = archive.manifest(rid)
        base = f"provenance/{rid}"  # files are <base>.<name>: see _member()
        warc = m.artifact("warc")
        if warc is None:
            raise IntegrityError(f"record {rid} has no WARC to export")
        add_blob(f"archive/{rid}.warc.gz", warc.sha256)
        with archive.blobs.open(warc.sha256) as fh:
            cdx += cdxj_lines(fh, f"{rid}.warc.gz")
        pages.append(json.dumps({"id": rid, "url": m.subject.final_url, "ts": m.captured_at,
                                 "title": m.subject.title or m.subject.final_url}, ensure_ascii=False))
        add_blob(f"{base}.manifest.json", summary.manifest_sha256)
        for name, fname in (("text", "text.txt"), ("tls-chain", "tls-chain.pem")):
            art = m.artifact(name)
            if art is not None:
                add_blob(f"{base}.{fname}", art.sha256)
        if m.signature is not None:
            pub = archive.catalog.signer_key_blob(m.signature.key_id)
            if pub is not None:
                add_blob(f"{base}.signer.pub.pem", pub)
        n_ts = 0
        for i, (sha, add) in enumerate(archive.addenda(rid), 1):
            add_blob(f"{base}.addendum.{i}.json", sha)
            if add is not None and add.timestamp is not None:
                n_ts += 1
                add_blob(f"{base}.timestamp.{n_ts}.tsr", add.timestamp.token_sha256)
                add_blob(f"{base}.tsa-chain.{n_ts}.pem", add.timestamp.chain_sha256)
        # the record's evidence history; reads (get, verify, export, certificate) are left out so
        # that exporting the same records twice gives the same bytes
        lines = [e.to_json() for e in archive.custody.for_record(rid) if e.event not in _READ_EVENTS]
        add_bytes(f"{base}.custody.jsonl", "".join(line + "\n" for line in lines).encode("utf-8"))
        add_bytes(f"{base}.citation.txt", render(citation_data(archive, rid), "record").encode("utf-8"))
    # a plain CDXJ: ReplayWeb.page (wabac.js) loads `.cdx`/`.cdxj` whole, and reads a `.cdx.gz` only as
    # ZipNum blocks named by an `index.idx`; an evidence bundle holds few records, so plain is right
    add_bytes("indexes/index.cdxj", ("\n".join(sorted(cdx)) + "\n").encode("utf-8"))
    add_bytes("pages/pages.jsonl", ("\n".join(pages) + "\n").encode("utf-8"))
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

    for s in summaries:
        archive.custody.append("export", actor=archive.operator().name or "unknown", record_id=s.record_id,
                               subject_sha256=s.manifest_sha256, detail={"bundle_sha256": whole.hexdigest(),
                                                                         "to": str(dest)})
    return ExportResult(str(dest), tuple(s.record_id for s in summaries), dest.stat().st_size, whole.hexdigest(),
                        dp_hash, wacz_fingerprint(spki))


# ---- reading a bundle safely -------------------------------------------------------------------------
def _safe_name(name: str) -> bool:
    if not name or name.startswith("/") or "\\" in name or "\x00" in name:
        return False
    parts = PurePosixPath(name).parts
    return not any(p in ("..", "") for p in parts) and ":" not in parts[0]


class Bundle:
    """An opened WACZ whose member names and sizes were checked before anything is read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise IntegrityError(f"{path} is not a readable zip/WACZ file: {exc}") from exc
        self.problems: list[str] = []
        total = 0
        self.names: dict[str, zipfile.ZipInfo] = {}
        for info in self.zf.infolist():
            if not _safe_name(info.filename):
                self.problems.append(f"unsafe member name {info.filename!r} (absolute or path traversal)")
                continue
            if info.file_size > MAX_ENTRY_BYTES:
                self.problems.append(f"member {info.filename} declares {info.file_size:,} bytes, over the "
                                     f"{MAX_ENTRY_BYTES:,}-byte limit")
                continue
            if info.compress_size and info.file_size > (64 << 20) and \
                    info.file_size / info.compress_size > MAX_RATIO:
                self.problems.append(f"member {info.filename} expands {info.file_size // info.compress_size}x "
                                     "(zip bomb?)")
                continue
            total += info.file_size
            self.names[info.filename] = info
        if total > MAX_TOTAL_BYTES:
            self.problems.append(f"members declare {total:,} bytes in all, over the {MAX_TOTAL_BYTES:,} limit")

    @contextmanager
    def open(self, name: str) -> Iterator[BinaryIO]:
        with self.zf.open(self.names[name]) as fh:
            yield fh  # type: ignore[misc]

    def read(self, name: str, limit: int = 64 << 20) -> bytes:
        with self.open(name) as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise IntegrityError(f"bundle member {name} is larger than expected")
        return data

    def sha256(self, name: str) -> tuple[str | None, int]:
        h = hashlib.sha256()
        n = 0
        try:
            with self.open(name) as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
                    n += len(chunk)
        # CRC errors, truncation; an unknown compression method (NotImplementedError) or the
        # encryption flag (RuntimeError) after a flipped header bit
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError):
            return None, n
        return h.hexdigest(), n

    def close(self) -> None:
        self.zf.close()


# ---- verification ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BundleTrust:
    keyring: dict[str, object]  # Ed25519 key id → key (the verifier's own keyring)
    fingerprints: frozenset[str]  # --trust-key values (Ed25519 key ids or P-384 fingerprints)
    anchors: list[x509.Certificate]
    tolerance: float = 600.0


def verify_bundle(path: Path, trust: BundleTrust) -> list[Verification]:
    """Every check a store verify runs, from the bundle alone, plus the package's own hashes and
    signature. Returns one report for the package and one per record."""
    try:
        bundle = Bundle(path)
    except IntegrityError as exc:
        return [Verification(str(path), (Check("bundle.zip", FAIL, exc.message),))]
    try:
        return _verify_open(bundle, trust)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError,
            IntegrityError) as exc:
        # damage in the container itself (local headers that contradict the directory, …)
        message = exc.message if isinstance(exc, IntegrityError) else f"{type(exc).__name__}: {exc}"
        return [Verification(str(path), (Check("bundle.zip", FAIL, f"the zip container is damaged: {message}"),))]
    finally:
        bundle.close()


def _verify_open(b: Bundle, trust: BundleTrust) -> list[Verification]:
    from archiver.provenance.keys import wacz_fingerprint

    checks: list[Check] = []
    if b.problems:
        checks.append(Check("bundle.zip", FAIL, "; ".join(b.problems[:5])))
        return [Verification(str(b.path), tuple(checks))]
    checks.append(Check("bundle.zip", PASS, f"{len(b.names)} members, names and sizes safe"))
    if "datapackage.json" not in b.names or "datapackage-digest.json" not in b.names:
        checks.append(Check("bundle.datapackage", FAIL, "datapackage.json or datapackage-digest.json is missing"))
        return [Verification(str(b.path), tuple(checks))]
    dp_bytes = b.read("datapackage.json")
    try:
        dp = json.loads(dp_bytes)
        digest = json.loads(b.read("datapackage-digest.json"))
        resources = {r["path"]: r for r in dp["resources"]}
    except (ValueError, KeyError, TypeError) as exc:
        checks.append(Check("bundle.datapackage", FAIL, f"unreadable datapackage: {exc}"))
        return [Verification(str(b.path), tuple(checks))]
    bad = []
    hashes: dict[str, str] = {}
    for rpath, res in sorted(resources.items()):
        if rpath not in b.names:
            bad.append(f"{rpath} is listed but missing")
            continue
        actual, size = b.sha256(rpath)
        if actual is None:
            bad.append(f"{rpath} is truncated or corrupt in the zip")
        elif f"sha256:{actual}" != res.get("hash") or size != res.get("bytes"):
            bad.append(f"{rpath} hashes to sha256:{actual} ({size} bytes), datapackage says {res.get('hash')}")
        else:
            hashes[rpath] = actual
    extra = sorted(set(b.names) - set(resources) - {"datapackage.json", "datapackage-digest.json"})
    if extra:
        bad.append(f"members not listed in datapackage.json: {', '.join(extra[:5])}")
    checks.append(Check("bundle.resources", FAIL if bad else PASS,
                        "; ".join(bad[:5]) if bad else f"{len(resources)} resources match their sha256"))
    dp_hash = f"sha256:{hashlib.sha256(dp_bytes).hexdigest()}"
    signed = digest.get("signedData") if isinstance(digest, dict) else None
    signed = signed if isinstance(signed, dict) else {}
    problems = []
    if digest.get("hash") != dp_hash or signed.get("hash") != dp_hash:
        problems.append(f"datapackage.json hashes to {dp_hash}, the digest file says {digest.get('hash')}")
    # the digest file's other fields are not covered by the signature: hold them to what they must be
    if set(digest) != {"path", "hash", "signedData"} or digest.get("path") != "datapackage.json":
        problems.append("the digest file has unexpected fields or names another path")
    if not {"hash", "signature", "publicKey", "created"} <= set(signed) <= {"hash", "signature", "publicKey",
                                                                           "created", "software"}:
        problems.append("signedData has missing or unexpected fields")
    if signed.get("created") != dp.get("created"):
        problems.append("signedData.created differs from datapackage.created")
    if "software" in signed and signed.get("software") != dp.get("software"):
        problems.append("signedData.software differs from datapackage.software")
    checks.append(Check("bundle.digest", FAIL if problems else PASS, "; ".join(problems) or dp_hash))
    pub = str(signed.get("publicKey", ""))
    if verify_p384(pub, str(signed.get("signature", "")), str(signed.get("hash", "")).encode("utf-8")):
        checks.append(Check("bundle.signature", PASS, "ECDSA P-384 over the datapackage hash (ReplayWeb.page form)"))
        fp = wacz_fingerprint(base64.b64decode(pub))
        checks.append(Check("bundle.signer.trusted", PASS if fp in trust.fingerprints else FAIL,
                            f"bundle signed by {fp}" + ("" if fp in trust.fingerprints else
                                                        ": untrusted (pass --trust-key FINGERPRINT if you know it)")))
    else:
        checks.append(Check("bundle.signature", FAIL, "the datapackage signature does not verify"))
    reports = [Verification(str(b.path), tuple(checks))]
    rids = sorted({PurePosixPath(p).name[: -len(".manifest.json")] for p in b.names
                   if p.startswith("provenance/") and p.endswith(".manifest.json")})
    if not rids:
        reports.append(Verification(str(b.path), (Check("bundle.records", FAIL, "no records in the bundle"),)))
    for rid in rids:
        reports.append(_verify_record(b, rid, hashes, trust))
    return reports


def _verify_record(b: Bundle, rid: str, hashes: dict[str, str], trust: BundleTrust) -> Verification:
    from archiver.provenance.keys import key_id_of, load_public_pem
    from archiver.provenance.signing import signature_valid
    from archiver.verify import addendum_check, token_checks, warc_checks

    base = f"provenance/{rid}"
    checks: list[Check] = []

    def intact(name: str) -> bytes | None:
        """A member's bytes, only if the datapackage hash check passed for it."""
        if name not in hashes:
            return None
        return b.read(name)

    mbytes = intact(f"{base}.manifest.json")
    if mbytes is None:
        return Verification(rid, (Check("manifest.hash", FAIL, "manifest missing or altered in the bundle"),))
    msha = hashlib.sha256(mbytes).hexdigest()
    try:
        m = Manifest.from_dict(json.loads(mbytes))
    except (ValueError, ArchiverError) as exc:
        return Verification(rid, (Check("manifest.schema", FAIL, f"manifest unreadable: {exc}"),))
    checks.append(Check("manifest.hash", PASS, f"sha256:{msha}"))
    checks.append(Check("manifest.schema", PASS if m.record_id == rid else FAIL,
                        m.schema if m.record_id == rid else f"manifest is for {m.record_id}, not {rid}"))
    pem = intact(f"{base}.signer.pub.pem")
    key = None
    if pem is not None:
        try:
            key = load_public_pem(pem)
        except ArchiverError:
            key = None
    sig = m.signature
    if sig is None or key is None or key_id_of(key) != sig.key_id:
        checks.append(Check("manifest.signature", FAIL, "no signer key for this manifest in the bundle"))
    elif signature_valid(m, key):
        checks.append(Check("manifest.signature", PASS, f"Ed25519 by {sig.key_id}"))
    else:
        checks.append(Check("manifest.signature", FAIL, f"signature does not verify with {sig.key_id}"))
    signer_trusted = sig is not None and (sig.key_id in trust.keyring or sig.key_id in trust.fingerprints)
    checks.append(Check("signer.trusted", PASS if signer_trusted else FAIL,
                        f"{sig.key_id if sig else 'no signer'} is "
                        + ("trusted" if signer_trusted else "not in your keyring: the bundle carrying a key proves "
                                                            "nothing (archiver keys trust, or --trust-key)")))
    warc = m.artifact("warc")
    wname = f"archive/{rid}.warc.gz"
    if warc is None or wname not in hashes:
        checks.append(Check("artifact.warc", FAIL, "WARC missing or altered in the bundle"))
    elif hashes[wname] != warc.sha256:
        checks.append(Check("artifact.warc", FAIL, f"bundle WARC is sha256:{hashes[wname]}, manifest says "
                                                   f"sha256:{warc.sha256}"))
    else:
        checks.append(Check("artifact.warc", PASS, f"sha256:{warc.sha256}"))
        checks.extend(warc_checks(lambda: b.open(wname), m))
    for name, fname in (("text", "text.txt"), ("tls-chain", "tls-chain.pem")):
        art = m.artifact(name)
        if art is not None:
            got = hashes.get(f"{base}.{fname}")
            checks.append(Check(f"artifact.{name}", PASS if got == art.sha256 else FAIL,
                                f"sha256:{art.sha256}" if got == art.sha256 else "missing or altered in the bundle"))
    n_ts = 0
    i = 1
    while f"{base}.addendum.{i}.json" in b.names:
        data = intact(f"{base}.addendum.{i}.json")
        add: Addendum | None = None
        if data is not None:
            try:
                add = Addendum.from_dict(json.loads(data))
            except (ValueError, ArchiverError):
                add = None
        kind = add.kind if add else "addendum"
        if add is not None and add.timestamp is not None:
            n_ts += 1
            prefix = f"timestamp.{n_ts}"
        else:
            prefix = f"{kind}.{i}"
        akey = key if (add and add.signature and sig and add.signature.key_id == sig.key_id) else None
        checks.append(addendum_check(f"{prefix}.addendum", add, data is not None, msha, rid, akey, signer_trusted))
        if add is not None and add.timestamp is not None:
            checks.extend(token_checks(prefix, add.timestamp, manifest_sha256=msha, captured_at=m.captured_at,
                                       token=intact(f"{base}.timestamp.{n_ts}.tsr"),
                                       stored_chain=intact(f"{base}.tsa-chain.{n_ts}.pem"), anchors=trust.anchors,
                                       tolerance=trust.tolerance, deferred=add.timestamp.deferred))
        i += 1
    if n_ts == 0:
        checks.append(Check("timestamp", SKIP, "no RFC 3161 token in the bundle"))
    checks.append(_custody_entries(intact(f"{base}.custody.jsonl"), rid, msha))
    return Verification(rid, tuple(checks))


def _custody_entries(data: bytes | None, rid: str, msha: str) -> Check:
    from store.custody import CustodyEntry

    if data is None:
        return Check("custody.record", FAIL, "custody entries missing or altered in the bundle")
    captured = False
    for n, line in enumerate(data.decode("utf-8").splitlines(), 1):
        try:
            entry = CustodyEntry.from_json(line)
        except (ValueError, KeyError, TypeError):
            return Check("custody.record", FAIL, f"custody entry {n} is unreadable")
        if entry.compute_hash() != entry.hash:
            return Check("custody.record", FAIL, f"custody entry {n} does not match its own hash")
        if entry.event == "capture" and entry.record_id == rid:
            captured = captured or entry.subject_sha256 == msha
    return Check("custody.record", PASS if captured else FAIL,
                 "capture entry names this manifest; every entry matches its hash" if captured
                 else "no capture entry for this manifest")


# ---- import ------------------------------------------------------------------------------------------
def import_bundle(archive: Store, path: Path, trust: BundleTrust, *, force: bool = False) -> tuple[
        list[Verification], list[str]]:
    """Verify, then add the records; blobs already present are not duplicated. A bundle that
    fails is refused (store untouched) unless ``force``, and then the import is marked."""
    reports = verify_bundle(path, trust)
    failed = [f"{r.subject}: {c.name}" for r in reports for c in r.failures]
    structural = [f for f in failed if ": bundle.zip" in f or ": manifest." in f or ": artifact.warc" in f
                  or ": bundle.datapackage" in f or ": bundle.resources" in f]
    if failed and (not force or structural):
        first = next(c for r in reports for c in r.failures)
        raise IntegrityError(f"bundle {path} does not verify: {first.name}: {first.detail[:300]}"
                             + (f" (and {len(failed) - 1} more failed check(s))" if len(failed) > 1 else "")
                             + "; nothing imported",
                             hint="inspect with `archiver verify BUNDLE`; --force imports a bundle whose only "
                                  "failures are trust or timestamp checks, marked as such")
    imported: list[str] = []
    b = Bundle(path)
    try:
        rids = [r.subject for r in reports[1:]]
        for rid in rids:
            if _import_record(archive, b, rid, forced_failures=[f for f in failed if f.startswith(f"{rid}:")]):
                imported.append(rid)
    finally:
        b.close()
    return reports, imported


def _import_record(archive: Store, b: Bundle, rid: str, forced_failures: list[str]) -> bool:
    from archiver.provenance.keys import key_id_of, load_public_pem

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
                warc_checks(lambda: b.open(f"archive/{rid}.warc.gz"), m, content_out=fh)
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
        addenda.append((add, archive.blobs.put_bytes(data)))
        i += 1
    warc = m.artifact("warc")
    if warc is not None and warc_sha != warc.sha256:
        raise IntegrityError(f"the bundle's WARC for {rid} is not the one its manifest names")
    sha = archive.blobs.put_bytes(mbytes)
    detail = {"bundle": str(b.path), "manifest_sha256": sha}
    if forced_failures:
        detail["forced"] = "; ".join(forced_failures)[:500]
    archive.custody.append("import-forced" if forced_failures else "import", actor=archive.operator().name or
                           "unknown", record_id=rid, subject_sha256=sha, detail=detail)
    archive.catalog.add_record(m, sha)
    for add, asha in addenda:
        archive.catalog.add_addendum(asha, add.record_id, add.kind, add.created_at)
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


def default_trust(archive: Store | None, trust_keys: list[str], tsa_certs: Path | None) -> BundleTrust:
    """The verifier's trust: its keyring and tsa.certs when a store is at hand, plus what it pins."""
    from archiver.provenance import tsp

    keyring: dict[str, object] = {}
    anchors: list[x509.Certificate] = []
    tolerance = 600.0
    fps = set()
    for k in trust_keys:
        k = k.strip().lower()
        fps.add(k if k.startswith("sha256:") else f"sha256:{k}")
    if archive is not None:
        keyring = dict(archive.keys.trusted())
        from archiver.stamping import trust_anchors

        anchors = trust_anchors(archive)
        tolerance = float(archive.config.int_("tsa.tolerance"))
        if archive.keys.wacz_public_path.is_file():
            from archiver.provenance.keys import wacz_fingerprint

            fps.add(wacz_fingerprint(archive.keys.wacz_public_der()))  # our own bundles
    if tsa_certs is not None:
        try:
            anchors = tsp.load_certs(tsa_certs.read_bytes())
        except OSError as exc:
            raise UsageError(f"cannot read {tsa_certs}: {exc.strerror}") from exc
    return BundleTrust(keyring=keyring, fingerprints=frozenset(fps), anchors=anchors, tolerance=tolerance)


__all__ = ["BundleTrust", "ExportResult", "export", "import_bundle", "verify_bundle", "verify_p384"]
