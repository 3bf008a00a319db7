"""C2SP signed notes (c2sp.org/signed-note), checkpoints (c2sp.org/tlog-checkpoint) and Ed25519
cosignatures (c2sp.org/tlog-cosignature, ``cosignature/v1``, type 0x04).

Why these formats: they are what Go's ``golang.org/x/mod/sumdb/note``, the witness network and every
tlog-tiles client already verify, so a third party needs none of our code to check a checkpoint.

A note is UTF-8 text ending in a newline, a blank line, then signature lines
``— <key name> base64(key ID (4 bytes, big-endian) || signature)``. The key ID of an Ed25519 key is
``SHA-256(name || 0x0A || 0x01 || public key)[:4]`` (0x04 for a cosigner's key), and a verifier key
(vkey) is ``<name>+<hex key ID>+base64(type || public key)``. Protocol only: no I/O, no clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from archiver.errors import IntegrityError, SignatureError, UsageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
#: the spec asks verifiers to accept at least 16 signatures; more than this is refused as abuse
MAX_SIGNATURES = 64
MAX_NOTE_BYTES = 1 << 20
_DASH = "\u2014"
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise IntegrityError(f"{what} is not base64") from exc


def check_name(name: str) -> str:
    """A key name (or a checkpoint origin): non-empty, no Unicode space, no ``+``."""
    if not name or "+" in name or any(c.isspace() for c in name) or _CONTROL.search(name):
        raise UsageError(f"not a note key name: {name!r}", hint="use a schema-less URL such as "
                                                                  "archive.example.org/evidence")
    return name


def key_id(name: str, sig_type: int, public_key: bytes) -> int:
    """``SHA-256(name || 0x0A || type || public key)[:4]`` as a big-endian integer."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([sig_type]) + public_key)
                          .digest()[:4], "big")


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature line: the key's name and ID, and the signature bytes after the ID."""

    name: str
    key_id: int
    value: bytes

    def line(self) -> str:
        return f"{_DASH} {self.name} {_b64(self.key_id.to_bytes(4, 'big') + self.value)}\n"


@dataclass(frozen=True, slots=True)
class Note:
    """A note's text (ending in a newline) and its signatures, in their order."""

    text: str
    signatures: tuple[Signature, ...]

    def to_bytes(self) -> bytes:
        return (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode("utf-8")

    @classmethod
    def parse(cls, data: bytes) -> Note:
        """Parse (never trust) a signed note: the structure only, no signature is checked here."""
        if len(data) > MAX_NOTE_BYTES:
            raise IntegrityError(f"a note of {len(data)} bytes is too large")
        try:
            whole = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise IntegrityError("a signed note must be UTF-8") from exc
        if _CONTROL.search(whole):
            raise IntegrityError("a signed note may hold no control character other than newline")
        if not whole.endswith("\n"):
            raise IntegrityError("a signed note must end with a newline")
        cut = whole.rfind("\n\n")
        if cut < 0:
            raise IntegrityError("a signed note needs a blank line between its text and its signatures")
        text, block = whole[:cut + 1], whole[cut + 2:]
        sigs: list[Signature] = []
        for line in block.split("\n")[:-1]:
            parts = line.split(" ")
            if len(parts) != 3 or parts[0] != _DASH or not parts[1]:
                raise IntegrityError(f"not a note signature line: {line[:80]!r}")
            raw = _unb64(parts[2], "a note signature")
            if len(raw) < 5:
                raise IntegrityError("a note signature is too short")
            sigs.append(Signature(parts[1], int.from_bytes(raw[:4], "big"), raw[4:]))
        if not sigs:
            raise IntegrityError("a signed note has no signature")
        if len(sigs) > MAX_SIGNATURES:
            raise IntegrityError(f"a note with {len(sigs)} signatures is refused (more than {MAX_SIGNATURES})")
        return cls(text, tuple(sigs))


@dataclass(frozen=True, slots=True)
class Verifier:
    """A public key that may have signed a note: Ed25519 (0x01) or an Ed25519 cosigner (0x04)."""

    name: str
    key_id: int
    sig_type: int
    public_key: bytes

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        """Parse ``name+hex+base64(type||key)``; the key ID must be the one the key and name give."""
        parts = vkey.strip().split("+", 2)  # base64 may hold "+": the name and the hex never do
        if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
            raise UsageError(f"not a verifier key: {vkey[:80]!r}", hint="expected name+hex+base64")
        name = check_name(parts[0])
        try:
            raw = _unb64(parts[2], "the verifier key")
        except IntegrityError as exc:
            raise UsageError(exc.message) from exc
        if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE_V1):
            raise UsageError(f"verifier key {name}: only Ed25519 keys (type 0x01, cosigner 0x04) are supported")
        kid = int(parts[1], 16)
        if kid != key_id(name, raw[0], raw[1:]):
            raise UsageError(f"verifier key {name}: its key ID does not match its name and key")
        return cls(name, kid, raw[0], raw[1:])

    @classmethod
    def of(cls, name: str, public_key: Ed25519PublicKey, sig_type: int = ED25519) -> Verifier:
        raw = public_key.public_bytes_raw()
        return cls(check_name(name), key_id(name, sig_type, raw), sig_type, raw)

    def vkey(self) -> str:
        return f"{self.name}+{self.key_id:08x}+{_b64(bytes([self.sig_type]) + self.public_key)}"

    def matches(self, sig: Signature) -> bool:
        return sig.name == self.name and sig.key_id == self.key_id

    def check(self, text: str, sig: Signature) -> int | None:
        """Verify ``sig`` over the note ``text``; raise :class:`SignatureError` if it fails. Returns the
        cosignature's timestamp (type 0x04), else None."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        key = Ed25519PublicKey.from_public_bytes(self.public_key)
        stamp: int | None = None
        if self.sig_type == COSIGNATURE_V1:
            if len(sig.value) != 72:
                raise SignatureError(f"cosignature by {self.name} is not a timestamp and an Ed25519 signature")
            stamp = int.from_bytes(sig.value[:8], "big")
            if stamp >= 1 << 63:
                raise SignatureError(f"cosignature by {self.name} has an out-of-range timestamp")
            message, value = cosigned_message(text, stamp), sig.value[8:]
        else:
            message, value = text.encode("utf-8"), sig.value
        try:
            key.verify(value, message)
        except InvalidSignature as exc:
            raise SignatureError(f"the signature by {self.name} ({self.key_id:08x}) does not verify") from exc
        return stamp


def cosigned_message(text: str, timestamp: int) -> bytes:
    """What an Ed25519 cosigner signs (tlog-cosignature): header, time line, the checkpoint's note text."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode("utf-8")


@dataclass(frozen=True, slots=True)
class Verified:
    """A signature that verified, by whom, and (for a cosignature) the time it states."""

    verifier: Verifier
    timestamp: int | None = None


def open_note(data: bytes, verifiers: Sequence[Verifier]) -> tuple[Note, list[Verified]]:
    """Parse a note and verify every signature by a known key (name and ID both match).

    Unknown signatures are ignored (they may be witnesses' cosignatures); a known one that fails
    rejects the whole note; no verified signature by a known key rejects it too (signed-note)."""
    note = Note.parse(data)
    good: list[Verified] = []
    for sig in note.signatures:
        for v in verifiers:
            if v.matches(sig):
                good.append(Verified(v, v.check(note.text, sig)))
    if not good:
        raise SignatureError("the note is not signed by any key this verifier knows",
                             hint="check the verifier key (vkey) and the checkpoint's origin")
    return note, good


class NoteSigner:
    """An Ed25519 private key that signs notes under ``name`` (a log: key name = origin)."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self.name = check_name(name)
        self._key = private_key
        self.verifier = Verifier.of(name, private_key.public_key())

    def sign(self, text: str) -> Signature:
        return Signature(self.name, self.verifier.key_id, self._key.sign(text.encode("utf-8")))


def sign_note(text: str, signer: NoteSigner, extra: Sequence[Signature] = ()) -> bytes:
    """The signed note of ``text`` (which must end in a newline), the signer's line first."""
    if not text.endswith("\n") or _CONTROL.search(text) or "\n\n" in text:
        raise UsageError("a note text must end in a newline and hold no blank line or control character")
    return Note(text, (signer.sign(text), *extra)).to_bytes()


def cosign(text: str, name: str, private_key: Ed25519PrivateKey, timestamp: int) -> Signature:
    """A ``cosignature/v1`` line over a checkpoint's note text (what a witness returns)."""
    v = Verifier.of(name, private_key.public_key(), COSIGNATURE_V1)
    value = private_key.sign(cosigned_message(text, timestamp))
    return Signature(v.name, v.key_id, timestamp.to_bytes(8, "big") + value)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tlog-checkpoint body: origin, tree size, root hash (raw bytes), extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        return "".join(f"{line}\n" for line in (self.origin, str(self.size), _b64(self.root), *self.extensions))

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise IntegrityError("a checkpoint has at least three lines, each ending in a newline")
        origin, size, root, *ext = lines[:-1]
        if not origin or not re.fullmatch(r"0|[1-9][0-9]{0,19}", size) or int(size) >= 1 << 63:
            # a size is a uint64 in every tlog, and a signed 64-bit integer in our catalogs and the witness
            raise IntegrityError("a checkpoint needs an origin and a decimal tree size (below 2^63) without "
                                 "leading zeroes")
        raw = _unb64(root, "the checkpoint's root hash")
        if len(raw) != 32:
            raise IntegrityError("the checkpoint's root hash is not a SHA-256 hash")
        if any(not e for e in ext):
            raise IntegrityError("a checkpoint's extension lines must not be empty")
        return cls(origin, int(size), raw, tuple(ext))


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint that verified against a log key, with the note it came from (cosignatures kept)."""

    checkpoint: Checkpoint
    note: Note
    verified: tuple[Verified, ...]

    def to_bytes(self) -> bytes:
        return self.note.to_bytes()


def open_checkpoint(data: bytes, log_key: Verifier, witnesses: Sequence[Verifier] = ()) -> SignedCheckpoint:
    """Verify a checkpoint: signed by ``log_key`` whose name is its origin; cosignatures by known
    ``witnesses`` verified too (a policy decides how many it needs: :func:`count_cosigned`)."""
    note, good = open_note(data, [log_key, *witnesses])
    if not any(v.verifier == log_key for v in good):
        raise SignatureError(f"the checkpoint is not signed by the log key {log_key.name}")
    cp = Checkpoint.parse(note.text)
    if cp.origin != log_key.name:
        raise SignatureError(f"the checkpoint's origin {cp.origin!r} is not the log key's name {log_key.name!r}")
    return SignedCheckpoint(cp, note, tuple(good))


def count_cosigned(signed: SignedCheckpoint) -> int:
    """How many distinct witnesses' cosignatures verified on a checkpoint."""
    return len({v.verifier for v in signed.verified if v.verifier.sig_type == COSIGNATURE_V1})


__all__ = ["COSIGNATURE_V1", "ED25519", "Checkpoint", "Note", "NoteSigner", "Signature", "SignedCheckpoint",
           "Verified", "Verifier", "check_name", "cosign", "cosigned_message", "count_cosigned", "key_id",
           "open_checkpoint", "open_note", "sign_note"]
