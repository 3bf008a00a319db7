"""c2sp.org/tlog-proof@v1 files: a leaf's index, its inclusion proof and the signed checkpoint it
leads to, in one text file a third party verifies offline with the log's vkey.

::

    c2sp.org/tlog-proof@v1
    extra <base64 of the log entry line>
    index 41
    <base64 hash>            (the audit path, the leaf's sibling first)
    …
    <blank line>
    <the checkpoint, verbatim: origin, size, root, blank line, signatures>

The ``extra`` line carries our entry (``archiver.tlog-entry/v1 manifest ID sha256:…``) for
convenience only: it is not authenticated, so :func:`verify_proof` is given the leaf the verifier
computed from the record it holds, and checks that too against ``extra`` when both are present.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from archiver.errors import IntegrityError
from archiver.tlog.entries import LogEntry
from archiver.tlog.hashing import HASH_SIZE, leaf_hash, verify_inclusion
from archiver.tlog.note import Verifier, count_cosigned, open_checkpoint
from archiver.tlog.note import _b64 as note_b64
from archiver.tlog.note import _unb64 as note_unb64

HEADER = "c2sp.org/tlog-proof@v1"
MAX_PROOF_BYTES = 1 << 20


def _b64(data: bytes) -> str:
    return note_b64(data)


def _unb64(text: str, what: str) -> bytes:
    return note_unb64(text, f"the proof's {what}")


@dataclass(frozen=True, slots=True)
class ProofFile:
    """A parsed tlog-proof: nothing in it is trusted until :func:`verify_proof` says so."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: bytes
    extra: bytes | None = None

    def to_bytes(self) -> bytes:
        lines = [HEADER]
        if self.extra is not None:
            lines.append(f"extra {_b64(self.extra)}")
        lines.append(f"index {self.index}")
        lines += [_b64(h) for h in self.hashes]
        return ("\n".join(lines) + "\n\n").encode("ascii") + self.checkpoint

    @classmethod
    def parse(cls, data: bytes) -> ProofFile:
        if len(data) > MAX_PROOF_BYTES:
            raise IntegrityError("a tlog proof of more than 1 MiB is refused")
        head, sep, checkpoint = data.partition(b"\n\n")
        if not sep:
            raise IntegrityError("not a tlog proof: no blank line before the checkpoint")
        try:
            lines = head.decode("ascii").split("\n")
        except UnicodeDecodeError as exc:
            raise IntegrityError("a tlog proof's header must be ASCII") from exc
        if lines[0] != HEADER:
            raise IntegrityError(f"not a tlog proof: the first line is not {HEADER}")
        rest = lines[1:]
        extra = None
        if rest and rest[0].startswith("extra "):
            extra = _unb64(rest.pop(0)[6:], "extra data")
        if not rest or not re.fullmatch(r"index (0|[1-9][0-9]{0,19})", rest[0]):
            raise IntegrityError("a tlog proof needs an 'index N' line")
        index = int(rest[0][6:])
        hashes = tuple(_unb64(h, "inclusion proof") for h in rest[1:])
        if any(len(h) != HASH_SIZE for h in hashes):
            raise IntegrityError("a tlog proof's inclusion hash is not 32 bytes")
        if len(hashes) > 64:
            raise IntegrityError("a tlog proof of more than 64 hashes is refused")
        return cls(index, hashes, checkpoint, extra)


@dataclass(frozen=True, slots=True)
class ProofCheck:
    """A proof that verified: the leaf at ``index`` is in the checkpoint of ``size`` signed by the log
    (and cosigned by ``cosignatures`` known witnesses)."""

    index: int
    size: int
    origin: str
    root: bytes
    cosignatures: int
    entry: bytes


def verify_proof(data: bytes, log_key: Verifier | str, leaf: bytes | LogEntry | None = None, *,
                 witnesses: Sequence[Verifier] = (), min_cosignatures: int = 0) -> ProofCheck:
    """Verify a tlog-proof file; raise :class:`IntegrityError` (or ``SignatureError``) naming why not.

    ``leaf`` is the entry the verifier expects (bytes or a :class:`LogEntry`, e.g.
    ``LogEntry("manifest", record_id, sha256_of_the_manifest_file)``); None trusts the ``extra`` line,
    which is only right when the caller then compares the returned ``entry`` with its own record."""
    key = Verifier.from_vkey(log_key) if isinstance(log_key, str) else log_key
    proof = ProofFile.parse(data)
    expected = leaf.to_bytes() if isinstance(leaf, LogEntry) else leaf
    if expected is None:
        if proof.extra is None:
            raise IntegrityError("the proof carries no entry and none was given to check it against")
        expected = proof.extra
    elif proof.extra is not None and proof.extra != expected:
        raise IntegrityError("the proof is for another entry than the record's")
    signed = open_checkpoint(proof.checkpoint, key, witnesses)
    got = count_cosigned(signed)
    if got < min_cosignatures:
        raise IntegrityError(f"the checkpoint carries {got} known witness cosignature(s); the policy needs "
                             f"{min_cosignatures}")
    cp = signed.checkpoint
    verify_inclusion(leaf_hash(expected), proof.index, cp.size, proof.hashes, cp.root)
    return ProofCheck(proof.index, cp.size, cp.origin, cp.root, got, expected)


__all__ = ["HEADER", "ProofCheck", "ProofFile", "verify_proof"]
