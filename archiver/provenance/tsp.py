"""RFC 3161 protocol on bytes only (no network): build requests, accept responses, verify tokens.

Built on ``rfc3161-client``. Its request builder defaults to SHA-512; we always use SHA-256 so the
imprint is the same hex digest people see from ``sha256sum`` and pass to ``openssl ts -verify``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from archiver.errors import TimestampError

SHA256_OID = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
_STATUS_TEXT = {1: "granted with modifications", 2: "rejection", 3: "waiting", 4: "revocation warning",
                5: "revocation notification"}


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a token says, read without judging it."""

    gen_time: dt.datetime
    serial: str
    policy: str
    imprint_hex: str
    tsa_name: str
    nonce: int | None
    cert_count: int


def build_request(data: bytes) -> tuple[bytes, bytes, int | None]:
    """A DER TimeStampReq over SHA-256 of ``data`` with a random nonce and certReq set.

    Returns (request DER, the 32-byte imprint, nonce)."""
    req = (TimestampRequestBuilder().data(data).hash_algorithm(HashAlgorithm.SHA256)
           .cert_request(cert_request=True).nonce(nonce=True).build())
    return req.as_bytes(), req.message_imprint.message, req.nonce


def parse_response(data: bytes) -> TimeStampResponse:
    """Decode, and touch every part we later read: the parser is lazy, so a damaged token would
    otherwise fail deep inside a check instead of here."""
    try:
        resp = decode_timestamp_response(data)
        if resp.status == PKIStatus.GRANTED:
            info(resp)
            _ = resp.signed_data.signer_infos
            token_certs(resp)
    except Exception as exc:  # the Rust parser raises several unrelated types
        raise TimestampError(f"the TSA's answer is not a valid timestamp response "
                             f"({type(exc).__name__}: {exc})") from exc
    return resp


def info(resp: TimeStampResponse) -> TokenInfo:
    tst = resp.tst_info
    name = tst.name
    tsa_name = name.value.rfc4514_string() if isinstance(name, x509.DirectoryName) else str(getattr(name, "value", ""))
    return TokenInfo(gen_time=tst.gen_time.astimezone(dt.UTC), serial=format(tst.serial_number, "x"),
                     policy=tst.policy.dotted_string, imprint_hex=tst.message_imprint.message.hex(),
                     tsa_name=tsa_name, nonce=tst.nonce, cert_count=len(resp.signed_data.certificates))


def accept_response(data: bytes, digest: bytes, nonce: int | None) -> tuple[TimeStampResponse, TokenInfo]:
    """Check what a fresh answer must satisfy before we keep it: granted, our imprint, our nonce."""
    resp = parse_response(data)
    status = PKIStatus(resp.status) if resp.status in {s.value for s in PKIStatus} else None
    if status is not PKIStatus.GRANTED:
        text = "; ".join(resp.status_string) if resp.status_string else ""
        raise TimestampError(f"the TSA refused the request: status {resp.status} "
                             f"({_STATUS_TEXT.get(resp.status, 'unknown')}){': ' + text if text else ''}")
    tst = resp.tst_info
    if tst.message_imprint.hash_algorithm != SHA256_OID:
        raise TimestampError(f"the TSA answered with hash algorithm {tst.message_imprint.hash_algorithm.dotted_string},"
                             " not the SHA-256 we asked for")
    if tst.message_imprint.message != digest:
        raise TimestampError(f"the TSA's token is for imprint {tst.message_imprint.message.hex()}, "
                             f"not ours ({digest.hex()})")
    if nonce is not None and tst.nonce != nonce:
        raise TimestampError("the TSA's token carries a different nonce than our request (replayed or mixed up)")
    if not resp.signed_data.certificates:
        raise TimestampError("the TSA's token carries no certificate although certReq was set")
    return resp, info(resp)


def load_certs(pem: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise TimestampError(f"not a PEM certificate file: {exc}") from exc


def token_certs(resp: TimeStampResponse) -> list[x509.Certificate]:
    return sorted((x509.load_der_x509_certificate(c) for c in resp.signed_data.certificates),
                  key=lambda c: c.public_bytes(Encoding.DER))


def chain_pem(anchors: list[x509.Certificate], resp: TimeStampResponse) -> bytes:
    """The chain a third party needs for ``openssl ts -verify -CAfile``: anchors, then the token's certs."""
    seen: set[bytes] = set()
    out = b""
    for cert in [*anchors, *token_certs(resp)]:
        der = cert.public_bytes(Encoding.DER)
        if der not in seen:
            seen.add(der)
            out += cert.public_bytes(Encoding.PEM)
    return out


def verify_against(resp: TimeStampResponse, digest: bytes, anchors: list[x509.Certificate]) -> str | None:
    """Full RFC 3161 verification (status, CMS signature, chain to ``anchors`` at genTime,
    critical timeStamping EKU, imprint). Returns None when valid, else the reason."""
    roots = [c for c in anchors if c.issuer == c.subject]
    intermediates = [c for c in anchors if c.issuer != c.subject]
    if not roots:
        return "no root certificate among the trust anchors"
    builder = VerifierBuilder(roots=roots, intermediates=intermediates)
    try:
        builder.build().verify(resp, digest)
    except VerificationError as exc:
        return str(exc)
    except Exception as exc:  # the Rust layer may raise other types on malformed tokens
        return f"{type(exc).__name__}: {exc}"
    return None


__all__ = ["TokenInfo", "accept_response", "build_request", "chain_pem", "info", "load_certs",
           "parse_response", "verify_against"]
