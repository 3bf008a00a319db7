"""Reading a bundle safely and verifying it offline: every check a store verify runs, from the bundle
alone, plus the package's hashes, signature and key binding, and a verdict that tells an intact
bundle whose signer you do not trust from a tampered one."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from archiver.errors import ArchiverError, IntegrityError
from archiver.records import Addendum, Check, Manifest, Status, Verification

if TYPE_CHECKING:
    from cryptography import x509


from archiver.bundle.export import BINDING, Binding, read_binding, verify_p384

PASS, FAIL, SKIP = Status.PASS, Status.FAIL, Status.SKIPPED
MAX_ENTRY_BYTES = 8 << 30  # one member; a WARC can be big, a 10 GB claim is refused
MAX_TOTAL_BYTES = 32 << 30
MAX_RATIO = 200  # declared/compressed beyond this on a large member smells like a zip bomb


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
    fingerprints: frozenset[str]  # --trust-key values (Ed25519 key ids or P-384 fingerprints), own bundle key
    anchors: list[x509.Certificate]
    tolerance: float = 600.0
    pinned: frozenset[str] = frozenset()  # the --trust-key values alone (import adds them to the keyring)


def is_trust_check(c: Check) -> bool:
    """A check that fails only because the verifier does not (yet) trust a key or a TSA; the bytes
    themselves may be intact."""
    return c.name.endswith(".trusted") or (c.name.endswith(".tsa") and "not trusted" in c.detail)


def bundle_verdict(reports: list[Verification]) -> Literal["verified", "intact-untrusted", "tampered"]:
    """``verified``; ``intact-untrusted`` (every hash and signature holds, but no key or TSA you trust
    vouches for it); or ``tampered`` (something does not match what was signed)."""
    failures = [c for r in reports for c in r.failures]
    if not failures:
        return "verified"
    return "intact-untrusted" if all(is_trust_check(c) for c in failures) else "tampered"


VERDICT_TEXT = {"verified": "VERIFIED", "intact-untrusted": "INTACT, SIGNER NOT TRUSTED", "tampered": "TAMPERED"}


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
        binding: Binding | None = None
        if BINDING not in b.names:
            checks.append(Check("bundle.key-binding", SKIP, "no operator key binding in the bundle"))
        elif BINDING not in hashes:
            checks.append(Check("bundle.key-binding", FAIL, "the key binding is missing from the datapackage "
                                                            "or altered"))
        else:
            try:
                binding = read_binding(b.read(BINDING), pub)
            except IntegrityError as exc:
                checks.append(Check("bundle.key-binding", FAIL, exc.message))
            else:
                checks.append(Check("bundle.key-binding", PASS, f"bundle key {fp} is vouched for by operator key "
                                                                f"{binding.operator_key_id} (Ed25519)"))
        if fp in trust.fingerprints:
            checks.append(Check("bundle.signer.trusted", PASS, f"bundle signed by {fp}, a pinned key"))
        elif binding is not None and (binding.operator_key_id in trust.fingerprints
                                      or binding.operator_key_id in trust.keyring):
            checks.append(Check("bundle.signer.trusted", PASS, f"bundle signed by {fp} for operator key "
                                                               f"{binding.operator_key_id}, which you trust"))
        else:
            who = f"operator key {binding.operator_key_id}" if binding is not None else f"bundle key {fp}"
            checks.append(Check("bundle.signer.trusted", FAIL, f"bundle signed by {who}: not trusted (pass "
                                                               "--trust-key KEY_ID if you know it)"))
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


def _content_of(b: Bundle, rid: str, m: Manifest, warc_checks: Any) -> bytes | None:
    """The record's content, decoded from the bundle's WARC (to make a derived text again)."""
    import io

    out = io.BytesIO()
    try:
        warc_checks(lambda: b.open(f"archive/{rid}.warc.gz"), m, content_out=out)
    except (ArchiverError, OSError, ValueError):
        return None
    return out.getvalue()


def _verify_record(b: Bundle, rid: str, hashes: dict[str, str], trust: BundleTrust) -> Verification:
    from archiver.provenance.keys import key_id_of, load_public_pem
    from archiver.provenance.signing import signature_valid
    from archiver.verify import addendum_check, derived_checks, token_checks, warc_checks

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
        # the addendum's integrity here; whether its signer is trusted is signer.trusted's to say
        checks.append(addendum_check(f"{prefix}.addendum", add, data is not None, msha, rid, akey, True))
        if add is not None and add.derived is not None:
            checks.extend(derived_checks(prefix, add.derived, m, intact(f"{base}.addendum.{i}.{add.derived.name}.md"),
                                         _content_of(b, rid, m, warc_checks) if wname in hashes else None))
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
