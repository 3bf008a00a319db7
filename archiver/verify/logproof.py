"""``log.inclusion``: is the record's signed manifest a leaf of a transparency log, under a signed
checkpoint? One check for both evidence sources, and the log keys a verifier trusts.

**Which key checks a proof, and what the answer is worth.** A bundle carries the log's verifier key
(``provenance/log.vkey``), but the bundle's say-so never makes a key trusted: with the carried key a
proof shows only that the bundle is consistent with itself (whoever made the bundle could have made
the log). So the key is looked up by the checkpoint's origin among the keys the *verifier* trusts —
its own store's log key and the keys pinned with ``--trust-log-key`` (``keyring/log/``):

* a trusted key for that origin checks the proof: PASS (integrity) "in the log … signed by log key K,
  which is trusted here"; a proof that fails it FAILs (integrity), and one that verifies only with
  the carried key of the same origin FAILs as *trust* (another key speaks for a log you know);
* no trusted key for the origin: the carried key checks it. PASS, category **context** — the proof
  adds information (an index and a checkpoint a third party can later compare with the log's
  published checkpoints) but vouches for nothing, so it can never turn a record's verdict, and the
  record's own signature trust is decided exactly as before; a proof that does not verify even with
  the key the bundle carries FAILs (integrity): the bundle contradicts itself;
* no proof (a bundle exported before the log, or by a store without a log key): SKIPPED. Its
  category is *completeness* as a label only: a SKIPPED check never changes a verdict, so a bundle
  from before the log still verifies. A proof listed in the datapackage but missing or altered is
  what it is for every member: FAIL, completeness or integrity.

For a record in a store the proof is made from the store's own log (read only: no sync, no
signing, so a verification and a page view write nothing): its manifest leaf, the latest checkpoint
and the inclusion proof from the catalog's tree, checked with the log's own key exactly as a
recipient checks a bundle's proof file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from archiver.errors import ArchiverError, UsageError
from archiver.records import Category, Check, Status

if TYPE_CHECKING:
    from archiver.ports import Store
    from archiver.tlog.log import StoredCheckpoint, TransparencyLog

NAME = "log.inclusion"
PASS, FAIL, SKIP = Status.PASS, Status.FAIL, Status.SKIPPED
OWN = "this store's own log key"
PINNED = "pinned (--trust-log-key)"


@dataclass(frozen=True, slots=True)
class Inclusion:
    """Where a record's manifest is in a log and what was proven: the check and the record page's line."""

    status: Status
    category: Category
    detail: str
    index: int | None = None
    size: int | None = None
    signed_at: str | None = None
    origin: str | None = None
    verified: bool = False

    def check(self) -> Check:
        return Check(NAME, self.status, self.category, self.detail)


def latest(log: TransparencyLog) -> StoredCheckpoint | None:
    """The log's latest signed checkpoint in one indexed query (``TransparencyLog.latest`` reads them
    all; a page view and ``verify --all`` ask once per record)."""
    from archiver.tlog.log import StoredCheckpoint

    with log.catalog.db() as d:
        row = d.one("SELECT size, root, origin, signed_at, note FROM tlog_checkpoints "
                    "WHERE size = (SELECT MAX(size) FROM tlog_checkpoints)")
    if row is None:
        return None
    size, root, origin, signed_at, note = row
    return StoredCheckpoint(int(size), bytes.fromhex(str(root)), str(origin), str(signed_at),
                            str(note).encode("utf-8"))


# ---- the verifier's trusted log keys -------------------------------------------------------------
def own_vkey(log: TransparencyLog) -> str | None:
    """This store's log key as its checkpoints name it (the latest checkpoint's origin: ``log.origin``
    may have been set since, and is refused for signing), None when the store has no log key."""
    from archiver.tlog.note import Verifier

    if not log.key.exists():
        return None
    cp = latest(log)
    origin = cp.origin if cp is not None else log.origin()
    return Verifier.of(origin, log.key.load(create=False).public_key()).vkey()


def _dir(keyring_dir: Path) -> Path:
    return keyring_dir / "log"


def trusted_log_keys(store: Store | None, pinned: frozenset[str] = frozenset()) -> dict[str, str]:
    """vkey → why it is trusted: the store's own log key, the keys pinned in its keyring, ``pinned``."""
    out: dict[str, str] = {}
    if store is not None:
        try:
            own = own_vkey(store.log)
        except ArchiverError:
            own = None
        if own is not None:
            out[own] = OWN
        folder = _dir(store.keys.keyring_dir)
        if folder.is_dir():
            for p in sorted(folder.glob("*.vkey")):
                out.setdefault(p.read_text("utf-8").strip(), PINNED)
    for v in pinned:
        out.setdefault(v, PINNED)
    return out


def check_vkey(vkey: str) -> str:
    """A log's verifier key as given on the command line: a parseable Ed25519 note key (type 0x01)."""
    from archiver.tlog.note import ED25519, Verifier

    v = Verifier.from_vkey(vkey)
    if v.sig_type != ED25519:
        raise UsageError(f"{vkey[:80]!r} is a cosigner key, not a log's key", hint="archiver log key prints a log's")
    return v.vkey()


def trust_log_key(store: Store, vkey: str, *, actor: str, source: str) -> bool:
    """Pin a log's verifier key in the store's keyring (``keyring/log/<hash>.vkey``) with a ``key-trust``
    custody entry; False when it was already there."""
    from store.fsutil import atomic_write_bytes

    vkey = check_vkey(vkey)
    path = _dir(store.keys.keyring_dir) / f"{hashlib.sha256(vkey.encode()).hexdigest()[:32]}.vkey"
    if path.is_file():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (vkey + "\n").encode("utf-8"))
    store.note("key-trust", actor=actor, detail={"log_key": vkey, "source": source})
    return True


# ---- the check --------------------------------------------------------------------------------------
def _origin(proof: bytes) -> str | None:
    from archiver.tlog.proofs import ProofFile

    try:
        cp = ProofFile.parse(proof).checkpoint
        return cp.split(b"\n", 1)[0].decode("utf-8")
    except (ArchiverError, UnicodeDecodeError):
        return None


def proof_inclusion(proof: bytes, carried_vkey: str | None, trusted: dict[str, str], record_id: str,
                    manifest_sha256: str) -> Inclusion:
    """Check a tlog-proof file for the record's manifest leaf (the trust rules are the module's docstring)."""
    from archiver.tlog.entries import LogEntry
    from archiver.tlog.note import Verifier
    from archiver.tlog.proofs import verify_proof

    try:
        leaf = LogEntry("manifest", record_id, manifest_sha256)
    except ValueError:
        return Inclusion(FAIL, Category.INTEGRITY, "the record's manifest cannot be a log entry")
    if carried_vkey is not None:  # the sender's text: checked before it is used or shown
        try:
            carried_vkey = check_vkey(carried_vkey)
        except ArchiverError:
            return Inclusion(FAIL, Category.INTEGRITY, "the bundle's provenance/log.vkey is not a log's verifier key")
    origin = _origin(proof)
    if origin is not None and len(origin) > 200:
        origin = None  # not a log any key names (note key names are short); never shown whole
    by_origin: dict[str, str] = {}
    for v, why in trusted.items():
        try:
            if Verifier.from_vkey(v).name == origin:
                by_origin[v] = why
        except ArchiverError:
            continue
    if by_origin:
        problems = []
        for vkey, why in sorted(by_origin.items()):
            try:
                got = verify_proof(proof, vkey, leaf, witnesses=[], min_cosignatures=0)
            except ArchiverError as exc:
                problems.append(exc.message)
                continue
            return Inclusion(PASS, Category.INTEGRITY,
                             f"in the log {got.origin} at index {got.index}, checkpoint of size {got.size}: "
                             f"inclusion verified with log key {vkey}, which is trusted ({why})",
                             got.index, got.size, None, got.origin, True)
        if carried_vkey is not None and carried_vkey not in by_origin:
            try:
                verify_proof(proof, carried_vkey, leaf, witnesses=[], min_cosignatures=0)
            except ArchiverError:
                pass
            else:
                return Inclusion(FAIL, Category.TRUST,
                                 f"the proof is signed by log key {carried_vkey} (carried by the bundle), not by "
                                 f"the key trusted here for the log {origin}: {', '.join(sorted(by_origin))}")
        return Inclusion(FAIL, Category.INTEGRITY, f"the inclusion proof does not verify: {problems[0]}")
    if carried_vkey is None:
        return Inclusion(SKIP, Category.COMPLETENESS,
                         f"a proof for the log {origin or '?'} but no log key to check it with: the bundle carries "
                         "none and none is trusted here (--trust-log-key VKEY)")
    try:
        got = verify_proof(proof, carried_vkey, leaf, witnesses=[], min_cosignatures=0)
    except ArchiverError as exc:
        return Inclusion(FAIL, Category.INTEGRITY, f"the inclusion proof does not verify with log key "
                                                   f"{carried_vkey} (carried by the bundle): {exc.message}")
    return Inclusion(PASS, Category.CONTEXT,
                     f"in the log {got.origin} at index {got.index}, checkpoint of size {got.size}: inclusion "
                     f"verified with log key {carried_vkey} (carried by the bundle), which is not known here: "
                     "it shows the bundle is consistent, not that this log is the one you know (pin the log's key "
                     "with --trust-log-key to make it evidence)", got.index, got.size, None, got.origin, True)


def _manifest_leaf(log: TransparencyLog, record_id: str) -> tuple[int, str] | None:
    leaves = [(i, e) for i, e in log.leaves_of(record_id) if e.kind == "manifest"]
    return (leaves[0][0], leaves[0][1].sha256) if leaves else None


def proof_under(log: TransparencyLog, record_id: str, cp: StoredCheckpoint) -> bytes | None:
    """The tlog-proof file of the record's manifest leaf under the stored checkpoint ``cp`` (read only:
    no sync, no signing), or None when the leaf is not under it."""
    from archiver.tlog.entries import LogEntry
    from archiver.tlog.proofs import ProofFile

    found = _manifest_leaf(log, record_id)
    if found is None or found[0] >= cp.size:
        return None
    index, sha = found
    hashes = log.inclusion_proof(index, cp.size)
    return ProofFile(index, tuple(hashes), cp.note, LogEntry("manifest", record_id, sha).to_bytes()).to_bytes()


def covered(log: TransparencyLog, record_id: str) -> bool:
    """Whether the record's manifest leaf is under the latest signed checkpoint (a proof can be made
    without signing): part of the name of a kept public bundle, which gains its proof once covered."""
    found = _manifest_leaf(log, record_id)
    cp = latest(log) if found is not None else None
    return cp is not None and found is not None and found[0] < cp.size and log.key.exists()


def store_inclusion(log: TransparencyLog, record_id: str, manifest_sha256: str) -> Inclusion:
    """The record's manifest in this store's own log, proven under its latest checkpoint (read only)."""
    try:
        found = _manifest_leaf(log, record_id)
        if found is None:
            pending = log.pending()
            return Inclusion(SKIP, Category.COMPLETENESS,
                             "not in this store's transparency log" + (
                                 f" yet ({pending} commit(s) not appended: `archiver log sync`)" if pending else
                                 " (`archiver log audit` says why)"))
        index, sha = found
        if sha != manifest_sha256:
            return Inclusion(FAIL, Category.INTEGRITY,
                             f"the log's leaf {index} names manifest sha256:{sha} for this record, the store holds "
                             f"sha256:{manifest_sha256}: the manifest was replaced after it was logged", index)
        top = latest(log)
        if top is None or top.size <= index:
            return Inclusion(SKIP, Category.COMPLETENESS,
                             f"in the log at index {index}, after its latest signed checkpoint"
                             f"{f' (size {top.size})' if top else ''}: `archiver log checkpoint` signs one",
                             index)
        proof = proof_under(log, record_id, top)
        vkey = own_vkey(log)
        assert proof is not None and vkey is not None  # a signed checkpoint: the key exists
    except ArchiverError as exc:
        return Inclusion(SKIP, Category.COMPLETENESS, f"the transparency log cannot be read: {exc.message}")
    got = proof_inclusion(proof, None, {vkey: OWN}, record_id, manifest_sha256)
    if got.status is not PASS:
        return got
    return Inclusion(PASS, Category.INTEGRITY,
                     f"in the log {top.origin} at index {index}, checkpoint of size {top.size} signed "
                     f"{top.signed_at}: inclusion verified with {OWN} {vkey}",
                     index, top.size, top.signed_at, top.origin, True)


__all__ = ["NAME", "Inclusion", "check_vkey", "covered", "latest", "own_vkey", "proof_inclusion", "proof_under",
           "store_inclusion", "trust_log_key", "trusted_log_keys"]
