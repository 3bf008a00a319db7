"""Reading a bundle safely and verifying it offline: the package's own checks (member names and
sizes, the datapackage hashes, the ReplayWeb.page signature, the key binding, rotation statements),
then, for each record, the same suite a store verify runs (``archiver.verify.run_suite``) over the
bundle as its evidence source (``bundle.source.BundleSource``). The verdict is computed from check
categories, never from their text."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import threading
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from archiver.errors import ArchiverError, IntegrityError
from archiver.records import Category, Check, Status, Verdict, Verification
from archiver.verify.artifacts import WarcLimits

if TYPE_CHECKING:
    from cryptography import x509

    from archiver.bundle.source import BundleIndex
    from archiver.provenance.keys import Rotation


from archiver.bundle.export import BINDING, Binding, read_binding, verify_p384
from archiver.bundle.zipcheck import shown

PASS, FAIL, SKIP = Status.PASS, Status.FAIL, Status.SKIPPED
INTEGRITY, TRUST, COMPLETENESS = Category.INTEGRITY, Category.TRUST, Category.COMPLETENESS
MAX_ENTRY_BYTES = 8 << 30  # one member; a WARC can be big, a 10 GB claim is refused
MAX_RATIO = 200  # declared/compressed beyond this on a large member smells like a zip bomb
#: all members inflated against the bundle's size: our bundles store their WARCs and deflate only small
#: text members, so they stay near 1; many members each just under the per-member checks do not
MAX_TOTAL_RATIO = 50
#: JSON values one member may hold (a record's manifest has a few hundred, a datapackage ~6 per member, a
#: CDXJ index ~10 per WARC record): parsed, a million small values take ~200 MB
MAX_JSON_NODES = 1_000_000




@dataclass(frozen=True, slots=True)
class BundleLimits:
    """How much work one bundle may cost (``verify.max_bundle_bytes``, ``verify.max_bundle_members``).

    ``max_bytes`` counts every byte inflated from the bundle's members while it is verified or
    imported, a member read twice counted twice: the declared sizes alone do not bound the work, since
    a thousand records may all name one large WARC. A bundle whose members declare more than the cap
    is refused before anything is inflated (each listed member is read at least once)."""

    max_bytes: int = 16 << 30
    max_members: int = 10_000


class BundleWorkExceeded(IntegrityError):
    """The bundle made us inflate more than ``verify.max_bundle_bytes``: the whole bundle is refused."""


class _Counted:
    """A member's stream whose every inflated byte is charged to the bundle's budget, as it streams."""

    def __init__(self, raw: IO[bytes], bundle: Bundle) -> None:
        self.raw = raw
        self.bundle = bundle

    def read(self, n: int | None = -1) -> bytes:
        """As ``read`` on the member (``n`` bytes unless it ends first), taken 1 MiB at a time so that
        a large read is charged, and refused, before it is whole."""
        left = None if n is None or n < 0 else n
        parts = []
        while left is None or left > 0:
            self.bundle.charge(0)  # already over: refuse at once
            data = self.raw.read(1 << 20 if left is None else min(left, 1 << 20))
            if not data:
                break
            self.bundle.charge(len(data))
            parts.append(data)
            if left is not None:
                left -= len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self.raw.seekable()

    def tell(self) -> int:
        return self.raw.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        """Seeking a deflated member inflates everything before the target again: charged like a read
        (the index check seeks to each page response it follows)."""
        here = self.raw.tell()
        to = self.raw.seek(offset, whence)
        if to > here:
            self.bundle.charge(to - here)
        elif to < here:
            self.bundle.charge(to)
        return to

    def close(self) -> None:
        self.raw.close()


# ---- reading a bundle safely -------------------------------------------------------------------------
def _safe_name(name: str) -> bool:
    if not name or name.startswith("/") or "\\" in name or "\x00" in name:
        return False
    parts = PurePosixPath(name).parts
    return not any(p in ("..", "") for p in parts) and ":" not in parts[0]


class Bundle:
    """An opened WACZ whose member names and sizes were checked before anything is read."""

    def __init__(self, path: Path, fh: BinaryIO | None = None, limits: BundleLimits | None = None) -> None:
        """``fh``: the bundle's file, opened once by the caller, so that what is verified and what is
        then imported are the same bytes even if the path is replaced in between (``path`` names it)."""
        from archiver.bundle.zipcheck import ZipStructureError, check_zip

        self.path = path
        self.limits = limits or BundleLimits()
        self.inflated = 0  # bytes read out of members so far, every read counted
        self.over_budget: str | None = None  # why the work was stopped (``verify.max_bundle_bytes``)
        self._charging = threading.Lock()  # the record suite hashes artifacts on a second thread
        self._own: BinaryIO | None = None
        try:
            if fh is None:
                # one file object for the strict reading and for zipfile: both see the same bytes
                fh = self._own = open(path, "rb")  # closed by close()
            # the ZIP's structure read strictly before zipfile trusts it (zipfile keeps the last of two
            # same-named members, skips prepended bytes, believes the directory over local headers)
            strict = check_zip(fh)
            fh.seek(0)
            self.zf = zipfile.ZipFile(fh)
        # NotImplementedError: a "version needed to extract" zipfile does not support (one byte set so)
        except (ZipStructureError, zipfile.BadZipFile, OSError, NotImplementedError, ValueError, EOFError) as exc:
            self.close()
            raise IntegrityError(f"{path} is not a readable zip/WACZ file: {exc}") from exc
        # the bytes a standard reader shows would differ from those we verify: each is a problem
        self.problems: list[str] = []
        if strict.problems:
            self.problems.append("the zip would read differently in other readers, refused before reading any "
                                 "member: " + "; ".join(strict.problems))
        total = 0
        self.names: dict[str, zipfile.ZipInfo] = {}
        count = len(self.zf.infolist())
        if count > self.limits.max_members:
            self.problems.append(f"{count:,} members, over verify.max_bundle_members ({self.limits.max_members:,}); "
                                 "refused before reading any member (raise the setting only for a bundle you "
                                 "expect to hold that many)")
            return
        for info in self.zf.infolist():
            if not _safe_name(info.filename):
                self.problems.append(f"unsafe member name {shown(repr(info.filename))} (absolute or path traversal)")
                continue
            if info.file_size > MAX_ENTRY_BYTES:
                self.problems.append(f"member {shown(info.filename)} declares {info.file_size:,} bytes, over the "
                                     f"{MAX_ENTRY_BYTES:,}-byte limit")
                continue
            if info.compress_size and info.file_size > (64 << 20) and \
                    info.file_size / info.compress_size > MAX_RATIO:
                self.problems.append(f"member {shown(info.filename)} expands {info.file_size // info.compress_size}x "
                                     "(zip bomb?)")
                continue
            total += info.file_size
            self.names[info.filename] = info
        if total > self.limits.max_bytes:
            self.problems.append(f"members declare {total:,} bytes in all, over verify.max_bundle_bytes "
                                 f"({self.limits.max_bytes:,}); refused before inflating any (raise the setting "
                                 "only for a bundle you expect to be that large)")
        on_disk = max(1, sum(i.compress_size for i in self.names.values()))
        if total > (64 << 20) and total / on_disk > MAX_TOTAL_RATIO:
            self.problems.append(f"members declare {total:,} bytes from {on_disk:,} stored: {total // on_disk}x, "
                                 f"over the {MAX_TOTAL_RATIO}x a bundle can reach (zip bomb?); nothing was inflated")

    def charge(self, n: int) -> None:
        """Count ``n`` more inflated bytes; past ``verify.max_bundle_bytes`` every read fails from now on."""
        with self._charging:
            self.inflated += n
        if self.inflated > self.limits.max_bytes and self.over_budget is None:
            self.over_budget = (f"verifying it inflated over {self.limits.max_bytes:,} bytes from its members "
                                f"(verify.max_bundle_bytes), each read counted: stopped there, the bundle is "
                                "refused (raise the setting only for a bundle you expect to be that large)")
        if self.over_budget is not None:
            raise BundleWorkExceeded(self.over_budget)

    @contextmanager
    def open(self, name: str) -> Iterator[BinaryIO]:
        with self.zf.open(self.names[name]) as fh:
            yield _Counted(fh, self)  # type: ignore[misc]

    def read(self, name: str, limit: int = 64 << 20) -> bytes:
        with self.open(name) as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise IntegrityError(f"bundle member {shown(name)} is larger than expected")
        if name.endswith((".json", ".jsonl", ".cdxj")):
            # parsed, each JSON value costs ~50-200 bytes of memory for 2-8 bytes of text: count them
            # first (objects, arrays, and every value after a comma: an overestimate, since brackets and
            # commas inside strings count too) so 63 MiB of {} or of "a","a",… is refused unparsed
            nodes = data.count(b"{") + data.count(b"[") + data.count(b",")
            if nodes > MAX_JSON_NODES:
                self.over_budget = self.over_budget or (
                    f"member {shown(name)} holds {nodes:,} JSON values, over the {MAX_JSON_NODES:,} one member "
                    "may hold; refused before parsing it")
                raise BundleWorkExceeded(self.over_budget)
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
        # encryption flag (RuntimeError) after a flipped header bit (not BundleWorkExceeded: it propagates)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError):
            return None, n
        return h.hexdigest(), n

    def close(self) -> None:
        if hasattr(self, "zf"):
            self.zf.close()
        if self._own is not None:
            self._own.close()


# ---- verification ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BundleTrust:
    keyring: dict[str, object]  # Ed25519 key id → key (the verifier's own keyring)
    fingerprints: frozenset[str]  # --trust-key values (Ed25519 key ids or P-384 fingerprints), own bundle key
    anchors: list[x509.Certificate]
    tolerance: float = 600.0
    pinned: frozenset[str] = frozenset()  # the --trust-key values alone (import adds them to the keyring)
    warc_limits: WarcLimits = field(default_factory=WarcLimits)  # how far WARCs may inflate (verify.max_*_bytes)
    bundle_limits: BundleLimits = field(default_factory=BundleLimits)  # the whole bundle's work
    #: transparency-log verifier keys the verifier trusts → why (its own log, keyring/log/, --trust-log-key)
    log_keys: dict[str, str] = field(default_factory=dict)
    pinned_log_keys: frozenset[str] = frozenset()  # the --trust-log-key values alone (import pins them)


def bundle_verdict(reports: list[Verification]) -> Verdict:
    """The bundle's verdict: the worst of its package report and its record reports."""
    from archiver.verify import overall

    return overall(reports)


def verify_bundle(path: Path, trust: BundleTrust, *, fh: BinaryIO | None = None) -> list[Verification]:
    """Every check a store verify runs, from the bundle alone, plus the package's own hashes and
    signature. Returns one report for the package and one per record."""
    try:
        bundle = Bundle(path, fh, trust.bundle_limits)
    except IntegrityError as exc:
        return [Verification(str(path), (Check("bundle.zip", FAIL, INTEGRITY, exc.message),))]
    try:
        reports = _verify_open(bundle, trust)
        if bundle.over_budget is not None:  # a check caught the refusal and went on: the bundle is still refused
            raise BundleWorkExceeded(bundle.over_budget)
        return reports
    except BundleWorkExceeded as exc:
        return [Verification(str(path), (Check("bundle.zip", FAIL, INTEGRITY, f"refused: {exc.message}"),))]
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError,
            IntegrityError) as exc:
        # damage in the container itself (local headers that contradict the directory, …)
        message = exc.message if isinstance(exc, IntegrityError) else f"{type(exc).__name__}: {exc}"
        return [Verification(str(path), (Check("bundle.zip", FAIL, INTEGRITY,
                                               f"the zip container is damaged: {message}"),))]
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError, UnicodeError) as exc:
        # a parser (warcio, json, a CDXJ line) met bytes it was not written for: the bundle is refused in
        # one line, never a traceback (each check catches what it expects; this is the floor under them)
        what = "nested too deeply" if isinstance(exc, RecursionError) else f"{type(exc).__name__}: {exc}"
        return [Verification(str(path), (Check("bundle.zip", FAIL, INTEGRITY,
                                               f"refused: a member could not be read ({shown(what, 200)})"),))]
    finally:
        bundle.close()


def _verify_open(b: Bundle, trust: BundleTrust) -> list[Verification]:
    from archiver.bundle.source import BundleIndex, BundleSource
    from archiver.verify import run_suite
    from archiver.verify.source import foreign_record_id

    checks: list[Check] = []
    if b.problems:
        checks.append(Check("bundle.zip", FAIL, INTEGRITY, "; ".join(b.problems[:5])))
        return [Verification(str(b.path), tuple(checks))]
    checks.append(Check("bundle.zip", PASS, INTEGRITY, f"{len(b.names)} members, names and sizes safe"))
    if "datapackage.json" not in b.names or "datapackage-digest.json" not in b.names:
        checks.append(Check("bundle.datapackage", FAIL, COMPLETENESS,
                            "datapackage.json or datapackage-digest.json is missing"))
        return [Verification(str(b.path), tuple(checks))]
    dp_bytes = b.read("datapackage.json")
    try:
        dp = json.loads(dp_bytes)
        digest = json.loads(b.read("datapackage-digest.json"))
        resources = {r["path"]: r for r in dp["resources"]}
        declared = {p: str(r.get("hash", "")).removeprefix("sha256:") for p, r in resources.items()}
    except RecursionError:  # Python's JSON parser recurses per level: the depth cap is the recursion limit
        checks.append(Check("bundle.datapackage", FAIL, INTEGRITY, "unreadable datapackage: JSON nested deeper than "
                                                                   f"{sys.getrecursionlimit():,} levels"))
        return [Verification(str(b.path), tuple(checks))]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        checks.append(Check("bundle.datapackage", FAIL, INTEGRITY, f"unreadable datapackage: {exc}"))
        return [Verification(str(b.path), tuple(checks))]
    actual: dict[str, str | None] = {}
    sizes: dict[str, int] = {}
    checks.append(_resources_check(b, resources, actual, sizes))
    checks.append(_digest_check(dp, dp_bytes, digest))
    keys, key_problems = _carried_keys(b, declared, actual)
    rotations, rot_problems = _carried_rotations(b, declared, actual)
    index = BundleIndex(b, declared, actual, sizes, keys, rotations, trust)
    if rot_problems or key_problems:
        checks.append(Check("bundle.keys", FAIL, INTEGRITY, "; ".join((key_problems + rot_problems)[:5])))
    elif rotations:
        checks.append(Check("bundle.keys", PASS, INTEGRITY, f"{len(keys)} public key(s); "
                            + "; ".join(f"{r.old_key_id} rotated to {r.new_key_id} on {r.rotated_at} (signed by both)"
                                        for r in rotations)))
    signed = digest.get("signedData") if isinstance(digest, dict) else None
    checks.extend(_signature_checks(b, signed if isinstance(signed, dict) else {}, actual, declared, index))
    reports = [Verification(str(b.path), tuple(checks))]
    rids = sorted({PurePosixPath(p).name[: -len(".manifest.json")] for p in b.names
                   if p.startswith("provenance/") and p.endswith(".manifest.json")})
    if not rids:
        reports.append(Verification(str(b.path), (Check("bundle.records", FAIL, COMPLETENESS,
                                                        "no records in the bundle"),)))
    for rid in rids:
        reports.append(foreign_record_id(rid, "the bundle") or run_suite(BundleSource(index, rid)))
    return reports


def _resources_check(b: Bundle, resources: dict[str, dict[str, object]], actual: dict[str, str | None],
                     sizes: dict[str, int]) -> Check:
    """Every listed member is there with the listed hash, and nothing is there unlisted (what a
    verdict covers is exactly what a standard reader will show). Fills ``actual`` and ``sizes``."""
    altered, missing = [], []
    for rpath, res in sorted(resources.items()):
        if rpath not in b.names:
            missing.append(f"{shown(rpath)} is listed but missing")
            continue
        got, size = b.sha256(rpath)
        actual[rpath], sizes[rpath] = got, size
        if got is None:
            altered.append(f"{shown(rpath)} is truncated or corrupt in the zip")
        elif f"sha256:{got}" != res.get("hash") or size != res.get("bytes"):
            altered.append(f"{shown(rpath)} hashes to sha256:{got} ({size} bytes), datapackage says "
                           f"{shown(str(res.get('hash')))}")
    extra = sorted(set(b.names) - set(resources) - {"datapackage.json", "datapackage-digest.json"})
    if extra:
        altered.append(f"members not listed in datapackage.json: {', '.join(shown(e) for e in extra[:5])}"
                       + (f" (and {len(extra) - 5} more)" if len(extra) > 5 else ""))
    bad = altered + missing
    return Check("bundle.resources", FAIL if bad else PASS, INTEGRITY if altered or not bad else COMPLETENESS,
                 "; ".join(bad[:5]) if bad else f"{len(resources)} resources match their sha256")


def _digest_check(dp: dict[str, object], dp_bytes: bytes, digest: dict[str, object]) -> Check:
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
    return Check("bundle.digest", FAIL if problems else PASS, INTEGRITY, "; ".join(problems) or dp_hash)


def _intact(b: Bundle, path: str, declared: dict[str, str], actual: dict[str, str | None]) -> bytes | None:
    return b.read(path) if path in declared and actual.get(path) == declared[path] else None


def _carried_keys(b: Bundle, declared: dict[str, str], actual: dict[str, str | None]) -> tuple[
        dict[str, Any], list[str]]:
    """The Ed25519 public keys the bundle carries (``*.pub.pem``), by the key id computed from each."""
    from archiver.provenance.keys import key_id_of, load_public_pem

    keys: dict[str, Any] = {}
    problems: list[str] = []
    for path in sorted(p for p in declared if p.startswith("provenance/") and p.endswith(".pub.pem")):
        data = _intact(b, path, declared, actual)
        if data is None:
            continue  # bundle.resources reports it
        try:
            key = load_public_pem(data, source=path)
        except ArchiverError:
            problems.append(f"{path} is not an Ed25519 public key")
            continue
        keys[key_id_of(key)] = key
    return keys, problems


def _carried_rotations(b: Bundle, declared: dict[str, str], actual: dict[str, str | None]) -> tuple[
        list[Rotation], list[str]]:
    from archiver.provenance.keys import read_rotation

    out: list[Rotation] = []
    problems: list[str] = []
    for path in sorted(p for p in declared if p.startswith("provenance/key-rotation.")):
        data = _intact(b, path, declared, actual)
        if data is None:
            continue
        try:
            out.append(read_rotation(data))
        except IntegrityError as exc:
            problems.append(f"{path}: {exc.message}")
    return out, problems


def _signature_checks(b: Bundle, signed: dict[str, object], actual: dict[str, str | None],
                      declared: dict[str, str], index: BundleIndex) -> list[Check]:
    """The package signature (ReplayWeb.page's form), the operator key's binding of the bundle key,
    and whether a key the verifier trusts vouches for the package."""
    from archiver.provenance.keys import wacz_fingerprint

    pub = str(signed.get("publicKey", ""))
    if not verify_p384(pub, str(signed.get("signature", "")), str(signed.get("hash", "")).encode("utf-8")):
        return [Check("bundle.signature", FAIL, INTEGRITY, "the datapackage signature does not verify")]
    checks = [Check("bundle.signature", PASS, INTEGRITY, "ECDSA P-384 over the datapackage hash (ReplayWeb.page "
                                                         "form)")]
    fp = wacz_fingerprint(base64.b64decode(pub))
    binding: Binding | None = None
    if BINDING not in b.names:
        checks.append(Check("bundle.key-binding", SKIP, COMPLETENESS, "no operator key binding in the bundle"))
    elif (data := _intact(b, BINDING, declared, actual)) is None:
        checks.append(Check("bundle.key-binding", FAIL, INTEGRITY, "the key binding is missing from the "
                                                                   "datapackage or altered"))
    else:
        try:
            binding = read_binding(data, pub)
        except IntegrityError as exc:
            checks.append(Check("bundle.key-binding", FAIL, INTEGRITY, exc.message))
        else:
            checks.append(Check("bundle.key-binding", PASS, INTEGRITY, f"bundle key {fp} is vouched for by "
                                                                       f"operator key {binding.operator_key_id} "
                                                                       "(Ed25519)"))
    how = index.trust.why(binding.operator_key_id) if binding is not None else None
    if fp in index.trust_in.fingerprints:
        checks.append(Check("bundle.signer.trusted", PASS, TRUST, f"bundle signed by {fp}, a pinned key"))
    elif binding is not None and how is not None:
        checks.append(Check("bundle.signer.trusted", PASS, TRUST, f"bundle signed by {fp} for operator key "
                                                                  f"{binding.operator_key_id}, which is {how}"))
    else:
        who = f"operator key {binding.operator_key_id}" if binding is not None else f"bundle key {fp}"
        checks.append(Check("bundle.signer.trusted", FAIL, TRUST, f"bundle signed by {who}: not trusted (pass "
                                                                  "--trust-key KEY_ID if you know it)"))
    return checks
