"""Manifest signatures: Ed25519 over the RFC 8785 (JCS) canonical JSON of the manifest without
its ``signature`` member, so anyone can recompute the signed bytes with any JCS implementation."""

from __future__ import annotations

import base64
import dataclasses

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from archiver.canonical import canonical
from archiver.provenance.keys import key_id_of
from archiver.records import Addendum, Manifest, Signature, asdict


def signed_bytes(manifest: Manifest) -> bytes:
    return canonical(manifest.to_dict(with_signature=False))


def manifest_file_bytes(manifest: Manifest) -> bytes:
    """The stored manifest file: canonical JSON including the signature (stable bytes to hash)."""
    return canonical(manifest.to_dict())


def _sign(unsigned: bytes, key: Ed25519PrivateKey) -> Signature:
    value = base64.b64encode(key.sign(unsigned)).decode("ascii")
    return Signature(alg="Ed25519", key_id=key_id_of(key.public_key()), value=value)


def _valid(signature: Signature | None, unsigned: bytes, public_key: Ed25519PublicKey) -> bool:
    if signature is None or signature.alg != "Ed25519":
        return False
    try:
        public_key.verify(base64.b64decode(signature.value, validate=True), unsigned)
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_manifest(manifest: Manifest, key: Ed25519PrivateKey) -> Manifest:
    return dataclasses.replace(manifest, signature=_sign(signed_bytes(manifest), key))


def sign_manifest_file(manifest: Manifest, key: Ed25519PrivateKey) -> tuple[Manifest, bytes]:
    """The signed manifest and its file bytes (``manifest_file_bytes``) from one ``to_dict``: turning
    the records into a dict is most of the cost of both, and a capture needs both."""
    d = manifest.to_dict(with_signature=False)
    signature = _sign(canonical(d), key)
    d["signature"] = asdict(signature)  # where ``to_dict`` puts it; JCS orders the keys
    return dataclasses.replace(manifest, signature=signature), canonical(d)


def signature_valid(manifest: Manifest, public_key: Ed25519PublicKey) -> bool:
    return _valid(manifest.signature, signed_bytes(manifest), public_key)


def sign_addendum(addendum: Addendum, key: Ed25519PrivateKey) -> Addendum:
    """Addenda are signed like manifests: Ed25519 over JCS of the object without ``signature``."""
    return dataclasses.replace(addendum, signature=_sign(canonical(addendum.to_dict(with_signature=False)), key))


def sign_addendum_file(addendum: Addendum, key: Ed25519PrivateKey) -> tuple[Addendum, bytes]:
    """The signed addendum and its file bytes (``addendum_file_bytes``) from one ``to_dict``, as
    :func:`sign_manifest_file` does: a batch's timestamp signs one addendum per record."""
    d = addendum.to_dict(with_signature=False)
    signature = _sign(canonical(d), key)
    d["signature"] = asdict(signature)  # where ``to_dict`` puts it (no member of it is None); JCS orders keys
    return dataclasses.replace(addendum, signature=signature), canonical(d)


def addendum_signature_valid(addendum: Addendum, public_key: Ed25519PublicKey) -> bool:
    return _valid(addendum.signature, canonical(addendum.to_dict(with_signature=False)), public_key)


def addendum_file_bytes(addendum: Addendum) -> bytes:
    return canonical(addendum.to_dict())
