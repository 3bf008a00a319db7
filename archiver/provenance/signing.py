"""Manifest signatures: Ed25519 over the RFC 8785 (JCS) canonical JSON of the manifest without
its ``signature`` member, so anyone can recompute the signed bytes with any JCS implementation."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from archiver.provenance.keys import key_id_of
from archiver.records import Manifest, Signature


def canonical(obj: Any) -> bytes:
    return rfc8785.dumps(obj)


def signed_bytes(manifest: Manifest) -> bytes:
    return canonical(manifest.to_dict(with_signature=False))


def manifest_file_bytes(manifest: Manifest) -> bytes:
    """The stored manifest file: canonical JSON including the signature (stable bytes to hash)."""
    return canonical(manifest.to_dict())


def sign_manifest(manifest: Manifest, key: Ed25519PrivateKey) -> Manifest:
    value = base64.b64encode(key.sign(signed_bytes(manifest))).decode("ascii")
    sig = Signature(alg="Ed25519", key_id=key_id_of(key.public_key()), value=value)
    return dataclasses.replace(manifest, signature=sig)


def signature_valid(manifest: Manifest, public_key: Ed25519PublicKey) -> bool:
    if manifest.signature is None or manifest.signature.alg != "Ed25519":
        return False
    try:
        public_key.verify(base64.b64decode(manifest.signature.value, validate=True), signed_bytes(manifest))
    except (InvalidSignature, ValueError):
        return False
    return True
