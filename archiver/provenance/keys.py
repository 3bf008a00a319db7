"""Ed25519 signing keys and the keyring of public keys a verifier trusts.

The private key file is created 0600 and may be passphrase-encrypted; nothing here ever returns
its bytes to a caller that could print them. ``key_id`` is ``sha256:`` of the raw 32-byte public
key, so anyone can recompute it from the PEM with standard tools.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from archiver.errors import KeyError_, PassphraseError, UsageError
from store.fsutil import atomic_write_bytes

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# cryptography is imported where a key is used (~15 ms): `list`, `show` and `get` never touch one

PassphraseSource = Callable[[], str | None]


def ask_once(source: PassphraseSource) -> PassphraseSource:
    """The same source, asked at most once: a capture that also stamps, or a watch run that signs
    several derived texts, prompts the operator one time."""
    answers: list[str | None] = []

    def once() -> str | None:
        if not answers:
            answers.append(source())
        return answers[0]

    return once


def key_id_of(public_key: Ed25519PublicKey) -> str:
    return "sha256:" + hashlib.sha256(public_key.public_bytes_raw()).hexdigest()


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


# An Ed25519 SubjectPublicKeyInfo is always these 12 DER bytes and the 32-byte key (RFC 8410 §4: no
# parameters, so there is one encoding). Reading it directly spares `verify` and `show` the import
# of cryptography's serialization package (ssh, pkcs12, …: ~16 ms); anything else goes to that package.
_ED25519_SPKI = bytes.fromhex("302a300506032b6570032100")
_PEM_PUBLIC = re.compile(rb"\A\s*-----BEGIN PUBLIC KEY-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END PUBLIC KEY-----\s*\Z")


def load_public_pem(data: bytes, *, source: str = "public key") -> Ed25519PublicKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    m = _PEM_PUBLIC.match(data)
    if m:
        try:
            der = base64.b64decode(m.group(1), validate=False)
        except ValueError:
            der = b""
        if len(der) == 44 and der.startswith(_ED25519_SPKI):
            return Ed25519PublicKey.from_public_bytes(der[12:])
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise UsageError(f"{source} is not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"{source} is not an Ed25519 public key")
    return key


def _load_private_pem(path: Path, passphrase: PassphraseSource, label: str) -> object:
    """Load a PKCS#8 PEM key, asking for the passphrase only when the key is encrypted."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    data = path.read_bytes()
    secret: bytes | None = None
    if b"ENCRYPTED" in data[:64]:
        text = passphrase()
        if not text:
            raise PassphraseError(f"the {label} {path} is passphrase-protected and no passphrase was given")
        secret = text.encode("utf-8")
    try:
        return serialization.load_pem_private_key(data, password=secret)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        if secret is not None:
            raise PassphraseError(f"wrong passphrase for {label} {path}") from exc
        raise KeyError_(f"{label} {path} is unreadable: {exc}") from exc


def wacz_fingerprint(spki_der: bytes) -> str:
    """How a bundle-signing (P-384) key is named: sha256 of its SubjectPublicKeyInfo DER."""
    return "sha256:" + hashlib.sha256(spki_der).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key_id: str
    path: str
    trusted: bool
    signing: bool
    encrypted: bool = False


class KeyStore:
    """The operator's signing key (``keys/``) and the trusted keyring (``keyring/``) of one store."""

    def __init__(self, root: Path) -> None:
        self.key_dir = root / "keys"
        self.keyring_dir = root / "keyring"
        self.private_path = self.key_dir / "signing.key"
        self.public_path = self.key_dir / "signing.pub"
        # WACZ bundles are signed with ECDSA P-384 (what ReplayWeb.page verifies), a separate key
        self.wacz_private_path = self.key_dir / "wacz-signing.key"
        self.wacz_public_path = self.key_dir / "wacz-signing.pub"

    def has_signing_key(self) -> bool:
        return self.private_path.is_file()

    def generate(self, passphrase: str | None = None, *, replace: bool = False,
                 old_passphrase: PassphraseSource = lambda: None) -> str:
        """Create a new signing key; an old one is retired (kept, still trusted), never deleted, and
        vouches for its successor: a rotation statement signed by both keys is written to
        ``keys/rotations/<new key>.json`` (``register_rotation`` files it in the store), so whoever
        trusts the old key can trust what the new one signs. The old key is loaded (its passphrase
        checked) before anything changes."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.key_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.key_dir, 0o700)
        old_private: Ed25519PrivateKey | None = None
        if self.has_signing_key():
            if not replace:
                raise UsageError(f"a signing key already exists at {self.private_path}",
                                 hint="pass --replace to retire it and create a new one")
            old_private = self.load_private(old_passphrase)
            old_id = key_id_of(self.signing_public_key()).split(":", 1)[1]
            retired = self.key_dir / "retired"
            retired.mkdir(mode=0o700, exist_ok=True)
            os.replace(self.private_path, retired / f"{old_id}.key")
            os.replace(self.public_path, retired / f"{old_id}.pub")
        private = Ed25519PrivateKey.generate()
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase.encode("utf-8")) if passphrase
            else serialization.NoEncryption())
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        atomic_write_bytes(self.private_path, pem, mode=0o600)
        pub = private.public_key()
        atomic_write_bytes(self.public_path, public_pem(pub), mode=0o644)
        if old_private is not None:
            from datetime import UTC, datetime

            when = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            atomic_write_bytes(self.rotation_path(key_id_of(pub)), rotation_statement(old_private, private, when))
        self.trust(public_pem(pub))
        self._generate_wacz(passphrase, replace=replace)
        return key_id_of(pub)

    def rotation_path(self, new_key_id: str) -> Path:
        return self.key_dir / "rotations" / f"{new_key_id.removeprefix('sha256:')}.json"

    def _generate_wacz(self, passphrase: str | None, *, replace: bool = False) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        if self.wacz_private_path.is_file() and not replace:
            return
        if self.wacz_private_path.is_file():
            retired = self.key_dir / "retired"
            retired.mkdir(mode=0o700, exist_ok=True)
            fp = wacz_fingerprint(self.wacz_public_der()).split(":", 1)[1]
            os.replace(self.wacz_private_path, retired / f"wacz-{fp}.key")
            os.replace(self.wacz_public_path, retired / f"wacz-{fp}.pub")
        key = ec.generate_private_key(ec.SECP384R1())
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase.encode("utf-8")) if passphrase
            else serialization.NoEncryption())
        atomic_write_bytes(self.wacz_private_path, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption), mode=0o600)
        atomic_write_bytes(self.wacz_public_path, key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), mode=0o644)

    def wacz_public_der(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_public_key(self.wacz_public_path.read_bytes())
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    def load_wacz_private(self, passphrase: PassphraseSource) -> EllipticCurvePrivateKey:
        """The P-384 bundle-signing key; stores made before it existed get one on first use,
        protected like the Ed25519 key (same passphrase)."""
        from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

        if not self.wacz_private_path.is_file():
            secret = passphrase() if self.is_encrypted() else None
            if self.is_encrypted():
                self.load_private(lambda: secret)  # check the passphrase before reusing it
            self._generate_wacz(secret)
        key = _load_private_pem(self.wacz_private_path, passphrase, "bundle-signing key")
        if not isinstance(key, EllipticCurvePrivateKey):
            raise KeyError_(f"bundle-signing key {self.wacz_private_path} is not ECDSA")
        return key

    def signing_public_key(self) -> Ed25519PublicKey:
        if not self.public_path.is_file():
            raise KeyError_(f"no signing key in {self.key_dir}")
        return load_public_pem(self.public_path.read_bytes(), source=str(self.public_path))

    def is_encrypted(self) -> bool:
        return self.has_signing_key() and b"ENCRYPTED" in self.private_path.read_bytes()[:64]

    def load_private(self, passphrase: PassphraseSource) -> Ed25519PrivateKey:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        if not self.has_signing_key():
            raise KeyError_(f"no signing key in {self.key_dir}")
        key = _load_private_pem(self.private_path, passphrase, "signing key")
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyError_(f"signing key {self.private_path} is not Ed25519")
        return key

    def trust(self, pem: bytes, *, source: str = "public key") -> str:
        key = load_public_pem(pem, source=source)
        kid = key_id_of(key)
        self.keyring_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.keyring_dir / f"{kid.split(':', 1)[1]}.pem", public_pem(key))
        return kid

    def untrust(self, key_id: str) -> bool:
        path = self.keyring_dir / f"{key_id.removeprefix('sha256:')}.pem"
        if path.is_file():
            path.unlink()
            return True
        return False

    def trusted(self) -> dict[str, Ed25519PublicKey]:
        out: dict[str, Ed25519PublicKey] = {}
        if self.keyring_dir.is_dir():
            for p in sorted(self.keyring_dir.glob("*.pem")):
                key = load_public_pem(p.read_bytes(), source=str(p))
                out[key_id_of(key)] = key
        return out

    def list(self) -> list[KeyInfo]:
        signing_id = key_id_of(self.signing_public_key()) if self.public_path.is_file() else None
        infos = [KeyInfo(key_id=kid, path=str(self.keyring_dir / f"{kid.split(':', 1)[1]}.pem"),
                         trusted=True, signing=kid == signing_id,
                         encrypted=kid == signing_id and self.is_encrypted())
                 for kid in self.trusted()]
        if signing_id and all(i.key_id != signing_id for i in infos):
            infos.append(KeyInfo(key_id=signing_id, path=str(self.public_path), trusted=False, signing=True,
                                 encrypted=self.is_encrypted()))
        return infos


# ---- key rotation --------------------------------------------------------------------------------------
ROTATION_SCHEMA = "archiver.key-rotation/v1"
ROTATION_TO = "rotation-to:"  # catalog signer_keys rows: "rotation-to:<new key id>" → statement blob
ROTATION_FROM = "rotation-from:"  # and "rotation-from:<old key id>" → the same blob


@dataclass(frozen=True, slots=True)
class Rotation:
    """A checked rotation statement: ``old`` vouches that ``new`` signs for it from ``rotated_at``."""

    old_key_id: str
    new_key_id: str
    old_pem: bytes
    new_pem: bytes
    rotated_at: str


def rotation_statement(old: Ed25519PrivateKey, new: Ed25519PrivateKey, rotated_at: str) -> bytes:
    """The old key's statement that the new key succeeds it, countersigned by the new key (so no
    one can name as their successor a key they do not hold). Both sign the RFC 8785 JSON without
    ``signatures``; Ed25519 is deterministic, so the same keys and time give the same bytes."""
    import json

    import rfc8785

    body: dict[str, Any] = {
        "schema": ROTATION_SCHEMA,
        "statement": "The old key's holder rotated to the new key; both keys signed this statement.",
        "old_key": {"key_id": key_id_of(old.public_key()), "pem": public_pem(old.public_key()).decode("ascii")},
        "new_key": {"key_id": key_id_of(new.public_key()), "pem": public_pem(new.public_key()).decode("ascii")},
        "rotated_at": rotated_at}
    signed = rfc8785.dumps(body)
    sigs = [{"alg": "Ed25519", "key_id": key_id_of(k.public_key()),
             "value": base64.b64encode(k.sign(signed)).decode("ascii")} for k in (old, new)]
    return (json.dumps({**body, "signatures": sigs}, indent=2) + "\n").encode("utf-8")


def read_rotation(data: bytes) -> Rotation:
    """Check a rotation statement: its form, that each key id is its PEM's, and both signatures.
    Raises IntegrityError saying what is wrong; a statement proves nothing about whether anyone
    trusts the old key (that is the verifier's keyring)."""
    import json

    import rfc8785
    from cryptography.exceptions import InvalidSignature

    from archiver.errors import ArchiverError, IntegrityError

    try:
        doc = json.loads(data)
        sigs = doc.pop("signatures")
        if doc.get("schema") != ROTATION_SCHEMA or set(doc) != {"schema", "statement", "old_key", "new_key",
                                                                 "rotated_at"}:
            raise IntegrityError("the rotation statement is of an unknown schema or has unexpected fields")
        keys = {}
        for role in ("old_key", "new_key"):
            pem = str(doc[role]["pem"]).encode("ascii")
            pub = load_public_pem(pem, source=f"the rotation statement's {role}")
            if key_id_of(pub) != doc[role]["key_id"]:
                raise IntegrityError(f"the rotation statement's {role} id is not its PEM's")
            keys[role] = (pub, pem)
        by_id = {str(s["key_id"]): base64.b64decode(str(s["value"]), validate=True) for s in sigs}
    except (ValueError, KeyError, TypeError, AttributeError, ArchiverError) as exc:
        if isinstance(exc, IntegrityError):
            raise
        raise IntegrityError(f"the rotation statement is unreadable: {exc}") from exc
    signed = rfc8785.dumps(doc)
    for role in ("old_key", "new_key"):
        pub, _ = keys[role]
        kid = key_id_of(pub)
        try:
            pub.verify(by_id.get(kid, b""), signed)
        except InvalidSignature:
            raise IntegrityError(f"the rotation statement is not signed by its {role.replace('_', ' ')} {kid}") \
                from None
    return Rotation(key_id_of(keys["old_key"][0]), key_id_of(keys["new_key"][0]), keys["old_key"][1],
                    keys["new_key"][1], str(doc["rotated_at"]))


def register_rotation(keys: KeyStore, blobs: _Blobs, catalog: _SignerKeys, custody: _Custody, new_key_id: str,
                      *, actor: str) -> str | None:
    """File a rotation statement in the store: its blob, both public keys in the catalog's
    ``signer_keys`` (the old one stays there for good), the ``rotation-to:``/``rotation-from:`` rows
    verification and export look it up by, and a ``key-rotate`` custody entry naming its hash. Used
    for the store's own rotations (``keys generate --replace``) and for statements a bundle carries."""
    path = keys.rotation_path(new_key_id)
    if not path.is_file():
        return None
    data = path.read_bytes()
    return file_rotation(data, blobs, catalog, custody, actor=actor, source="keys generate --replace")


def file_rotation(data: bytes, blobs: _Blobs, catalog: _SignerKeys, custody: _Custody, *, actor: str,
                  source: str) -> str:
    rot = read_rotation(data)
    if catalog.signer_key_blob(ROTATION_TO + rot.new_key_id) is not None:
        return rot.new_key_id
    sha = blobs.put_bytes(data)
    for kid, pem in ((rot.old_key_id, rot.old_pem), (rot.new_key_id, rot.new_pem)):
        catalog.add_signer_key(kid, blobs.put_bytes(public_pem(load_public_pem(pem))))
    catalog.add_signer_key(ROTATION_TO + rot.new_key_id, sha)
    catalog.add_signer_key(ROTATION_FROM + rot.old_key_id, sha)
    custody.note("key-rotate", actor=actor, detail={"old_key_id": rot.old_key_id, "new_key_id": rot.new_key_id,
                                                      "statement_sha256": sha, "source": source})
    return rot.new_key_id


class _Blobs(Protocol):
    def put_bytes(self, data: bytes) -> str: ...


class _SignerKeys(Protocol):
    def add_signer_key(self, key_id: str, public_pem_sha256: str) -> None: ...
    def signer_key_blob(self, key_id: str) -> str | None: ...


class _Custody(Protocol):
    def note(self, event: str, *, actor: str, record_id: str | None = None,
               subject_sha256: str | None = None, detail: dict[str, str] | None = None) -> Any: ...
