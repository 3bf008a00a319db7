"""A record in a bundle as an evidence source for the one verification suite (``archiver.verify``).

Bytes are found by the sha256 the record names, among the members whose bytes match the hash the
signed datapackage lists for them; a member listed with that hash but holding other bytes is
*altered* (integrity), a hash no member is listed with is *absent* (completeness). The keys the
bundle carries serve to check signatures; whether any of them is trusted is the verifier's keyring,
its pinned keys, and the rotation statements those keys signed — never the bundle's say-so.
"""

from __future__ import annotations

import dataclasses
import hashlib
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, BinaryIO

from archiver.bundle.export import LOG_PROOF, LOG_VKEY
from archiver.errors import ArchiverError
from archiver.records import Addendum, Category, Check, Manifest, Status
from archiver.verify import Absent, AddendumRef, TrustDecision
from archiver.verify.source import parse_custody

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from archiver.bundle.read import Bundle, BundleTrust
    from archiver.bundle.replayindex import ReplayIndex
    from archiver.provenance.keys import Rotation
    from archiver.records import WaybackEvidence
    from store.custody import CustodyEntry

MISSING, ALTERED = Category.COMPLETENESS, Category.INTEGRITY
CARRIED = {"warc": "archive/{rid}.warc.gz", "text": "provenance/{rid}.text.txt",
           "tls-chain": "provenance/{rid}.tls-chain.pem"}


class BundleIndex:
    """What the package check learned, shared by every record of the bundle: each listed member's
    declared and actual sha256, the public keys carried, and the rotation statements that hold."""

    def __init__(self, bundle: Bundle, declared: dict[str, str], actual: dict[str, str | None],
                 sizes: dict[str, int], keys: dict[str, Ed25519PublicKey], rotations: list[Rotation],
                 trust: BundleTrust) -> None:
        self.bundle = bundle
        self.declared = declared  # path → sha256 the datapackage lists
        self.actual = actual  # path → sha256 of its bytes (None: unreadable), for listed members present
        self.sizes = sizes
        self.intact = {sha: p for p, sha in declared.items() if actual.get(p) == sha}
        self.listed = {sha: p for p, sha in declared.items()}
        self.keys = keys
        self.trust_in = trust
        roots = {k: "in your keyring" for k in trust.keyring}
        roots.update({k: "pinned (--trust-key)" for k in trust.fingerprints if k not in roots})
        by_new: dict[str, list[Rotation]] = {}
        for rot in rotations:
            by_new.setdefault(rot.new_key_id, []).append(rot)
        self.trust = TrustDecision(roots, lambda kid: by_new.get(kid, []))
        self.replay: ReplayIndex | None = None  # the CDXJ index checked once, by the first record that asks


class BundleSource:
    """One record of an opened, package-checked bundle."""

    where = "the bundle"

    def __init__(self, index: BundleIndex, record_id: str) -> None:
        self.ix = index
        self.record_id = record_id
        self.base = f"provenance/{record_id}"
        self.trust = index.trust
        self.tolerance = index.trust_in.tolerance
        # every record's WARC reading is charged to the one budget of the bundle (verify.max_bundle_bytes)
        self.warc_limits = dataclasses.replace(index.trust_in.warc_limits, charge=index.bundle.charge)
        self._custody_bytes: bytes | Absent | None = None
        self._parsed: list[Manifest | None] = []

    def _member(self, path: str) -> bytes | Absent:
        if path not in self.ix.declared:
            return Absent(MISSING, f"is not in the bundle ({path})")
        if path not in self.ix.actual:
            return Absent(MISSING, f"is listed but missing from the bundle ({path})")
        if self.ix.actual[path] != self.ix.declared[path]:
            return Absent(ALTERED, f"is altered in the bundle ({path})")
        return self.ix.bundle.read(path, limit=max(self.ix.sizes.get(path, 0), 64 << 20))

    def manifest(self) -> tuple[bytes | Absent, str]:
        path = f"{self.base}.manifest.json"
        got = self._member(path)
        if isinstance(got, Absent) and got.category is ALTERED and self.ix.actual.get(path) is not None:
            got = self.ix.bundle.read(path)  # altered: the suite checks what is there and says so
        return got, self.ix.declared.get(path, "")

    def index_mismatches(self, manifest: Manifest) -> list[str]:
        return [] if manifest.record_id == self.record_id else ["record_id"]

    def carries(self, artifact: str) -> bool:
        return artifact in CARRIED

    def _path_of(self, sha256: str) -> str | None:
        """The member holding ``sha256``, intact first, then one listed with it, then the member the
        layout puts the record's artifact in (whatever it now holds)."""
        path = self.ix.intact.get(sha256) or self.ix.listed.get(sha256)
        if path is None:
            m = self._manifest_obj()
            art = next((a for a in m.artifacts if a.sha256 == sha256), None) if m else None
            if art is not None and art.name in CARRIED:
                candidate = CARRIED[art.name].format(rid=self.record_id)
                path = candidate if candidate in self.ix.declared else None
        return path

    def _manifest_obj(self) -> Manifest | None:
        import json

        if not self._parsed:
            data, _ = self.manifest()
            try:
                self._parsed.append(None if isinstance(data, Absent) else Manifest.from_dict(json.loads(data)))
            except (ValueError, ArchiverError):
                self._parsed.append(None)
        return self._parsed[0]

    def read(self, sha256: str) -> bytes | Absent:
        path = self._path_of(sha256)
        if path is None:
            return Absent(MISSING, f"(sha256:{sha256[:16]}…) is not in the bundle")
        got = self._member(path)
        if isinstance(got, bytes) and hashlib.sha256(got).hexdigest() != sha256:
            return Absent(ALTERED, f"is altered in the bundle ({path})")
        return got

    def rehash(self, sha256: str) -> tuple[str, int] | Absent:
        path = self._path_of(sha256)
        if path is None:
            return Absent(MISSING, f"sha256:{sha256} is not in the bundle")
        if path not in self.ix.actual:
            return Absent(MISSING, f"{path} is listed but missing from the bundle")
        actual = self.ix.actual[path]
        if actual is None:
            return Absent(ALTERED, f"{path} is truncated or corrupt in the zip")
        return actual, self.ix.sizes.get(path, 0)

    def open(self, sha256: str) -> AbstractContextManager[BinaryIO]:
        path = self._path_of(sha256)
        if path is None:
            raise FileNotFoundError(sha256)
        return self.ix.bundle.open(path)

    def addenda(self) -> list[AddendumRef]:
        import json

        out = []
        i = 1
        while (path := f"{self.base}.addendum.{i}.json") in self.ix.bundle.names or path in self.ix.declared:
            sha = self.ix.declared.get(path) or self.ix.actual.get(path) or ""
            data = self._member(path)
            kind = None
            if isinstance(data, bytes):
                try:
                    kind = Addendum.from_dict(json.loads(data)).kind
                except (ValueError, ArchiverError):
                    kind = None
            out.append(AddendumRef(sha, kind))
            i += 1
        return out

    def public_key(self, key_id: str) -> Ed25519PublicKey | None:
        return self.ix.keys.get(key_id)

    def anchors(self) -> list[x509.Certificate]:
        return self.ix.trust_in.anchors

    def _custody(self) -> bytes | Absent:
        if self._custody_bytes is None:
            self._custody_bytes = self._member(f"{self.base}.custody.jsonl")
        return self._custody_bytes

    def custody_entries(self) -> list[CustodyEntry] | Absent:
        data = self._custody()
        if isinstance(data, Absent):
            return data
        return parse_custody(data)

    def custody_file(self) -> bytes | None:
        data = self._custody()
        return data if isinstance(data, bytes) else None

    def carried_custody(self, sha256: str) -> bytes | Absent:
        """Only ever a prefix of the custody file (``custody_file``): not there means altered."""
        return Absent(ALTERED, "is not at the start of the bundle's custody entries")

    def custody_chain(self) -> Check | None:
        return None  # a bundle holds the record's entries, not the whole log

    def predecessor(self, record_id: str) -> str | None:
        path = f"provenance/{record_id}.manifest.json"
        return self.ix.actual.get(path) if path in self.ix.declared else None

    def extra_checks(self, manifest: Manifest, manifest_sha256: str) -> list[Check]:
        from archiver.bundle.replayindex import index_check

        return [index_check(self.ix, self.record_id, manifest, self.warc_limits), self.log_check(manifest_sha256)]

    def log_check(self, manifest_sha256: str) -> Check:
        """``log.inclusion`` from the record's tlog-proof member, checked offline with a log key the
        verifier trusts, else with the one the bundle carries (which proves consistency, not trust)."""
        from archiver.verify.logproof import NAME, proof_inclusion

        path = LOG_PROOF.format(rid=self.record_id)
        if path not in self.ix.declared:
            return Check(NAME, Status.SKIPPED, MISSING, "the bundle carries no transparency-log proof for this "
                                                         "record (exported before the log, or by a store without one)")
        proof = self._member(path)
        if isinstance(proof, Absent):
            return Check(NAME, Status.FAIL, proof.category, f"the record's log proof {proof.why}")
        carried: str | None = None
        if LOG_VKEY in self.ix.declared:
            vkey = self._member(LOG_VKEY)
            if isinstance(vkey, Absent):
                return Check(NAME, Status.FAIL, vkey.category, f"the log's key {vkey.why}")
            try:
                carried = vkey.decode("utf-8").strip()
            except UnicodeDecodeError:
                return Check(NAME, Status.FAIL, ALTERED, f"{LOG_VKEY} is not a verifier key")
        return proof_inclusion(proof, carried, self.ix.trust_in.log_keys, self.record_id, manifest_sha256).check()

    def unstamped_hint(self) -> str:
        return "the bundle carries none"

    def wayback_still_there(self, evidence: WaybackEvidence) -> tuple[bool, str] | None:
        return None

