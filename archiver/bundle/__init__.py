"""Self-verifying evidence bundles: WACZ 1.1.1 export, offline verification, import.

Layout: ``archive/<record>.warc.gz`` (stored, not deflated), ``indexes/index.cdxj`` (plain CDXJ),
``pages/pages.jsonl``, ``provenance/<record>.<name>`` (manifest.json, addendum.N.json,
timestamp.N.tsr, tsa-chain.N.pem, signer.pub.pem, custody.jsonl, citation.txt, text.txt),
``provenance/signer.<key>.pub.pem`` (every key that signed anything in the bundle),
``provenance/key-rotation.<new key>.json`` (the rotation statements linking them),
``provenance/VERIFY.md``, ``datapackage.json`` (sha256 of every resource) and
``datapackage-digest.json``, whose ``signedData`` is the anonymous form ReplayWeb.page checks:
ECDSA P-384 / SHA-256 over the ``hash`` string, raw r‖s in base64, SPKI public key. Every member
sits exactly one directory deep because py-wacz's ``wacz validate`` matches members by their last
two path components only.

Exports are deterministic: fixed zip timestamps and attributes, sorted entries, ``created`` taken
from the records (not the clock), and RFC 6979 deterministic ECDSA, so the same records always give
the same bytes — under the same latest log checkpoint: the transparency-log members
(``provenance/<record>.tlog-proof``, ``provenance/log.checkpoint``, ``provenance/log.vkey``) prove
inclusion under the latest checkpoint, which a newer checkpoint replaces.
"""

from archiver.bundle.export import (
    BINDING,
    WACZ_VERSION,
    ExportResult,
    _sign_p384,
    cdxj_lines,
    export,
    key_binding,
    read_binding,
    surt,
    verify_p384,
)
from archiver.bundle.importing import default_trust, import_bundle, is_bundle_path
from archiver.bundle.read import Bundle, BundleLimits, BundleTrust, bundle_verdict, verify_bundle
from archiver.verify.verdict import VERDICT_TEXT

__all__ = ["BINDING", "VERDICT_TEXT", "WACZ_VERSION", "Bundle", "BundleLimits", "BundleTrust", "ExportResult",
           "_sign_p384", "bundle_verdict", "cdxj_lines", "default_trust", "export", "import_bundle", "is_bundle_path",
           "key_binding", "read_binding", "surt", "verify_bundle", "verify_p384"]
