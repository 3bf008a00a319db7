"""Signing exhibit PDFs: PAdES (CAdES-detached, ``ETSI.CAdES.detached``) with a signature timestamp,
then an RFC 3161 document timestamp (``ETSI.RFC3161``), both from the configured TSA, by pyHanko.

Why a P-384 signing key under an Ed25519 certificate, not the operator's Ed25519 key itself: measured
on this project's Debian (poppler 22.12, NSS), ``pdfsig`` reports a PDF signed with Ed25519 as
"Document isn't signed or corrupted data", while pyHanko validates it; the same PDF signed with ECDSA
P-384 is "Signature is Valid" in both. So the store keeps a P-384 key (``keys/exhibit-signing.key``,
0600, protected by the operator key's passphrase when that one has one) and an X.509 certificate for it
issued by a self-signed certificate of the operator's own Ed25519 key (``keys/operator.crt``): the chain
ties every exhibit signature to the key id people pin (``archiver keys list``), and a verifier that
trusts the operator certificate validates the chain (pyHanko's certificate validator checks the Ed25519
issuer signature). The certificates are made again when the operator key has been rotated.

A user may bring a certificate and key instead (``--cert`` / ``--key``, PEM; the certificate file may
carry its chain after the leaf).
"""

from __future__ import annotations

import datetime as dt
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archiver.errors import KeyError_, TimestampError, UsageError

if TYPE_CHECKING:
    from archiver.ports import Store
    from archiver.provenance.keys import PassphraseSource

LEAF_KEY = "exhibit-signing.key"
LEAF_CERT = "exhibit-signing.crt"
ROOT_CERT = "operator.crt"
VALID_YEARS = 10


@dataclass(frozen=True, slots=True)
class SigningMaterial:
    """A signing key and its certificate chain, DER, leaf first; ``origin`` says whose they are."""

    key_der: bytes  # PKCS#8
    chain_der: tuple[bytes, ...]
    origin: str  # "store" or "provided"


def pyhanko() -> Any:
    """pyHanko's modules, imported with its one import-time warning (it imports cryptography's
    deprecated DSA type) silenced here, so ``filterwarnings = error`` callers are not broken by it."""
    from archiver.extras import require

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        require("exhibits", "pyhanko.sign.signers")
        require("exhibits", "pyhanko.sign.validation")
        require("exhibits", "pyhanko_certvalidator")
        import pyhanko.sign as sign
        from pyhanko.pdf_utils import incremental_writer, reader
        return sign, incremental_writer, reader


def _name(cn: str, org: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn[:64] or "archiver operator")]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org[:64]))
    return x509.Name(attrs)


def store_material(core: Store, passphrase: PassphraseSource) -> SigningMaterial:
    """The store's exhibit-signing key and certificates, made on first use and whenever the operator
    key they hang from is not the current one (after ``keys generate --replace``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from archiver.provenance.keys import key_id_of
    from store.fsutil import atomic_write_bytes

    ks = core.keys
    if not ks.has_signing_key():
        raise KeyError_("this store has no signing key", hint="archiver keys generate")
    secret: str | None = passphrase() if ks.is_encrypted() else None  # asked once: a prompt is a person
    operator = ks.load_private(lambda: secret)
    key_path, leaf_path, root_path = ks.key_dir / LEAF_KEY, ks.key_dir / LEAF_CERT, ks.key_dir / ROOT_CERT
    enc: serialization.KeySerializationEncryption = (serialization.BestAvailableEncryption(secret.encode())
                                                     if secret else serialization.NoEncryption())
    if not key_path.is_file():
        atomic_write_bytes(key_path, ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc), mode=0o600)
    try:
        leaf_key = serialization.load_pem_private_key(key_path.read_bytes(),
                                                      password=secret.encode() if secret else None)
    except (ValueError, TypeError) as exc:
        raise KeyError_(f"exhibit-signing key {key_path} is unreadable: {exc}") from exc
    if not isinstance(leaf_key, ec.EllipticCurvePrivateKey):
        raise KeyError_(f"exhibit-signing key {key_path} is not ECDSA")
    op_raw = operator.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    fresh = root_path.is_file() and leaf_path.is_file()
    if fresh:
        root = x509.load_pem_x509_certificate(root_path.read_bytes())
        fresh = root.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == op_raw
    if not fresh:
        who = core.config.str_("operator.name") or core.default_actor()
        org = core.config.str_("operator.organization")
        kid = key_id_of(operator.public_key())
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        until = now + dt.timedelta(days=365 * VALID_YEARS)
        root_name = _name(f"{who} (archiver operator key {kid[7:23]})", org)
        root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
                .public_key(operator.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(until)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                               critical=True)
                .sign(operator, None))
        leaf = (x509.CertificateBuilder().subject_name(_name(f"{who} (archiver exhibits)", org))
                .issuer_name(root_name)
                .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(until)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False),
                               critical=True)
                .sign(operator, None))
        atomic_write_bytes(root_path, root.public_bytes(serialization.Encoding.PEM))
        atomic_write_bytes(leaf_path, leaf.public_bytes(serialization.Encoding.PEM))
    leaf_c = x509.load_pem_x509_certificate(leaf_path.read_bytes())
    root_c = x509.load_pem_x509_certificate(root_path.read_bytes())
    key_der = leaf_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    return SigningMaterial(key_der, (leaf_c.public_bytes(serialization.Encoding.DER),
                                     root_c.public_bytes(serialization.Encoding.DER)), "store")


def provided_material(cert: Path, key: Path, passphrase: PassphraseSource) -> SigningMaterial:
    """A certificate (PEM, leaf first, its chain after it) and its private key (PEM) the user brings."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    try:
        certs = x509.load_pem_x509_certificates(cert.read_bytes())
        data = key.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    except ValueError as exc:
        raise UsageError(f"{cert} holds no PEM certificate: {exc}") from exc
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # encrypted
        secret = passphrase()
        try:
            private = serialization.load_pem_private_key(data, password=(secret or "").encode())
        except (ValueError, TypeError) as exc:
            raise KeyError_(f"cannot open the key {key}: {exc}") from exc
    except ValueError as exc:
        raise KeyError_(f"{key} holds no PEM private key: {exc}") from exc
    if not isinstance(private, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        raise KeyError_(f"{key}: only ECDSA, RSA and Ed25519 keys can sign exhibits")
    pub = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if certs[0].public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo) != pub:
        raise KeyError_(f"the key {key} is not the key of the first certificate in {cert}")
    return SigningMaterial(private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()),
                           tuple(c.public_bytes(serialization.Encoding.DER) for c in certs), "provided")


def sign_pdf(data: bytes, material: SigningMaterial, *, tsa_url: str, timeout: float, reason: str,
             location: str = "") -> bytes:
    """``data`` signed (PAdES baseline with a signature timestamp) and then given a document timestamp,
    each an incremental update: the signed revision's bytes stay as they were."""
    from asn1crypto import keys as akeys
    from asn1crypto import x509 as ax

    sign, incremental_writer, _ = pyhanko()
    from pyhanko_certvalidator import registry

    store: Any = registry.SimpleCertificateStore  # untyped classmethod
    leaf = ax.Certificate.load(material.chain_der[0])
    signer = sign.signers.SimpleSigner(
        signing_cert=leaf, signing_key=akeys.PrivateKeyInfo.load(material.key_der),
        cert_registry=store.from_certs([ax.Certificate.load(c) for c in material.chain_der[1:]]))
    md = "sha512" if leaf.public_key.algorithm == "ed25519" else "sha256"
    stamper = sign.timestamps.HTTPTimeStamper(tsa_url, timeout=int(max(1, timeout)))
    meta = sign.signers.PdfSignatureMetadata(field_name="ExhibitSignature", md_algorithm=md, reason=reason,
                                             location=location or None,
                                             subfilter=sign.fields.SigSeedSubFilter.PADES)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            signed = io.BytesIO()
            sign.signers.sign_pdf(incremental_writer.IncrementalPdfFileWriter(io.BytesIO(data)), meta,
                                  signer=signer, timestamper=stamper, output=signed)
            out = io.BytesIO()
            sign.signers.PdfTimeStamper(stamper).timestamp_pdf(
                incremental_writer.IncrementalPdfFileWriter(io.BytesIO(signed.getvalue())), "sha256", output=out)
    except Exception as exc:  # pyHanko wraps transport and TSA failures in its own types
        if type(exc).__module__.startswith(("pyhanko", "aiohttp", "requests", "asyncio")) or \
                isinstance(exc, (OSError, TimeoutError)):
            raise TimestampError(f"could not sign the exhibit with a timestamp from {tsa_url}: {exc}",
                                 hint="check tsa.urls (archiver config get tsa.urls) and that the TSA answers") \
                from exc
        raise
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """What pyHanko says of one signed PDF: the signature, its chain, the document timestamp."""

    signature_intact: bool
    signature_valid: bool
    signature_trusted: bool
    signer: str
    signature_timestamp: bool
    doc_timestamp_valid: bool
    doc_timestamp_time: str
    covers_whole_file: bool


def check_pdf(data: bytes, *, trust_roots_der: list[bytes], tsa_roots_der: list[bytes]) -> SignatureCheck:
    """Validate an exhibit PDF with pyHanko (used by tests and by anyone checking an exhibit in Python):
    the PAdES signature against ``trust_roots_der`` and the document timestamp against ``tsa_roots_der``."""
    from asn1crypto import x509 as ax

    sign, _, reader = pyhanko()
    from pyhanko_certvalidator import ValidationContext

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = reader.PdfFileReader(io.BytesIO(data))
        sigs = r.embedded_regular_signatures
        stamps = r.embedded_timestamp_signatures
        if len(sigs) != 1 or len(stamps) != 1:
            raise UsageError(f"expected one signature and one document timestamp, found {len(sigs)} and "
                             f"{len(stamps)}")
        tsa_ctx = ValidationContext(trust_roots=[ax.Certificate.load(c) for c in tsa_roots_der])
        ctx = ValidationContext(trust_roots=[ax.Certificate.load(c) for c in trust_roots_der])
        st = sign.validation.validate_pdf_signature(sigs[0], signer_validation_context=ctx,
                                                    ts_validation_context=tsa_ctx)
        ts = sign.validation.validate_pdf_timestamp(stamps[0], validation_context=tsa_ctx)
    return SignatureCheck(signature_intact=bool(st.intact), signature_valid=bool(st.valid),
                          signature_trusted=bool(st.trusted), signer=str(st.signing_cert.subject.human_friendly),
                          signature_timestamp=st.timestamp_validity is not None and bool(st.timestamp_validity.valid),
                          doc_timestamp_valid=bool(ts.intact and ts.valid and ts.trusted),
                          doc_timestamp_time=ts.timestamp.isoformat(),
                          covers_whole_file=stamps[0].coverage.name == "ENTIRE_FILE")


__all__ = ["SignatureCheck", "SigningMaterial", "check_pdf", "provided_material", "pyhanko", "sign_pdf",
           "store_material"]
